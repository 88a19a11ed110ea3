"""Second order: every op's gradient differentiated again (create_graph), checked in float64
against finite differences of its gradient, broadcasting included; the checker itself; hvp,
Hessians by columns, and backward(create_graph=True)."""
import itertools

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from conftest import tensor64
from minigrad import autograd

BROADCAST_PAIRS = list(itertools.product([(), (3,), (2, 3), (1, 3), (2, 1)], repeat=2))

BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
}


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_PAIRS)
def test_binary_ops_are_twice_differentiable_with_broadcasting(rng, op, shape_a, shape_b):
    a, b = tensor64(rng, shape_a, 0.5, 2.0), tensor64(rng, shape_b, 0.5, 2.0)
    assert mg.gradgradcheck(BINARY_OPS[op], [a, b])


@pytest.mark.parametrize("shape_a,shape_b", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)),
                                             ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
                                             ((2, 2, 3), (2, 3, 4)), ((3,), (2, 3, 4))])
def test_matmul_is_twice_differentiable_for_vectors_matrices_and_batches(rng, shape_a, shape_b):
    assert mg.gradgradcheck(lambda a, b: a @ b, [tensor64(rng, shape_a), tensor64(rng, shape_b)])


UNARY_OPS = {
    "neg": (lambda x: -x, -1, 1),
    "exp": (lambda x: x.exp(), -1, 1),
    "log": (lambda x: x.log(), 0.5, 2),
    "tanh": (lambda x: x.tanh(), -2, 2),
    "sigmoid": (lambda x: x.sigmoid(), -3, 3),
    "relu": (lambda x: x.relu() * x, -1, 1),          # times x: a non-zero second derivative
    "abs": (lambda x: x.abs() * x, -1, 1),
    "sqrt": (lambda x: x.sqrt(), 0.5, 2),
    "clip": (lambda x: x.clip(-0.5, 0.5) * x, -1, 1),
    "pow_scalar": (lambda x: x ** 3, -1, 1),
    "sum": (lambda x: x.sum() * x, -1, 1),
    "mean_axis": (lambda x: x.mean(axis=-1, keepdims=True) * x, -1, 1),
    "max": (lambda x: x.max(axis=0) * x, -1, 1),
    "reshape": (lambda x: x.reshape(-1) * x.reshape(-1), -1, 1),
    "transpose": (lambda x: x.T * x.T, -1, 1),
    "broadcast_to": (lambda x: x.broadcast_to((2, *x.shape)) * x, -1, 1),
    "slice": (lambda x: x[..., :2] * x[..., 1:3], -1, 1),
    "index_twice": (lambda x: x.reshape(-1)[np.array([0, 2, 0])] ** 2, -1, 1),
    "softmax": (lambda x: F.softmax(x), -2, 2),
    "log_softmax": (lambda x: F.log_softmax(x, axis=0), -2, 2),
}


@pytest.mark.parametrize("op", UNARY_OPS)
@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_unary_ops_and_reductions_are_twice_differentiable(rng, op, shape):
    fn, low, high = UNARY_OPS[op]
    x = tensor64(rng, shape, low, high)
    x.data[np.abs(x.data) < 1e-3] = 0.1          # kinks out of the finite-difference stencil
    x.data[np.abs(np.abs(x.data) - 0.5) < 1e-3] = 0.3
    assert mg.gradgradcheck(fn, [x])


@pytest.mark.parametrize("fn", [F.maximum, F.minimum,
                                lambda a, b: F.where(a.data > 0, a * a, b * a)])
@pytest.mark.parametrize("shape_a,shape_b", [((2, 3), (3,)), ((2, 1), (1, 3))])
def test_selections_are_twice_differentiable_with_broadcasting(rng, fn, shape_a, shape_b):
    a, b = tensor64(rng, shape_a), tensor64(rng, shape_b)
    assert mg.gradgradcheck(lambda a, b: fn(a, b) * fn(a, b), [a, b])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_and_stack_are_twice_differentiable(rng, axis):
    a, b = tensor64(rng, (2, 3)), tensor64(rng, (2, 3))
    assert mg.gradgradcheck(lambda a, b: F.concat([a * b, b], axis=axis) ** 2, [a, b])
    assert mg.gradgradcheck(lambda a, b: F.stack([a * b, b], axis=axis) ** 2, [a, b])


def test_cross_entropy_is_twice_differentiable(rng):
    logits, labels = tensor64(rng, (4, 3), -2, 2), np.array([0, 2, 1, 2])
    assert mg.gradgradcheck(lambda z: F.cross_entropy(z, labels), [logits])


def test_fused_lstm_cell_is_twice_differentiable(rng):
    x, h, c = tensor64(rng, (2, 2)), tensor64(rng, (2, 3)), tensor64(rng, (2, 3))
    W, b = tensor64(rng, (5, 12)), tensor64(rng, (12,))
    assert mg.gradgradcheck(lambda *args: F.concat(F.lstm_cell(*args), axis=1), [x, h, c, W, b])


def test_fused_lstm_cell_is_twice_differentiable_with_constant_input_and_state(rng):
    x, h, c = (mg.Tensor(rng.uniform(-1, 1, shape), dtype=np.float64) for shape in
               [(3, 1), (3, 2), (3, 2)])
    W, b = tensor64(rng, (3, 8)), tensor64(rng, (8,))
    assert mg.gradgradcheck(lambda W, b: F.lstm_cell(x, h, c, W, b)[0], [W, b])


def test_fused_lstm_cell_with_one_tensor_as_h_and_c_is_twice_differentiable(rng):
    x, state = tensor64(rng, (2, 2)), tensor64(rng, (2, 3))
    W, b = tensor64(rng, (5, 12)), tensor64(rng, (12,))
    assert mg.gradgradcheck(lambda x, s, W, b: F.lstm_cell(x, s, s, W, b)[1], [x, state, W, b])


@pytest.mark.parametrize("stride,padding,bias", [(1, 0, True), (2, 1, False), ((1, 2), (1, 0), True)])
def test_conv2d_is_twice_differentiable(rng, stride, padding, bias):
    x, w = tensor64(rng, (2, 2, 4, 4)), tensor64(rng, (2, 2, 2, 2))
    b = tensor64(rng, (2,)) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    assert mg.gradgradcheck(
        lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding).tanh(), inputs)


def test_max_pool2d_is_twice_differentiable(rng):
    x = tensor64(rng, (1, 2, 4, 4))
    assert mg.gradgradcheck(lambda x: F.max_pool2d(x * x, 2) ** 2, [x])


# ----- the checker itself -----
def square_with_output_as_constant(x):
    """x**2 as exp(2 log x) with exp's Tensor form reading its output as a constant: first
    derivatives right, second derivatives wrong."""
    @autograd.saved_as(lambda out: out.data)
    def exp_backward(g, out):
        return (g * out,)
    doubled_log = x.log() * 2
    return mg.op_result(np.exp(doubled_log.data), (doubled_log,), exp_backward, np.exp(doubled_log.data))


def test_gradgradcheck_catches_a_wrong_second_derivative(rng):
    x = tensor64(rng, (3,), 0.5, 2.0)
    assert mg.gradcheck(square_with_output_as_constant, [x])
    with pytest.raises(AssertionError, match=r"gradgradcheck: second derivatives in input 0 of "
                                             r"shape \(3,\): largest mismatch at index"):
        mg.gradgradcheck(square_with_output_as_constant, [x])


def scale_by_three_with_g_as_constant(x):
    """3x, with a Tensor form that cuts g from its graph: the gradient's value is right, its
    derivative in g is lost."""
    def backward(g, out=None):
        return (mg.Tensor(3 * g.data, dtype=g.dtype),) if out is not None else (3 * g,)
    return mg.op_result(3 * x.data, (x,), backward)


def test_gradgradcheck_catches_a_gradient_cut_from_the_gradient_it_was_sent(rng):
    x = tensor64(rng, (2, 2))
    with pytest.raises(AssertionError, match=r"derivatives of the gradient in the output's "
                                             r"gradient, shape \(2, 2\)"):
        mg.gradgradcheck(scale_by_three_with_g_as_constant, [x])


def test_gradgradcheck_catches_a_tensor_form_with_a_wrong_first_derivative(rng):
    def doubled(x):
        def backward(g, out=None):
            return (g * 3,) if out is not None else (g * 2,)
        return mg.op_result(2 * x.data, (x,), backward)

    with pytest.raises(AssertionError, match=r"input 0 of shape \(3,\), gradient under "
                                             r"create_graph: .* vs the first-order gradient"):
        mg.gradgradcheck(doubled, [tensor64(rng, (3,))])


def test_gradgradcheck_checks_float32_inputs_in_float64_with_a_warning(rng):
    x = mg.Tensor(rng.uniform(-1, 1, 3), requires_grad=True)
    with pytest.warns(UserWarning, match=r"gradgradcheck: input 0 \(float32\) checked in float64"):
        assert mg.gradgradcheck(lambda x: x.tanh(), [x])
    assert x.dtype == np.float32


# ----- what create_graph does, and refuses -----
def test_a_first_order_backward_under_create_graph_is_an_error_naming_the_op(rng):
    def softplus(x):
        def backward(g):
            return (g * mg.tensor.sigmoid(x.data),)
        return mg.op_result(np.logaddexp(0, x.data), (x,), backward)

    x = tensor64(rng, (3,))
    assert mg.gradcheck(softplus, [x])
    with pytest.raises(NotImplementedError, match=r"the backward of softplus \(.*line \d+\) is "
                                                  r"first order only: create_graph=True needs"):
        mg.grad(softplus(x).sum(), x, create_graph=True)


def test_a_tensor_form_that_returns_an_array_is_an_error_naming_the_op(rng):
    def cut(x):
        def backward(g, out=None):
            return (np.asarray(g.data if out is not None else g),)
        return mg.op_result(x.data.copy(), (x,), backward)

    x = tensor64(rng, (3,))
    with pytest.raises(ValueError, match=r"the backward of cut .* returned ndarray for an input "
                                         r"under create_graph"):
        mg.grad((cut(x) * x).sum(), x, create_graph=True)


def test_create_graph_returns_tensors_and_first_order_returns_arrays(rng):
    x = tensor64(rng, (3,))
    loss = (x * x * x).sum()
    plain, graphed = mg.grad(loss, x), mg.grad(loss, x, create_graph=True)
    assert type(plain) is np.ndarray and isinstance(graphed, mg.Tensor) and graphed.requires_grad
    np.testing.assert_allclose(graphed.data, plain)
    np.testing.assert_allclose(plain, 3 * x.data ** 2)


def test_third_derivative_of_a_cube(rng):
    x = mg.Tensor(2.0, requires_grad=True, dtype=np.float64)
    first = mg.grad(x ** 3, x, create_graph=True)
    second = mg.grad(first, x, create_graph=True)
    assert (first.item(), second.item(), mg.grad(second, x).item()) == (12.0, 12.0, 6.0)


def test_hvp_of_a_quadratic_form_is_the_symmetric_part_times_v(rng):
    A, v = rng.standard_normal((4, 4)), rng.standard_normal(4)
    x = tensor64(rng, (4,))
    (hv,) = mg.hvp(lambda x: x @ (mg.Tensor(A, dtype=np.float64) @ x), [x], [v])
    np.testing.assert_allclose(hv, (A + A.T) @ v)


def rosenbrock(p):
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def test_a_full_hessian_by_columns_matches_rosenbrocks(rng):
    p = mg.Tensor([-0.5, 1.5], requires_grad=True, dtype=np.float64)
    columns = [mg.hvp(rosenbrock, [p], [e])[0] for e in np.eye(2)]
    x, y = p.data
    np.testing.assert_allclose(np.stack(columns, axis=1),
                               [[2 - 400 * (y - x * x) + 800 * x * x, -400 * x], [-400 * x, 200]])


def test_hvp_of_a_linear_function_is_zero(rng):
    x = tensor64(rng, (3,))
    np.testing.assert_array_equal(mg.hvp(lambda x: (x * 2).sum(), [x], [np.ones(3)])[0], 0)


def test_backward_with_create_graph_leaves_tensor_grads_that_differentiate_again(rng):
    x, v = tensor64(rng, (3,)), rng.standard_normal(3)
    (x.tanh() * x).sum().backward(create_graph=True)
    assert isinstance(x.grad, mg.Tensor) and x.grad.requires_grad
    first = x.grad
    (first * v).sum().backward()                      # adds H v to the Tensor already there
    np.testing.assert_allclose(x.grad.data - first.data,
                               mg.hvp(lambda x: (x.tanh() * x).sum(), [x], [v])[0])


def test_backward_with_create_graph_keeps_the_graph(rng):
    x = tensor64(rng, (3,))
    y = (x * x).sum()
    y.backward(create_graph=True)
    y.backward(create_graph=True)                      # not freed: a second walk works
    np.testing.assert_allclose(x.grad.data, 4 * x.data)


def test_a_gradient_output_tensor_is_differentiated_through(rng):
    x, w = tensor64(rng, (3,)), tensor64(rng, (3,))
    g = mg.grad(x.exp(), x, grad_output=w, create_graph=True)       # w * exp(x)
    np.testing.assert_allclose(mg.grad(g.sum(), w), np.exp(x.data))


def test_a_batch_norm_layer_composed_of_primitives_is_twice_differentiable(rng):
    norm = mg.nn.BatchNorm2d(2)
    for p in norm.parameters():
        p.data = p.data.astype(np.float64) + rng.uniform(-0.5, 0.5, p.shape)
    x = tensor64(rng, (3, 2, 2, 2))
    assert mg.gradgradcheck(lambda x, *params: norm(x).tanh(), [x] + norm.parameters())


def test_create_graph_through_a_freed_graph_says_it_was_freed(rng):
    x = tensor64(rng, (3,))
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward through a graph that has already been freed"):
        mg.grad(y, x, create_graph=True)


@pytest.mark.parametrize("fn", [
    lambda x: (x[..., :2] ** 3).sum() + (x.reshape(-1)[np.array([0, 0, 3])] ** 3).sum(),
    lambda x: (x.tanh().mean(axis=0) ** 2).sum() + F.max_pool2d(x.reshape(1, 1, 2, 3), 2).exp().sum(),
    lambda x: F.cross_entropy(F.concat([x, x * x], axis=1), np.array([0, 5])),
])
def test_gradients_taken_with_create_graph_are_twice_differentiable_too(rng, fn):
    # third and fourth derivatives: the ops the Tensor forms use (the scatter of a selection,
    # broadcast_to for a reduction) have Tensor forms of their own
    x = tensor64(rng, (2, 3))
    assert mg.gradgradcheck(lambda x: mg.grad(fn(x), x, create_graph=True), [x])


@pytest.mark.parametrize("stride,padding", [((1, 1), (0, 0)), ((2, 1), (1, 2))])
def test_the_composed_forms_differentiated_under_create_graph_compute_the_fused_values(
        rng, stride, padding):
    x, w, b = tensor64(rng, (2, 3, 5, 4)), tensor64(rng, (4, 3, 2, 3)), tensor64(rng, (4,))
    np.testing.assert_allclose(F._conv2d_composed(x, w, b, stride, padding).data,
                               F.conv2d(x, w, b, stride, padding).data, atol=1e-12)
    x, h, c = tensor64(rng, (3, 2)), tensor64(rng, (3, 4)), tensor64(rng, (3, 4))
    W, b = tensor64(rng, (6, 16)), tensor64(rng, (16,))
    for composed, fused in zip(F._lstm_cell_composed(x, h, c, W, b), F.lstm_cell(x, h, c, W, b)):
        np.testing.assert_allclose(composed.data, fused.data, atol=1e-12)
