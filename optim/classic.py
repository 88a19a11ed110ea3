"""The classic optimizers as torch.optim-style classes: SGD, Adagrad, RMSprop, Adam, AdamW.

Same names, arguments (and their order), defaults and update rules as torch.optim, so runs can
be compared number for number. Each class is a thin shell over an update rule of
`optim.functional` (a factory binding the hyperparameters into a pure init/update pair); its
docstring is the formula and how it relates to the textbook forms.
Notation: θ the parameter, g_t = ∇f(θ_{t-1}) + weight_decay · θ_{t-1} (the L2-penalised
gradient, except in AdamW), t = 1, 2, ... the step, all operations coordinatewise.
"""
from . import functional as F
from .base import Optimizer, check_range


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (heavy ball or averaged) and
    Nesterov momentum. Code: `optim.functional.sgd`.

        b_1 = g_1,   b_t = momentum · b_{t-1} + (1 − dampening) · g_t
        d_t = g_t + momentum · b_t   if nesterov,   b_t   if momentum > 0,   g_t   otherwise
        θ_t = θ_{t-1} − lr · d_t

    Two textbook momenta are this rule with different arguments:

    - Heavy ball (Polyak 1964), v = μ v + g, θ = θ − lr · v: momentum=μ, dampening=0.
      Under a constant gradient the buffer grows to g / (1 − μ), so the step is 1 / (1 − μ)
      times plain SGD's (10 times for μ = 0.9). Sutskever et al. (2013) write the same method
      as v = μ v − lr · ∇f, θ = θ + v (their v is −lr · b).
    - Exponentially weighted average, v = β v + (1 − β) g: momentum=β, dampening=β. The
      buffer is an average of recent gradients, on the gradient's scale, so lr keeps the
      meaning it has in plain SGD; it is heavy ball with its learning rate times (1 − β),
      except that the first gradient keeps an extra weight β^t (see below).

    As in torch, the buffer starts at the first gradient itself, not at (1 − dampening) · g_1:
    the average has no start-up bias toward zero to correct (compare Adam's m, which starts
    at 0 and is bias-corrected).

    Nesterov's accelerated gradient takes the gradient at the look-ahead point θ + μ v
    (Sutskever et al. 2013, eq. 3-4). Keeping the look-ahead point φ = θ + μ v as the stored
    parameter (Bengio et al. 2013) gives an update that only needs the gradient at φ:
    b = μ b + ∇f(φ), φ = φ − lr · (∇f(φ) + μ b), which is nesterov=True. It needs
    momentum > 0 and dampening = 0.

    Defaults: lr required, momentum=0, dampening=0, weight_decay=0, nesterov=False.
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_hyperparameters(self, group):
        check_range(self._name, "lr", group["lr"], 0.0)
        check_range(self._name, "momentum", group["momentum"], 0.0)
        check_range(self._name, "dampening", group["dampening"], 0.0, 1.0, high_inclusive=True)
        check_range(self._name, "weight_decay", group["weight_decay"], 0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{self._name}: nesterov=True requires momentum > 0 and "
                             f"dampening = 0, got momentum={group['momentum']!r}, "
                             f"dampening={group['dampening']!r}")

    rule = staticmethod(F.sgd)


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan and Singer 2011). Code: `optim.functional.adagrad`.

        s_t = s_{t-1} + g_t²                            s_0 = initial_accumulator_value
        θ_t = θ_{t-1} − lr_t · g_t / (√s_t + eps)        lr_t = lr / (1 + (t − 1) · lr_decay)

    Each coordinate's step is scaled by the root of the sum of all its squared gradients, so
    coordinates with rare or small gradients take relatively larger steps, and every
    coordinate's effective learning rate only ever decreases (RMSprop replaces the sum by
    an average to stop that). With s_0 = 0 the first step is lr · sign(g_1) whatever the
    gradient's size; s_0 > 0 makes small first gradients take small steps.
    eps is outside the root, as in torch; it only guards against dividing by zero.

    Defaults: lr=0.01, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10.
    """

    def __init__(self, params, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _check_hyperparameters(self, group):
        check_range(self._name, "lr", group["lr"], 0.0)
        check_range(self._name, "lr_decay", group["lr_decay"], 0.0)
        check_range(self._name, "weight_decay", group["weight_decay"], 0.0)
        check_range(self._name, "initial_accumulator_value",
                    group["initial_accumulator_value"], 0.0)
        check_range(self._name, "eps", group["eps"], 0.0)

    rule = staticmethod(F.adagrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton, Coursera lecture 6e, 2012); centered variant from Graves (2013).
    Code: `optim.functional.rmsprop`.

        v_t = α v_{t-1} + (1 − α) g_t²                              v_0 = 0
        centered:  m_t = α m_{t-1} + (1 − α) g_t,   r_t = √(v_t − m_t²) + eps
        otherwise: r_t = √v_t + eps
        momentum > 0:  b_t = μ b_{t-1} + g_t / r_t,   θ_t = θ_{t-1} − lr · b_t      (b_0 = 0)
        otherwise:     θ_t = θ_{t-1} − lr · g_t / r_t

    Adagrad's sum of squares replaced by an exponentially weighted average (α = alpha), so
    the step does not shrink to zero: it stays about lr · g / RMS(g). There is no bias
    correction (unlike Adam): v starts at 0, so v_1 = (1 − α) g_1² and the first step is
    lr / √(1 − α) per coordinate, 10 · lr for α = 0.99, settling toward lr · g / RMS(g) over
    about 1 / (1 − α) steps. Centered divides by an estimate of the standard deviation of g
    instead of its root mean square. Momentum accumulates the normalised step g / r.

    eps sits outside the root, as in torch. Inside it, √(v + eps) (as in TensorFlow 1's
    RMSPropOptimizer), the denominator is floored at √eps (1e-4 for eps = 1e-8) rather than
    eps, which damps every coordinate whose gradients are below about √eps instead of only
    those below about eps: the same eps means a different optimizer.

    Defaults: lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False.
    """

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_hyperparameters(self, group):
        check_range(self._name, "lr", group["lr"], 0.0)
        check_range(self._name, "alpha", group["alpha"], 0.0, 1.0)
        check_range(self._name, "eps", group["eps"], 0.0)
        check_range(self._name, "weight_decay", group["weight_decay"], 0.0)
        check_range(self._name, "momentum", group["momentum"], 0.0)

    rule = staticmethod(F.rmsprop)


class Adam(Optimizer):
    """Adam (Kingma and Ba 2015), with the AMSGrad option (Reddi, Kale and Kumar 2018).
    Code: `optim.functional.adam`.

        m_t = β1 m_{t-1} + (1 − β1) g_t,     v_t = β2 v_{t-1} + (1 − β2) g_t²     m_0 = v_0 = 0
        m̂_t = m_t / (1 − β1^t),             v̂_t = v_t / (1 − β2^t)
        θ_t = θ_{t-1} − lr · m̂_t / (√v̂_t + eps)
        amsgrad: v_t in v̂_t is replaced by u_t = max(u_{t-1}, v_t)   (u_0 = 0)

    m is momentum in its averaged form (SGD's momentum=β1, dampening=β1, but started at 0),
    divided coordinatewise by the root of an average of squared gradients (RMSprop's v with
    α = β2). m̂ / √v̂ is ±1 for a steady gradient and smaller for a noisy one, so each
    coordinate moves at most about lr per step whatever the gradient's scale.

    Bias correction: m and v start at 0, so after t steps the weights of their averages sum
    to 1 − β^t, not 1. Dividing by it turns them into true averages of the gradients seen
    (unbiased if the gradient's distribution does not change); the first step is
    lr · g_1 / (|g_1| + eps) = lr · sign(g_1). AMSGrad keeps the largest v so far, so a
    coordinate's effective learning rate never grows (torch's convention: the maximum is
    taken over the uncorrected v, then corrected).

    eps sits outside the root and is added after the bias correction, as in the paper's
    Algorithm 1 and in torch: the code computes lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + eps).
    The paper's faster form folds both corrections into the step size,
    lr · √(1 − β2^t) / (1 − β1^t) · m / (√v + eps), which amounts to eps · √(1 − β2^t) in the
    form above, a smaller eps in early steps. Either way eps matters only for coordinates
    whose gradients are about eps or smaller (inside the root it would act below √eps).

    weight_decay adds weight_decay · θ to the gradient (an L2 penalty), which then goes
    through the division by √v̂: coordinates with large gradients are barely decayed. AdamW
    decouples the decay from that scaling.

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _check_hyperparameters(self, group):
        check_range(self._name, "lr", group["lr"], 0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self._name}: invalid betas={betas!r}, expected a pair "
                             "(beta1, beta2)")
        check_range(self._name, "betas[0]", betas[0], 0.0, 1.0)
        check_range(self._name, "betas[1]", betas[1], 0.0, 1.0)
        check_range(self._name, "eps", group["eps"], 0.0)
        check_range(self._name, "weight_decay", group["weight_decay"], 0.0)

    rule = staticmethod(F.adam)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019).
    Code: `optim.functional.adamw`.

        θ ← θ · (1 − lr · weight_decay)
        then the Adam step above, with g_t = ∇f(θ_{t-1}) (no decay term in m or v)

    Every coordinate shrinks by the same factor each step, independently of its gradient
    history; in Adam(weight_decay=...) the decay term is divided by √v̂ like the rest of the
    gradient. As in torch the decay rate is lr · weight_decay (the paper writes η_t · λ, with
    η_t a schedule multiplier separate from Adam's step size).

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    rule = staticmethod(F.adamw)
