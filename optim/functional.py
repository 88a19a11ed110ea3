"""The classic update rules as pure functions on numpy arrays with explicit state.

Each optimizer is an init/update pair, as in optax (``optax/_src/transform.py``):

    state = adam_init(param)                                  # {"step": 0, "exp_avg": ..., ...}
    new_param, new_state = adam_update(grad, param, state, lr=1e-3)

``param`` and ``grad`` are float arrays of any one shape, e.g. ``(n_coords,)`` or
``(n_problems, n_coords)``: every rule is coordinatewise, so a whole batch of problems is
one call. Neither the inputs nor ``state`` are modified; the state is a dict holding the int
``"step"`` (updates taken so far) and buffers shaped like ``param``, named as in torch.optim.
Hyperparameters are scalars. The result has ``param``'s dtype: a float32 parameter stays
float32 (numpy scalars are turned into Python floats first, since a float64 numpy scalar
would upcast the arrays).

The formulas and state follow torch.optim (its single-tensor code path) so that results can
be compared number for number; ``optim/classic.py`` wraps these in torch.optim's classes and
documents each rule's relation to its textbook form. Here ``g`` is the gradient after weight
decay, ``g = grad + weight_decay * param``, except in AdamW, which decays the parameter itself.
"""
import numpy as np


def _gradient(grad, param, weight_decay):
    """``grad + weight_decay * param``, the L2-penalised gradient, in ``param``'s dtype."""
    grad = np.asarray(grad, dtype=param.dtype)
    if grad.shape != param.shape:
        raise ValueError(f"grad has shape {grad.shape} but param has shape {param.shape}")
    weight_decay = float(weight_decay)
    if weight_decay != 0.0:
        grad = grad + weight_decay * param
    return grad


def _buffer(state, key, option, init):
    """``state[key]``, or an error saying which init option creates that buffer."""
    if key not in state:
        raise KeyError(f"{option} needs state[{key!r}]; create the state with {init}")
    return state[key]


def sgd_init(param, *, momentum=0.0):
    """State of SGD: the step count, and the momentum buffer if ``momentum != 0``."""
    param = np.asarray(param)
    state = {"step": 0}
    if float(momentum) != 0.0:
        state["momentum_buffer"] = np.zeros_like(param)
    return state


def sgd_update(grad, param, state, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
               weight_decay=0.0):
    """One SGD step:

        b = g                                   on the first step
        b = momentum * b + (1 - dampening) * g  after it
        d = g + momentum * b  if nesterov,  else  b       (d = g when momentum = 0)
        param = param - lr * d
    """
    param = np.asarray(param)
    lr, momentum, dampening = float(lr), float(momentum), float(dampening)
    g = _gradient(grad, param, weight_decay)
    new_state = {"step": state["step"] + 1}
    direction = g
    if momentum != 0.0:
        buffer = _buffer(state, "momentum_buffer", "momentum != 0", "sgd_init(param, momentum=...)")
        if state["step"] == 0:
            buffer = g.copy()
        else:
            buffer = momentum * buffer + (1.0 - dampening) * g
        new_state["momentum_buffer"] = buffer
        direction = g + momentum * buffer if nesterov else buffer
    return param - lr * direction, new_state


def adagrad_init(param, *, initial_accumulator_value=0.0):
    """State of Adagrad: the step count and the running sum of squared gradients."""
    param = np.asarray(param)
    return {"step": 0, "sum": np.full_like(param, float(initial_accumulator_value))}


def adagrad_update(grad, param, state, *, lr=0.01, lr_decay=0.0, weight_decay=0.0, eps=1e-10):
    """One Adagrad step (t counts from 1):

        s = s + g * g
        param = param - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
    """
    param = np.asarray(param)
    lr, lr_decay, eps = float(lr), float(lr_decay), float(eps)
    g = _gradient(grad, param, weight_decay)
    step = state["step"] + 1
    decayed_lr = lr / (1.0 + (step - 1) * lr_decay)
    total = state["sum"] + g * g
    new_param = param - decayed_lr * (g / (np.sqrt(total) + eps))
    return new_param, {"step": step, "sum": total}


def rmsprop_init(param, *, momentum=0.0, centered=False):
    """State of RMSprop: the step count and the average of g², plus the momentum buffer if
    ``momentum != 0`` and the average of g if ``centered``."""
    param = np.asarray(param)
    state = {"step": 0, "square_avg": np.zeros_like(param)}
    if float(momentum) != 0.0:
        state["momentum_buffer"] = np.zeros_like(param)
    if centered:
        state["grad_avg"] = np.zeros_like(param)
    return state


def rmsprop_update(grad, param, state, *, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                   momentum=0.0, centered=False):
    """One RMSprop step:

        v = alpha * v + (1 - alpha) * g * g
        m = alpha * m + (1 - alpha) * g                 (centered only)
        r = sqrt(v - m * m) + eps  if centered,  else  sqrt(v) + eps
        b = momentum * b + g / r;  param = param - lr * b      if momentum != 0
        param = param - lr * g / r                              otherwise
    """
    param = np.asarray(param)
    lr, alpha, eps, momentum = float(lr), float(alpha), float(eps), float(momentum)
    g = _gradient(grad, param, weight_decay)
    square_avg = alpha * state["square_avg"] + (1.0 - alpha) * (g * g)
    new_state = {"step": state["step"] + 1, "square_avg": square_avg}
    if centered:
        grad_avg = _buffer(state, "grad_avg", "centered=True", "rmsprop_init(param, centered=True)")
        grad_avg = alpha * grad_avg + (1.0 - alpha) * g
        new_state["grad_avg"] = grad_avg
        rms = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        rms = np.sqrt(square_avg) + eps
    if momentum != 0.0:
        buffer = _buffer(state, "momentum_buffer", "momentum != 0",
                         "rmsprop_init(param, momentum=...)")
        buffer = momentum * buffer + g / rms
        new_state["momentum_buffer"] = buffer
        return param - lr * buffer, new_state
    return param - lr * (g / rms), new_state


def adam_init(param, *, amsgrad=False):
    """State of Adam and AdamW: the step count, the averages of g and g², and their running
    maximum of the g² average if ``amsgrad``."""
    param = np.asarray(param)
    state = {"step": 0, "exp_avg": np.zeros_like(param), "exp_avg_sq": np.zeros_like(param)}
    if amsgrad:
        state["max_exp_avg_sq"] = np.zeros_like(param)
    return state


def adam_update(grad, param, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                amsgrad=False):
    """One Adam step (t counts from 1):

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        u = max(u, v);  v_used = u   if amsgrad,  else  v_used = v
        param = param - lr / (1 - beta1^t) * m / (sqrt(v_used) / sqrt(1 - beta2^t) + eps)
    """
    param = np.asarray(param)
    lr, eps = float(lr), float(eps)
    beta1, beta2 = (float(beta) for beta in betas)
    g = _gradient(grad, param, weight_decay)
    step = state["step"] + 1
    exp_avg = beta1 * state["exp_avg"] + (1.0 - beta1) * g
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * (g * g)
    new_state = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    second_moment = exp_avg_sq
    if amsgrad:
        max_exp_avg_sq = _buffer(state, "max_exp_avg_sq", "amsgrad=True",
                                 "adam_init(param, amsgrad=True)")
        second_moment = np.maximum(max_exp_avg_sq, exp_avg_sq)
        new_state["max_exp_avg_sq"] = second_moment
    step_size = lr / (1.0 - beta1 ** step)
    bias_correction2_sqrt = (1.0 - beta2 ** step) ** 0.5
    denominator = np.sqrt(second_moment) / bias_correction2_sqrt + eps
    return param - step_size * (exp_avg / denominator), new_state


adamw_init = adam_init


def adamw_update(grad, param, state, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
    """One AdamW step: shrink the parameter, then take an Adam step without weight decay:

        param = param * (1 - lr * weight_decay)
        param = adam_update(grad, param, ...)        (g = grad: the decay is not in m or v)
    """
    param = np.asarray(param)
    decayed = param * (1.0 - float(lr) * float(weight_decay))
    return adam_update(grad, decayed, state, lr=lr, betas=betas, eps=eps, weight_decay=0.0,
                       amsgrad=amsgrad)
