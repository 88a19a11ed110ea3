"""The gradient checker: it passes correct ops, whatever their inputs' float dtype, and names
the worst element of a wrong one."""
import re
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from conftest import tensor64


def wrong_square(t):
    """x * x with a backward that is off by 10%."""
    return mg.op_result(t.data * t.data, (t,), lambda g: (g * t.data * 2.2,))


def softplus(x):
    """A correct op with a non-polynomial derivative, as docs/extending.md writes it."""
    a = x.data
    return mg.op_result(np.logaddexp(0, a), (x,), lambda g: (g * mg.tensor.sigmoid(a),))


def test_gradcheck_catches_a_wrong_backward(rng):
    with pytest.raises(AssertionError, match=r"gradcheck: input 0 of shape \(2, 3\): largest mismatch"):
        mg.gradcheck(wrong_square, [tensor64(rng, (2, 3))])


def test_the_mismatch_names_its_index_as_plain_ints():
    x = mg.Tensor(np.ones((3, 2)), requires_grad=True, dtype=np.float64)
    x.data[2, 1] = 3.0                       # the largest value: the largest error of wrong_square
    with pytest.raises(AssertionError, match=re.escape("largest mismatch at index (2, 1): ")):
        mg.gradcheck(wrong_square, [x])


def test_gradcheck_wants_float_tensors():
    with pytest.raises(TypeError, match="input 0 must be a floating-point Tensor"):
        mg.gradcheck(lambda t: t, [np.ones(2)])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_correct_op_on_low_precision_inputs_passes_checked_in_float64_with_a_warning(dtype, rng):
    x = mg.Tensor(rng.uniform(-3, 3, (3, 2)), requires_grad=True, dtype=dtype)
    data = x.data
    kept = data.copy()
    with pytest.warns(UserWarning, match=rf"input 0 \({np.dtype(dtype)}\) checked in float64: "
                                         r"in float32 or float16, finite differences are mostly "
                                         r"rounding noise"):
        assert mg.gradcheck(softplus, [x])
    assert x.data is data and x.dtype == dtype
    np.testing.assert_array_equal(x.data, kept)


def test_float64_inputs_are_checked_without_a_warning(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mg.gradcheck(softplus, [tensor64(rng, (3,))])


def test_a_wrong_backward_still_fails_on_float32_inputs_which_get_their_arrays_back(rng):
    x = mg.Tensor(rng.uniform(0.5, 2, (2, 3)), requires_grad=True)
    data = x.data
    with pytest.warns(UserWarning, match="input 0 \\(float32\\)"), \
            pytest.raises(AssertionError, match="largest mismatch"):
        mg.gradcheck(wrong_square, [x])
    assert x.data is data and x.dtype == np.float32


def test_float32_parameters_a_module_reads_itself_are_checked_in_place(rng):
    """fn may ignore its arguments and use the module's own parameters: they are the same
    objects, converted and perturbed in place."""
    layer = nn.Linear(3, 2, rng=0)
    x = tensor64(rng, (4, 3))
    with pytest.warns(UserWarning, match=r"inputs 1 \(float32\), 2 \(float32\) checked in float64"):
        assert mg.gradcheck(lambda x, *params: layer(x).tanh(), [x] + layer.parameters())
    assert all(p.dtype == np.float32 for p in layer.parameters())
    broken = nn.Linear(3, 2, rng=0)
    broken.forward = lambda x: wrong_square(x @ broken.weight + broken.bias)
    constant = mg.Tensor(x.data, dtype=np.float64)
    with pytest.warns(UserWarning), pytest.raises(AssertionError, match=r"input 0 of shape"):
        mg.gradcheck(lambda *params: broken(constant), broken.parameters())


def test_a_function_computing_in_float32_itself_is_a_type_error_not_a_mismatch(rng):
    def tanh_in_float32(x):
        out = np.tanh(x.data.astype(np.float32))
        return mg.op_result(out, (x,), lambda g: ((g * (1 - out * out)).astype(x.dtype),))
    with pytest.raises(TypeError, match=r"fn returned float32 from float64 inputs.*"
                                        r"dtype=x\.dtype"):
        mg.gradcheck(tanh_in_float32, [tensor64(rng, (3,))])


def test_an_input_of_any_memory_layout_is_perturbed(rng):
    """A transposed tensor's data is a view in column order: perturbing a flattened copy of it
    would leave the input unchanged."""
    x = tensor64(rng, (3, 4))
    assert mg.gradcheck(lambda t: t * t, [x.T])
