"""Check an op's backward against central finite differences: its gradients (`gradcheck`), and
the gradients of its gradients under create_graph (`gradgradcheck`)."""
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
    return _in_float64("gradcheck", inputs, lambda inputs: _check(fn, inputs, eps, atol, rtol, seed))


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare the engine's second derivatives of `fn(*inputs)` with central differences of its
    first-order gradients, in float64 as `gradcheck` (and converting inputs as it does).

    With fixed random weights w (of the output's shape) and u (one array per input), the
    gradients G = d/dx sum(fn(x) * w) are computed with create_graph=True and checked against
    the first-order ones; then the scalar s = sum_i sum(G_i * u_i) is differentiated:
    - with respect to each input: ds/dx = H u, the Hessian of sum(fn * w) times u, against
      central differences of s computed from first-order gradients;
    - with respect to w: how the gradient depends on the gradient it was sent (ds/dw is the
      derivative of fn along u), against central differences of s in w.
    So every op's backward is checked both as a function of its inputs and of g.

    Returns True, or raises AssertionError naming what was differentiated and the largest
    mismatch.
    """
    return _in_float64("gradgradcheck", inputs,
                       lambda inputs: _check_second(fn, inputs, eps, atol, rtol, seed))


def _in_float64(who, inputs, check):
    """check(inputs), with float32 and float16 inputs converted to float64 in place for it."""
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or t.dtype.kind != "f":
            raise TypeError(f"{who}: input {i} must be a floating-point Tensor, got {t!r:.80}")
    coarse = [i for i, t in enumerate(inputs) if t.dtype.itemsize < 8]
    if coarse:
        which = ", ".join(f"{i} ({inputs[i].dtype})" for i in coarse)
        warnings.warn(
            f"{who}: input{'s' if len(coarse) > 1 else ''} {which} checked in float64: in "
            "float32 or float16, finite differences are mostly rounding noise and a correct "
            "backward would fail. Each is converted in place for the check and gets its own "
            "array back after. Pass float64 inputs to silence this warning.", stacklevel=3)
    originals = [t.data for t in inputs]
    try:
        for i in coarse:
            inputs[i].data = originals[i].astype(np.float64)
        return check(inputs)
    finally:
        for t, data in zip(inputs, originals):
            t.data = data


def _float64_output(fn, inputs, who):
    out = fn(*inputs)
    if out.dtype.kind == "f" and out.dtype.itemsize < 8:
        raise TypeError(
            f"{who}: fn returned {out.dtype} from float64 inputs, so it computes in "
            f"{out.dtype} somewhere, where finite differences are mostly rounding noise; make "
            "the tensors fn creates with its inputs' dtype (mg.Tensor(..., dtype=x.dtype))")
    return out


def central_differences(scalar, data, eps):
    """Central differences of scalar() in each element of `data`, which is perturbed in place,
    element by element, whatever its layout."""
    numeric = np.zeros(data.shape)
    for index in np.ndindex(data.shape):
        original = data[index]
        data[index] = original + eps
        up = scalar()
        data[index] = original - eps
        down = scalar()
        data[index] = original
        numeric[index] = (up - down) / (2 * eps)
    return numeric


def _assert_close(exact, numeric, atol, rtol, what, against=("finite differences", "finite difference")):
    """Raise the AssertionError naming `what` and the worst element, if some element of exact
    lies further from numeric than atol + rtol * |numeric|; `against` names numeric (plural,
    singular)."""
    excess = np.abs(exact - numeric) - (atol + rtol * np.abs(numeric))
    if excess.size and excess.max() > 0:
        worst = tuple(int(k) for k in np.unravel_index(np.argmax(excess), exact.shape))
        raise AssertionError(
            f"{what}: largest mismatch at index {worst}: engine {exact[worst]:.6g} vs {against[0]} "
            f"{numeric[worst]:.6g} (|difference| {abs(exact[worst] - numeric[worst]):.3g} > atol "
            f"{atol} + rtol {rtol} * |{against[1]}|)")


def _check(fn, inputs, eps, atol, rtol, seed):
    """gradcheck on float64 inputs."""
    out = _float64_output(fn, inputs, "gradcheck")
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)

    def scalar():
        with no_grad():
            return float((fn(*inputs).data * weights).sum())

    analytic = grad((out * weights).sum(), inputs)
    for i, (t, exact) in enumerate(zip(inputs, analytic)):
        _assert_close(exact, central_differences(scalar, t.data, eps), atol, rtol,
                      f"gradcheck: input {i} of shape {t.shape}")
    return True


def _check_second(fn, inputs, eps, atol, rtol, seed):
    """gradgradcheck on float64 inputs."""
    out = _float64_output(fn, inputs, "gradgradcheck")
    rng = np.random.default_rng(seed)
    w = Tensor(rng.standard_normal(out.shape), requires_grad=True, dtype=out.dtype)
    u = [rng.standard_normal(t.shape) for t in inputs]

    def first_order():
        return grad((fn(*inputs) * w.data).sum(), inputs)

    def scalar():                 # s from first-order gradients, at the current inputs and w
        return float(sum((g * ui).sum() for g, ui in zip(first_order(), u)))

    gradients = grad((out * w).sum(), inputs, create_graph=True)
    for i, (t, g, expected) in enumerate(zip(inputs, gradients, first_order())):
        _assert_close(g.data, expected, atol, rtol,
                      f"gradgradcheck: input {i} of shape {t.shape}, gradient under create_graph",
                      against=("the first-order gradient", "first-order gradient"))
    s = sum((g * ui).sum() for g, ui in zip(gradients, u))
    *analytic, analytic_w = grad(s, inputs + [w])
    for i, (t, exact) in enumerate(zip(inputs, analytic)):
        _assert_close(exact, central_differences(scalar, t.data, eps), atol, rtol,
                      f"gradgradcheck: second derivatives in input {i} of shape {t.shape}")
    _assert_close(analytic_w, central_differences(scalar, w.data, eps), atol, rtol,
                  f"gradgradcheck: derivatives of the gradient in the output's gradient, shape "
                  f"{out.shape}")
    return True
