"""Check an op's backward against central finite differences."""
import numpy as np

from .autograd import grad, no_grad
from .tensor import Tensor


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare the engine's gradients of `fn(*inputs)` with central differences.

    A non-scalar output is reduced to the scalar sum(out * w) with fixed random weights w, so
    every output element's gradient is checked, not just their sum. Use float64 inputs: with
    float32, differences at eps=1e-6 are mostly rounding noise.

    Returns True, or raises AssertionError naming the input and the largest mismatch.
    """
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or t.dtype.kind != "f":
            raise TypeError(f"gradcheck: input {i} must be a floating-point Tensor, got {t!r:.80}")
    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)

    def scalar():
        with no_grad():
            return float((fn(*inputs).data * weights).sum())

    analytic = grad((out * weights).sum(), inputs)
    for i, (t, exact) in enumerate(zip(inputs, analytic)):
        numeric = np.zeros(t.shape)
        flat = t.data.reshape(-1)  # a view: perturbing it perturbs the input in place
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + eps
            up = scalar()
            flat[k] = original - eps
            down = scalar()
            flat[k] = original
            numeric.flat[k] = (up - down) / (2 * eps)
        excess = np.abs(exact - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            worst = np.unravel_index(np.argmax(excess), t.shape)
            raise AssertionError(
                f"gradcheck: input {i} of shape {t.shape}: largest mismatch at index {worst}: "
                f"engine {exact[worst]:.6g} vs finite differences {numeric[worst]:.6g} "
                f"(|difference| {abs(exact[worst] - numeric[worst]):.3g} > atol {atol} + rtol {rtol} "
                "* |finite difference|)")
    return True
