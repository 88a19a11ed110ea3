"""Check an op's backward against central finite differences."""
import warnings

import numpy as np

from .autograd import grad, no_grad
from .tensor import Tensor


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare the engine's gradients of `fn(*inputs)` with central differences.

    A non-scalar output is reduced to the scalar sum(out * w) with fixed random weights w, so
    every output element's gradient is checked, not just their sum.

    The check runs in float64. With float32, differences at eps=1e-6 are mostly rounding noise
    (float32 resolves about 1e-7 of a value), and a correct backward would fail; so a float32
    or float16 input is converted to float64 in place for the check, with a warning, and its
    own array is put back after. Perturbing in place means `fn` may read the inputs through
    the objects that hold them, such as a module's parameters. What `fn` computes in float32
    itself cannot be converted: an output in lower precision than float64 is a TypeError,
    since its differences would be noise too (make fn's own tensors with dtype=x.dtype).

    Returns True, or raises AssertionError naming the input and the largest mismatch.
    """
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or t.dtype.kind != "f":
            raise TypeError(f"gradcheck: input {i} must be a floating-point Tensor, got {t!r:.80}")
    coarse = [i for i, t in enumerate(inputs) if t.dtype.itemsize < 8]
    if coarse:
        which = ", ".join(f"{i} ({inputs[i].dtype})" for i in coarse)
        warnings.warn(
            f"gradcheck: input{'s' if len(coarse) > 1 else ''} {which} checked in float64: in "
            "float32 or float16, finite differences are mostly rounding noise and a correct "
            "backward would fail. Each is converted in place for the check and gets its own "
            "array back after. Pass float64 inputs to silence this warning.", stacklevel=2)
    originals = [t.data for t in inputs]
    try:
        for i in coarse:
            inputs[i].data = originals[i].astype(np.float64)
        return _check(fn, inputs, eps, atol, rtol, seed)
    finally:
        for t, data in zip(inputs, originals):
            t.data = data


def _check(fn, inputs, eps, atol, rtol, seed):
    """gradcheck on float64 inputs."""
    out = fn(*inputs)
    if out.dtype.kind == "f" and out.dtype.itemsize < 8:
        raise TypeError(
            f"gradcheck: fn returned {out.dtype} from float64 inputs, so it computes in "
            f"{out.dtype} somewhere, where finite differences are mostly rounding noise; make "
            "the tensors fn creates with its inputs' dtype (mg.Tensor(..., dtype=x.dtype))")
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)

    def scalar():
        with no_grad():
            return float((fn(*inputs).data * weights).sum())

    analytic = grad((out * weights).sum(), inputs)
    for i, (t, exact) in enumerate(zip(inputs, analytic)):
        numeric = np.zeros(t.shape)
        data = t.data               # perturbed in place, element by element, whatever its layout
        for index in np.ndindex(t.shape):
            original = data[index]
            data[index] = original + eps
            up = scalar()
            data[index] = original - eps
            down = scalar()
            data[index] = original
            numeric[index] = (up - down) / (2 * eps)
        excess = np.abs(exact - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            worst = tuple(int(k) for k in np.unravel_index(np.argmax(excess), t.shape))
            raise AssertionError(
                f"gradcheck: input {i} of shape {t.shape}: largest mismatch at index {worst}: "
                f"engine {exact[worst]:.6g} vs finite differences {numeric[worst]:.6g} "
                f"(|difference| {abs(exact[worst] - numeric[worst]):.3g} > atol {atol} + rtol {rtol} "
                "* |finite difference|)")
    return True
