"""What the optimizer network sees of each gradient coordinate: the preprocessing of the
paper's appendix A."""
import numpy as np


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
