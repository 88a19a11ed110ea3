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
