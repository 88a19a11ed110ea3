"""What the optimizer network sees of each gradient coordinate: the preprocessing of the
paper's appendix A, and the running moments of the improved optimizer.

Each comes twice: on arrays, for a gradient that is a constant (first order, the paper's
section 2, and the plain optimizer), and in Tensor ops (`preprocess_tensor`,
`Moments.step_tensor`), for a gradient that is itself in the meta-graph (the exact
meta-gradient, MetaConfig.second_order): the same values, and the inputs' dependence on the
gradient goes into the graph.
"""
import numpy as np

import minigrad.functional as F


def preprocess_gradients(grad, p=10.0):
    """Appendix A: map each gradient coordinate to two inputs of similar scale.

        grad -> (log|grad| / p, sign(grad))   if |grad| >= e^-p
        grad -> (-1, e^p * grad)              otherwise

    Gradients span many orders of magnitude across coordinates and over training; the first
    input carries the magnitude on a log scale, the second the sign. Below e^-p the log would
    blow up, so tiny gradients are passed (scaled) through the second input instead.

    grad: (n,) array; returns (n, 2) of grad's float dtype.
    """
    grad = np.asarray(grad)
    magnitude = np.abs(grad)
    big = magnitude >= np.exp(-p)
    out = np.empty(grad.shape + (2,), grad.dtype)
    with np.errstate(divide="ignore"):
        out[..., 0] = np.where(big, np.log(magnitude) / p, -1.0)
    out[..., 1] = np.where(big, np.sign(grad), np.exp(p) * grad)
    return out


def preprocess_tensor(grad, p=10.0):
    """`preprocess_gradients` in Tensor ops, for a gradient in a graph: the same values, and
    the derivative of the branch each coordinate takes,

        d/dgrad (log|grad| / p) = 1 / (p grad),   d/dgrad (e^p grad) = e^p,

    the sign and the choice of branch being piecewise constant (derivative zero).

    grad: (n,) tensor; returns an (n, 2) tensor of grad's dtype.
    """
    magnitude = grad.abs()
    big = magnitude.data >= np.exp(-p)
    # log(1) where the log branch is not taken: log(0) would send 0 * inf = nan back
    log_magnitude = F.where(big, magnitude, 1.0).log()
    first = F.where(big, log_magnitude / p, -1.0)
    second = F.where(big, grad.sign(), grad * np.exp(p))
    return F.stack([first, second], axis=1)


class Moments:
    """Running moments of each coordinate's gradient, the inputs of the improved optimizer
    (after RNNprop, Lv et al. 2017, and Adam):

        m_b <- b m_b + (1 - b) grad      for each b in betas       (first moments)
        v   <- beta2 v + (1 - beta2) grad^2                        (second moment)
        x    = [m_b_hat / (sqrt(v_hat) + eps) for each b,  grad / (sqrt(v_hat) + eps)]

    with the bias corrections of Adam, m_b_hat = m_b / (1 - b^t), v_hat = v / (1 - beta2^t),
    t the coordinate's own step count. Each input is scale-free: multiplying f by a constant
    leaves x unchanged, so one network sees the same numbers on every problem. The state is
    three arrays per coordinate, `(m (n, len(betas)), v (n, 1), t (n, 1))`, all zero at the
    start; `step` returns new arrays and never changes the ones it is given.
    """

    def __init__(self, betas=(0.5, 0.9, 0.99), beta2=0.999, eps=1e-8, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.betas = np.asarray(betas, self.dtype)
        self.beta2 = self.dtype.type(beta2)
        self.eps = self.dtype.type(eps)

    @property
    def size(self):
        """The number of inputs per coordinate: one per first moment, and the gradient."""
        return len(self.betas) + 1

    def initial(self, n_coords):
        """The zero state of `n_coords` coordinates: (m, v, t)."""
        return (np.zeros((n_coords, len(self.betas)), self.dtype),
                np.zeros((n_coords, 1), self.dtype), np.zeros((n_coords, 1), self.dtype))

    def step(self, grad, state):
        """grad: (n,) array; state: (m, v, t). Returns (x (n, len(betas) + 1), new state)."""
        m, v, t = state
        one = self.dtype.type(1)
        g = np.asarray(grad, self.dtype).reshape(-1, 1)
        t = t + one
        m = self.betas * m + (one - self.betas) * g
        v = self.beta2 * v + (one - self.beta2) * (g * g)
        scale = one / (np.sqrt(v / (one - self.beta2 ** t)) + self.eps)
        x = np.empty((len(g), self.size), self.dtype)
        np.multiply(m / (one - self.betas ** t), scale, out=x[:, :-1])
        np.multiply(g, scale, out=x[:, -1:])
        return x, (m, v, t)

    def step_tensor(self, grad, state):
        """`step` in Tensor ops, for a gradient in a graph: the same values, and the inputs and
        the moments m, v carry their dependence on the gradient (t is a count, a constant).
        Where v_hat is 0 (a coordinate whose gradient has been exactly 0 so far) sqrt(v_hat)
        is given derivative 0, as |grad| is at 0, instead of sqrt's infinite one.

        grad: (n,) tensor; state: (m, v, t) tensors. Returns (x (n, len(betas) + 1) tensor,
        new state as tensors).
        """
        m, v, t = state
        one = self.dtype.type(1)
        g = grad.reshape(-1, 1)
        t = t + one
        m = m * self.betas + g * (one - self.betas)
        v = v * self.beta2 + (g * g) * (one - self.beta2)
        v_hat = v / (one - self.beta2 ** t.data)
        seen = v_hat.data > 0
        root = F.where(seen, F.where(seen, v_hat, one).sqrt(), 0.0)
        scale = one / (root + self.eps)
        x = F.concat([m / (one - self.betas ** t.data) * scale, g * scale], axis=1)
        return x, (m, v, t)
