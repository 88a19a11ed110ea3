"""Primitive ops: values, gradients against finite differences (float64), dtypes and errors."""
import itertools

import numpy as np
import pytest

import minigrad as mg
from conftest import tensor64

BROADCAST_SHAPES = [(), (3,), (2, 3), (1, 3), (2, 1)]
SHAPE_PAIRS = list(itertools.product(BROADCAST_SHAPES, repeat=2))

BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
}


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("shape_a,shape_b", SHAPE_PAIRS)
def test_binary_op_gradients_with_broadcasting(rng, op, shape_a, shape_b):
    # positive operands keep div away from 0 and pow's log defined
    a, b = tensor64(rng, shape_a, 0.5, 2.0), tensor64(rng, shape_b, 0.5, 2.0)
    assert mg.gradcheck(BINARY_OPS[op], [a, b])
    out = BINARY_OPS[op](a, b)
    np.testing.assert_allclose(out.data, BINARY_OPS[op](a.data, b.data))


@pytest.mark.parametrize("shape_a,shape_b", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)),
                                             ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                                             ((5, 2, 3), (5, 3, 4)), ((2, 3), (5, 3, 4)),
                                             ((3,), (5, 3, 4)), ((5, 2, 3), (3,))])
def test_matmul_gradients_for_vectors_matrices_and_batches(rng, shape_a, shape_b):
    a, b = tensor64(rng, shape_a), tensor64(rng, shape_b)
    assert mg.gradcheck(lambda a, b: a @ b, [a, b])
    np.testing.assert_allclose((a @ b).data, a.data @ b.data)


def test_elementwise_ops_save_arrays_and_define_no_closure_broadcast_or_not(rng):
    """The frequent elementwise ops record `backward(g, saved)`, no closure; where an input was
    broadcast, the sweep sums its gradient back, as it does a closure's."""
    x, y, row = tensor64(rng, (2, 3)), tensor64(rng, (2, 3)), tensor64(rng, (3,))
    constant_row = mg.Tensor(row.data, dtype=np.float64)
    for out in [x + y, x - y, x * y, x / y, -x, x.exp(), x.abs().log(), x.tanh(), x.sigmoid(),
                x.relu(), x.abs(), x.abs().sqrt(), x * 2.0, 1.0 - x, x / constant_row,
                x + row, row - x, x * row, x / row, row / x]:
        assert out._saved is not None and out._backward.__name__.endswith("_backward")
    # one node receiving gradients of both forms
    assert mg.gradcheck(lambda x, row: (x * row + x.tanh() * x * 2.0 - row / (x * x + 1)
                                        + x / constant_row).sum(), [x, row])


def test_ops_compute_no_gradient_for_a_constant_operand(rng):
    """Only the gradients a parent needs are computed: x @ W with a constant minibatch x costs
    one matmul in the backward, not two."""
    x, c = tensor64(rng, (4, 4)), mg.Tensor(rng.standard_normal((4, 4)), dtype=np.float64)
    for out, constant_side in [(x @ c, 1), (x.T @ c, 1), (c @ x.T, 0), (x * c, 1), (c * x, 0),
                               (x / c, 1)]:
        g = np.ones((4, 4))
        grads = out._backward(g) if out._saved is None else out._backward(g, out._saved)
        assert grads[constant_side] is None
        assert grads[1 - constant_side] is not None


def test_matmul_gives_a_transposed_operand_its_gradient_in_its_layout(rng):
    a, b = tensor64(rng, (5, 3)), tensor64(rng, (5, 2))
    t = a.T                                    # (3, 5), stored column by column
    g = mg.grad((t @ b).sum(), t)
    assert g.flags.f_contiguous
    np.testing.assert_allclose(g, np.ones((3, 2)) @ b.data.T)
    assert mg.gradcheck(lambda a, b: a.T @ b, [a, b])


def test_matmul_of_a_transposed_matrix_and_a_batch_of_matrices_gets_gradients(rng):
    a, batch = tensor64(rng, (5, 3)), tensor64(rng, (4, 5, 2))
    assert mg.gradcheck(lambda a, batch: a.T @ batch, [a, batch])


def test_reflected_operators_with_numbers_and_arrays(rng):
    a = tensor64(rng, (2, 3), 0.5, 2.0)
    assert mg.gradcheck(lambda a: 2.0 + a, [a])
    assert mg.gradcheck(lambda a: 2.0 - a, [a])
    assert mg.gradcheck(lambda a: 3.0 * a, [a])
    assert mg.gradcheck(lambda a: 1.0 / a, [a])
    assert mg.gradcheck(lambda a: 2.0 ** a, [a])
    assert mg.gradcheck(lambda a: np.ones((4, 2)) @ a, [a])
    assert mg.gradcheck(lambda a: np.ones(3) + a, [a])
    assert isinstance(np.ones(3) * a, mg.Tensor)


UNARY_OPS = {
    "neg": (lambda x: -x, -1, 1),
    "exp": (lambda x: x.exp(), -1, 1),
    "log": (lambda x: x.log(), 0.5, 2),
    "tanh": (lambda x: x.tanh(), -2, 2),
    "sigmoid": (lambda x: x.sigmoid(), -3, 3),
    "relu": (lambda x: x.relu(), -1, 1),
    "abs": (lambda x: x.abs(), -1, 1),
    "sqrt": (lambda x: x.sqrt(), 0.5, 2),
    "clip": (lambda x: x.clip(-0.5, 0.5), -1, 1),
    "clip_low_only": (lambda x: x.clip(lo=-0.5), -1, 1),
    "pow_scalar": (lambda x: x ** 3, -1, 1),
}


@pytest.mark.parametrize("op", UNARY_OPS)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4)])
def test_unary_op_gradients(rng, op, shape):
    fn, low, high = UNARY_OPS[op]
    x = tensor64(rng, shape, low, high)
    # keep kinks (relu, abs at 0; clip at its bounds) out of the finite-difference stencil
    x.data[np.abs(x.data) < 1e-3] = 0.1
    x.data[np.abs(np.abs(x.data) - 0.5) < 1e-3] = 0.3
    assert mg.gradcheck(fn, [x])


def test_unary_op_values(rng):
    x = tensor64(rng, (4,), 0.5, 2)
    np.testing.assert_allclose(x.exp().data, np.exp(x.data))
    np.testing.assert_allclose(x.log().data, np.log(x.data))
    np.testing.assert_allclose(x.sigmoid().data, 1 / (1 + np.exp(-x.data)))
    np.testing.assert_allclose((-x).relu().data, 0)
    np.testing.assert_allclose(x.clip(0.7, 1.5).data, np.clip(x.data, 0.7, 1.5))


def test_sigmoid_is_finite_for_huge_inputs():
    x = mg.Tensor([-1e4, 0.0, 1e4], requires_grad=True)
    y = x.sigmoid()
    np.testing.assert_allclose(y.data, [0, 0.5, 1])
    y.sum().backward()
    assert np.all(np.isfinite(x.grad))


def test_sign_has_zero_gradient(rng):
    x = tensor64(rng, (3,))
    y = (x.sign() * 2.0).sum() + (x * 0).sum()
    np.testing.assert_array_equal(mg.grad(y, x), np.zeros(3))
    np.testing.assert_array_equal(x.sign().data, np.sign(x.data))


REDUCTION_CASES = [((), None, False), ((3,), None, False), ((3,), 0, True), ((2, 3), None, True)]
REDUCTION_CASES += [((2, 3, 4), axis, keepdims)
                    for axis in [None, 0, 1, 2, -1, (0, 2), (1, -1)] for keepdims in [False, True]]


@pytest.mark.parametrize("shape,axis,keepdims", REDUCTION_CASES)
@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_reduction_gradients_every_axis_and_keepdims(rng, reduction, shape, axis, keepdims):
    x = tensor64(rng, shape)
    fn = lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims)  # noqa: E731
    expected = getattr(np, "max" if reduction == "max" else reduction)(x.data, axis=axis,
                                                                      keepdims=keepdims)
    out = fn(x)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected)
    assert mg.gradcheck(fn, [x])


def test_max_splits_gradient_between_ties():
    x = mg.Tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0, 0.5, 0.5])


@pytest.mark.parametrize("index", [1, slice(1, 3), (slice(None), 2), (Ellipsis, 0),
                                   (None, 1), (1, slice(None, None, -1))])
def test_basic_indexing_gradients(rng, index):
    x = tensor64(rng, (3, 4))
    assert mg.gradcheck(lambda x: x[index], [x])
    np.testing.assert_array_equal(x[index].data, x.data[index])


def test_integer_array_indexing_accumulates_repeated_picks(rng):
    x = tensor64(rng, (4, 3))
    idx = np.array([0, 2, 2, 3, 0, 0])
    assert mg.gradcheck(lambda x: x[idx], [x])
    assert mg.gradcheck(lambda x: x[np.arange(3), np.array([0, 2, 2])], [x])
    x[idx].sum().backward()
    np.testing.assert_allclose(x.grad[:, 0], [3, 0, 2, 1])


def test_indexing_with_a_tensor_index(rng):
    x = tensor64(rng, (4,))
    picked = x[mg.Tensor(np.array([3, 1]))]
    np.testing.assert_array_equal(picked.data, x.data[[3, 1]])


@pytest.mark.parametrize("shape,new_shape", [((2, 3), (3, 2)), ((2, 3), (6,)), ((6,), (1, 2, 3)),
                                             ((2, 3), (-1,))])
def test_reshape_gradients(rng, shape, new_shape):
    x = tensor64(rng, shape)
    assert mg.gradcheck(lambda x: x.reshape(new_shape), [x])
    assert mg.gradcheck(lambda x: x.reshape(*new_shape), [x])


@pytest.mark.parametrize("axes", [(), (1, 0, 2), (2, 0, 1), (0, 2, 1)])
def test_transpose_gradients(rng, axes):
    x = tensor64(rng, (2, 3, 4))
    assert mg.gradcheck(lambda x: x.transpose(*axes), [x])
    np.testing.assert_array_equal(x.transpose(*axes).data, x.data.transpose(*axes))
    assert x.T.shape == (4, 3, 2)


@pytest.mark.parametrize("shape,target", [((), (2, 3)), ((3,), (2, 3)), ((2, 1), (2, 3)),
                                          ((1, 3), (4, 2, 3))])
def test_broadcast_to_gradients_are_summed_back_by_the_engine(rng, shape, target):
    x = tensor64(rng, shape)
    assert mg.gradcheck(lambda x: x.broadcast_to(target), [x])
    np.testing.assert_array_equal(x.broadcast_to(target).data, np.broadcast_to(x.data, target))


def test_comparisons_give_booleans_without_gradient(rng):
    x = tensor64(rng, (3,))
    for result in [x > 0, x >= 0, x < 0, x <= 0, x == x, x != 0]:
        assert result.dtype == bool and not result.requires_grad


# ----- dtypes -----
def test_float_data_defaults_to_float32_and_float64_is_kept_when_asked():
    assert mg.Tensor([1.0, 2.0]).dtype == np.float32
    assert mg.Tensor(np.zeros(2)).dtype == np.float32
    assert mg.Tensor(np.zeros(2), dtype=np.float64).dtype == np.float64
    assert mg.Tensor([1, 2]).dtype.kind == "i"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_keep_their_input_dtype(dtype):
    x = mg.Tensor(np.linspace(0.1, 1, 6).reshape(2, 3), requires_grad=True, dtype=dtype)
    results = [x + 1.5, x * np.float64(2.0), x / 3, x ** 2, 2 ** x, x @ np.ones((3, 2)), x.exp(),
               x.log(), x.tanh(), x.sigmoid(), x.relu(), x.sqrt(), x.mean(), x.max(axis=0),
               x.sum(axis=1), x.clip(0.2, 0.5), x[0], x.T, x.reshape(6)]
    for r in results:
        assert r.dtype == dtype
    sum(r.sum() for r in results).backward()
    assert x.grad.dtype == dtype


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mg.Tensor([1, 2, 3], requires_grad=True)


# ----- repr -----
def test_repr_aligns_the_rows_of_a_matrix_under_the_first():
    t = mg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert repr(t) == ("Tensor([[1., 2.],\n"
                       "        [3., 4.]], requires_grad=True)")
    assert repr(mg.Tensor(np.arange(8.0).reshape(2, 2, 2))) == ("Tensor([[[0., 1.],\n"
                                                                 "         [2., 3.]],\n"
                                                                 "\n"
                                                                 "        [[4., 5.],\n"
                                                                 "         [6., 7.]]])")


def test_repr_wraps_long_rows_aligned_too():
    assert repr(mg.Tensor(np.arange(24.0).reshape(2, 12), requires_grad=True)) == (
        "Tensor([[ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11.],\n"
        "        [12., 13., 14., 15., 16., 17., 18., 19., 20., 21., 22., 23.]], requires_grad=True)")
    assert repr(mg.Tensor(np.arange(40.0).reshape(2, 20))) == (
        "Tensor([[ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12.,\n"
        "         13., 14., 15., 16., 17., 18., 19.],\n"
        "        [20., 21., 22., 23., 24., 25., 26., 27., 28., 29., 30., 31., 32.,\n"
        "         33., 34., 35., 36., 37., 38., 39.]])")


def test_repr_names_the_dtype_unless_it_is_float32_the_default():
    assert repr(mg.Tensor([1.0, 2.5])) == "Tensor([1. , 2.5])"
    assert repr(mg.Tensor(3.5)) == "Tensor(3.5)"
    assert repr(mg.Tensor([1.0, 2.5], dtype=np.float64, requires_grad=True)) == \
        "Tensor([1. , 2.5], dtype=float64, requires_grad=True)"
    assert repr(mg.Tensor([1, 2])) == f"Tensor([1, 2], dtype={np.array([1, 2]).dtype})"
    assert repr(mg.Tensor([1.0]) > 0) == "Tensor([ True], dtype=bool)"


# ----- bad input -----
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_shape_mismatch_names_the_op_and_both_shapes(op):
    a, b = mg.Tensor(np.ones((2, 3))), mg.Tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=rf"{op}: shapes \(2, 3\) and \(4,\)"):
        BINARY_OPS[op](a, b)


def test_matmul_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        mg.Tensor(np.ones((2, 3))) @ mg.Tensor(np.ones((4, 5)))


def test_reshape_and_transpose_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\).*\(4,\)"):
        mg.Tensor(np.ones((2, 3))).reshape(4)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\)"):
        mg.Tensor(np.ones((2, 3))).transpose(0, 0)
    with pytest.raises(ValueError, match=r"broadcast_to: shape \(2, 3\) cannot be broadcast to "
                                         r"\(3, 3\)"):
        mg.Tensor(np.ones((2, 3))).broadcast_to((3, 3))


def test_tensor_copies_its_input():
    source = np.zeros(3, np.float32)
    t = mg.Tensor(source)
    source[0] = 5
    assert t.data[0] == 0
