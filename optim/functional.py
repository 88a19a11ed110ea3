"""The classic update rules as pure functions on numpy arrays with explicit state.

Each optimizer is a factory that binds its hyperparameters once and returns an `UpdateRule`,
a pair of functions, as in optax (``optax/_src/transform.py``):

    adam = optim.functional.adam(lr=1e-3)
    state = adam.init(param)                          # {"step": 0, "exp_avg": ..., ...}
    new_param, new_state = adam.update(grad, param, state)

``param`` and ``grad`` are float arrays of any one shape, e.g. ``(n_coords,)`` or
``(n_problems, n_coords)``: every rule is coordinatewise, so a whole batch of problems is
one call. Neither the inputs nor ``state`` are modified; the state is a dict holding the int
``"step"`` (updates taken so far) and buffers shaped like ``param``, named as in torch.optim.
The result has ``param``'s dtype: a float32 parameter stays float32 (hyperparameters are
turned into Python floats first, since a float64 numpy scalar would upcast the arrays).

The formulas and state follow torch.optim (its single-tensor code path) so that results can
be compared number for number; ``optim/classic.py`` wraps these in torch.optim's classes and
documents each rule's relation to its textbook form. Here ``g`` is the gradient after weight
decay, ``g = grad + weight_decay * param``, except in AdamW, which decays the parameter itself.
"""
from typing import Callable, NamedTuple

import numpy as np


class UpdateRule(NamedTuple):
    """An optimizer with its hyperparameters bound: ``init(param) -> state`` and
    ``update(grad, param, state) -> (new_param, new_state)``."""

    init: Callable
    update: Callable


def _gradient(grad, param, weight_decay):
    """``grad + weight_decay * param``, the L2-penalised gradient, in ``param``'s dtype."""
    grad = np.asarray(grad, dtype=param.dtype)
    if grad.shape != param.shape:
        raise ValueError(f"grad has shape {grad.shape} but param has shape {param.shape}")
    if weight_decay != 0.0:
        grad = grad + weight_decay * param
    return grad


def sgd(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    """SGD; state: the step count, and the momentum buffer if ``momentum != 0``. One step:

        b = g                                   on the first step
        b = momentum * b + (1 - dampening) * g  after it
        d = g + momentum * b  if nesterov,  else  b       (d = g when momentum = 0)
        param = param - lr * d
    """
    lr, momentum, dampening = float(lr), float(momentum), float(dampening)
    weight_decay = float(weight_decay)

    def init(param):
        param = np.asarray(param)
        state = {"step": 0}
        if momentum != 0.0:
            state["momentum_buffer"] = np.zeros_like(param)
        return state

    def update(grad, param, state):
        param = np.asarray(param)
        g = _gradient(grad, param, weight_decay)
        new_state = {"step": state["step"] + 1}
        direction = g
        if momentum != 0.0:
            if state["step"] == 0:
                buffer = g.copy()
            else:
                buffer = momentum * state["momentum_buffer"] + (1.0 - dampening) * g
            new_state["momentum_buffer"] = buffer
            direction = g + momentum * buffer if nesterov else buffer
        return param - lr * direction, new_state

    return UpdateRule(init, update)


def adagrad(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    """Adagrad; state: the step count and the running sum of squared gradients, which starts
    at ``initial_accumulator_value``. One step (t counts from 1):

        s = s + g * g
        param = param - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)
    """
    lr, lr_decay, eps = float(lr), float(lr_decay), float(eps)
    weight_decay, initial_accumulator_value = float(weight_decay), float(initial_accumulator_value)

    def init(param):
        param = np.asarray(param)
        return {"step": 0, "sum": np.full_like(param, initial_accumulator_value)}

    def update(grad, param, state):
        param = np.asarray(param)
        g = _gradient(grad, param, weight_decay)
        step = state["step"] + 1
        decayed_lr = lr / (1.0 + (step - 1) * lr_decay)
        total = state["sum"] + g * g
        new_param = param - decayed_lr * (g / (np.sqrt(total) + eps))
        return new_param, {"step": step, "sum": total}

    return UpdateRule(init, update)


def rmsprop(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    """RMSprop; state: the step count and the average of g², plus the momentum buffer if
    ``momentum != 0`` and the average of g if ``centered``. One step:

        v = alpha * v + (1 - alpha) * g * g
        m = alpha * m + (1 - alpha) * g                 (centered only)
        r = sqrt(v - m * m) + eps  if centered,  else  sqrt(v) + eps
        b = momentum * b + g / r;  param = param - lr * b      if momentum != 0
        param = param - lr * g / r                              otherwise
    """
    lr, alpha, eps, momentum = float(lr), float(alpha), float(eps), float(momentum)
    weight_decay = float(weight_decay)

    def init(param):
        param = np.asarray(param)
        state = {"step": 0, "square_avg": np.zeros_like(param)}
        if momentum != 0.0:
            state["momentum_buffer"] = np.zeros_like(param)
        if centered:
            state["grad_avg"] = np.zeros_like(param)
        return state

    def update(grad, param, state):
        param = np.asarray(param)
        g = _gradient(grad, param, weight_decay)
        square_avg = alpha * state["square_avg"] + (1.0 - alpha) * (g * g)
        new_state = {"step": state["step"] + 1, "square_avg": square_avg}
        if centered:
            grad_avg = alpha * state["grad_avg"] + (1.0 - alpha) * g
            new_state["grad_avg"] = grad_avg
            rms = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            rms = np.sqrt(square_avg) + eps
        if momentum != 0.0:
            buffer = momentum * state["momentum_buffer"] + g / rms
            new_state["momentum_buffer"] = buffer
            return param - lr * buffer, new_state
        return param - lr * (g / rms), new_state

    return UpdateRule(init, update)


def adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
    """Adam; state: the step count, the averages of g and g², and their running maximum of
    the g² average if ``amsgrad``. One step (t counts from 1):

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        u = max(u, v);  v_used = u   if amsgrad,  else  v_used = v
        param = param - lr / (1 - beta1^t) * m / (sqrt(v_used) / sqrt(1 - beta2^t) + eps)
    """
    lr, eps, weight_decay = float(lr), float(eps), float(weight_decay)
    beta1, beta2 = (float(beta) for beta in betas)

    def init(param):
        param = np.asarray(param)
        state = {"step": 0, "exp_avg": np.zeros_like(param), "exp_avg_sq": np.zeros_like(param)}
        if amsgrad:
            state["max_exp_avg_sq"] = np.zeros_like(param)
        return state

    def update(grad, param, state):
        param = np.asarray(param)
        g = _gradient(grad, param, weight_decay)
        step = state["step"] + 1
        exp_avg = beta1 * state["exp_avg"] + (1.0 - beta1) * g
        exp_avg_sq = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * (g * g)
        new_state = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        second_moment = exp_avg_sq
        if amsgrad:
            second_moment = np.maximum(state["max_exp_avg_sq"], exp_avg_sq)
            new_state["max_exp_avg_sq"] = second_moment
        step_size = lr / (1.0 - beta1 ** step)
        bias_correction2_sqrt = (1.0 - beta2 ** step) ** 0.5
        denominator = np.sqrt(second_moment) / bias_correction2_sqrt + eps
        return param - step_size * (exp_avg / denominator), new_state

    return UpdateRule(init, update)


def adamw(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    """AdamW; the state of Adam. One step: shrink the parameter, then take an Adam step
    without weight decay:

        param = param * (1 - lr * weight_decay)
        param = adam(...).update(grad, param, ...)        (g = grad: the decay is not in m or v)
    """
    shrink = 1.0 - float(lr) * float(weight_decay)
    inner = adam(lr, betas, eps, weight_decay=0.0, amsgrad=amsgrad)

    def update(grad, param, state):
        return inner.update(grad, np.asarray(param) * shrink, state)

    return UpdateRule(inner.init, update)
