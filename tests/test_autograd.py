"""How gradients flow: accumulation, grad(), no_grad, detach, freeing, deep graphs, errors."""
import gc
import re
import tracemalloc

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from minigrad import tensor as tensor_module
from conftest import tensor64


def test_leaves_accumulate_and_intermediates_keep_no_grad():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [3 + 2, 3 + 4])
    assert y.grad is None


def test_a_tensor_used_twice_gets_both_contributions():
    x = mg.Tensor(2.0, requires_grad=True)
    y = x * x + x
    y.backward()
    assert x.grad == pytest.approx(5.0)


def test_a_tensor_used_many_times_gets_every_contribution():
    """The sweep adds the third and later contributions to a node into an array it made itself;
    an array an op hands to several parents (add gives its one g to both) is never changed."""
    x = mg.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    a = x + x
    y = (a + x) * x + x                       # 3x^2 + x, with x used six times
    gx, ga = mg.grad(y.sum(), [x, a])
    np.testing.assert_allclose(gx, 6 * x.data + 1)
    np.testing.assert_allclose(ga, x.data)


def test_slices_of_one_tensor_and_its_other_uses_all_reach_it(rng):
    """Basic slices send a gradient that is zero outside the slice; the sweep writes them into
    one array, before or after the tensor's other (dense) contributions."""
    def fn(x):
        early = x * 2.0
        parts = x[:, :3] * x[:, 3:] + x[1:3, ::2].sum(axis=0) + x[::-1, 1:4]
        return parts.sum(axis=0) + early[0, :3] + (x * x)[2, 3:]
    assert mg.gradcheck(fn, [tensor64(rng, (4, 6))])


def test_a_slice_of_transposed_data_gets_its_gradient_in_that_layout(rng):
    """lstm_cell's outputs are slices of Fortran-ordered data; their gradients keep that order,
    so the cell's backward reads contiguous rows."""
    t = tensor64(rng, (4, 3)).T                # (3, 4) stored column by column
    g = mg.grad(t[:, :2].sum() + (t[:, 2:] * 3.0).sum(), t)
    assert g.flags.f_contiguous and not g.flags.c_contiguous
    np.testing.assert_array_equal(g, np.array([[1, 1, 3, 3]] * 3))


def test_backward_with_an_explicit_gradient():
    x = mg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * 2).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad, [2, 0, -2])


def test_backward_on_a_non_scalar_without_gradient_says_so():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*pass the gradient"):
        (x * 2).backward()


def test_backward_on_a_tensor_without_grad_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.Tensor([1.0]).sum().backward()


def test_backward_with_a_gradient_of_the_wrong_shape():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient of shape \(3,\) given for an output of shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_frees_the_graph_unless_asked_to_keep_it():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4, 8])
    with pytest.raises(RuntimeError, match="already been freed"):
        y.backward()


def test_grad_returns_gradients_without_touching_dot_grad(rng):
    x, w = tensor64(rng, (3,)), tensor64(rng, (3,))
    loss = ((x * w).sum()) ** 2
    gx, gw = mg.grad(loss, [x, w])
    s = (x.data * w.data).sum()
    np.testing.assert_allclose(gx, 2 * s * w.data)
    np.testing.assert_allclose(gw, 2 * s * x.data)
    assert x.grad is None and w.grad is None
    loss.backward()  # the graph is still usable
    np.testing.assert_allclose(x.grad, gx)


def test_grad_with_respect_to_intermediate_tensors(rng):
    x = tensor64(rng, (3,))
    y = x * 2
    z = (y * y).sum()
    np.testing.assert_allclose(mg.grad(z, y), 2 * y.data)
    np.testing.assert_allclose(mg.grad(z, [x, y])[0], 8 * x.data)


def test_grad_counts_paths_through_another_input():
    a = mg.Tensor(1.5, requires_grad=True, dtype=np.float64)
    b = a * 2
    out = b + a
    ga, gb = mg.grad(out, [a, b])
    assert ga == pytest.approx(3.0) and gb == pytest.approx(1.0)


def test_grad_of_an_unrelated_input_is_zeros(rng):
    x, unused = tensor64(rng, (3,)), tensor64(rng, (2, 2))
    g = mg.grad((x * x).sum(), [x, unused])[1]
    np.testing.assert_array_equal(g, np.zeros((2, 2)))
    assert mg.grad(mg.Tensor([1.0]).sum(), unused).shape == (2, 2)


def test_grad_with_grad_output_for_non_scalar(rng):
    x = tensor64(rng, (3,))
    np.testing.assert_allclose(mg.grad(x * 3, x, grad_output=np.array([1.0, 2.0, 3.0])), [3, 6, 9])
    with pytest.raises(RuntimeError, match="pass the gradient"):
        mg.grad(x * 3, x)


def test_grad_does_not_walk_the_history_older_than_its_inputs():
    """grad(f(theta_t), theta_t) deep in an unrolled loop must not visit the loop's history."""
    w = mg.Tensor(0.5, requires_grad=True, dtype=np.float64)
    theta = mg.Tensor(1.0, requires_grad=True, dtype=np.float64)
    for _ in range(50):
        theta = theta - w * theta
    calls = []
    history_node = theta._parents[0]
    original = history_node._backward
    history_node._backward = lambda *args: calls.append(1) or original(*args)
    loss = theta * theta
    assert mg.grad(loss, theta) == pytest.approx(2 * theta.data)
    assert calls == []


def test_grad_does_not_run_the_backward_of_its_oldest_input():
    x = mg.Tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    middle = x * 3.0
    calls = []
    original = middle._backward
    middle._backward = lambda *args: calls.append(1) or original(*args)
    np.testing.assert_array_equal(mg.grad((middle * middle).sum(), middle), 2 * middle.data)
    assert calls == []
    np.testing.assert_array_equal(mg.grad((middle * middle).sum(), [middle, x])[1],
                                  18 * x.data)
    assert calls == [1]


def test_no_grad_records_nothing_and_restores_the_mode():
    x = mg.Tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y._parents == ()

    @mg.no_grad()
    def double(t):
        return t * 2
    assert not double(x).requires_grad


def test_detach_cuts_the_graph():
    x = mg.Tensor([3.0], requires_grad=True)
    y = x.detach() * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0])
    assert not x.detach().requires_grad
    assert x.detach().data is x.data


def test_a_chain_of_100000_ops_backpropagates():
    x = mg.Tensor(1.0, requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0)


def test_dropping_a_long_unused_graph_does_not_crash():
    x = mg.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    del y
    gc.collect()


def test_memory_does_not_grow_over_1000_training_iterations(rng):
    data = rng.standard_normal((32, 8)).astype(np.float32)
    labels = rng.integers(0, 4, 32)
    layers = [mg.nn.Linear(8, 16, rng=0), mg.nn.Linear(16, 4, rng=1)]
    params = [p for layer in layers for p in layer.parameters()]

    def train(steps):
        for _ in range(steps):
            logits = layers[1](layers[0](mg.Tensor(data)).sigmoid())
            F.cross_entropy(logits, labels).backward()
            for p in params:
                p.data -= 0.1 * p.grad
                p.grad = None

    train(50)
    gc.collect()
    tracemalloc.start()
    train(200)
    gc.collect()
    after_200, _ = tracemalloc.get_traced_memory()
    train(800)
    gc.collect()
    after_1000, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert after_1000 - after_200 < 100_000, (after_200, after_1000)


# ----- writing an op: op_result, and the errors of an op's author -----
def cube(x):
    """x ** 3 as a new op, the way docs/extending.md writes one."""
    a = x.data

    def backward(g):
        return (3 * g * a * a,)
    return mg.op_result(a ** 3, (x,), backward)


def test_op_result_is_the_public_way_to_write_an_op(rng):
    assert mg.op_result is tensor_module.op_result and "op_result" in mg.__all__
    x = tensor64(rng, (2, 3))
    y = cube(x)
    assert type(y) is mg.Tensor and y.requires_grad and y._parents == (x,)
    assert mg.gradcheck(cube, [x])


def test_op_result_records_nothing_without_a_parent_needing_grad_or_under_no_grad(rng):
    constant = mg.Tensor(rng.standard_normal(3))
    assert not cube(constant).requires_grad and cube(constant)._backward is None
    with mg.no_grad():
        y = cube(tensor64(rng, (3,)))
    assert not y.requires_grad and y._parents == ()


def test_op_result_gradients_of_a_broadcast_shape_are_summed_to_the_parent(rng):
    """A closure may return a parent's gradient in the shape numpy broadcast the parent to."""
    row, column = tensor64(rng, (3,)), tensor64(rng, (2, 1))

    def outer_sum(a, b):
        return mg.op_result(a.data + b.data, (a, b), lambda g: (g, g))
    assert mg.gradcheck(outer_sum, [row, column])


def test_op_result_saved_form_calls_backward_with_the_saved_arrays(rng):
    x = tensor64(rng, (3,))
    calls = []

    def backward(g, saved):
        calls.append(saved)
        return (g * saved,)
    y = mg.op_result(x.data * 5.0, (x,), backward, np.full(3, 5.0))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(calls[0], np.full(3, 5.0))


def misshapen_op(out, parents, gradients, form):
    """op_result(out, parents, ...) whose backward returns gradients(g), written as a closure
    `backward(g)` or in the saved form `backward(g, saved)`; errors name it as its op."""
    if form == "closure":
        def backward(g):
            return gradients(g)
        return mg.op_result(out, parents, backward)

    def saved_backward(g, saved):
        return gradients(g)
    return mg.op_result(out, parents, saved_backward, ())


FORMS = ["closure", "saved"]


def test_op_result_saved_form_gradients_of_a_broadcast_shape_are_summed_to_the_parent(rng):
    row, column = tensor64(rng, (3,)), tensor64(rng, (2, 1))
    def outer_sum(a, b):
        return misshapen_op(a.data + b.data, (a, b), lambda g: (g, g), "saved")
    assert mg.gradcheck(outer_sum, [row, column])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("sweep", ["backward", "grad"])
def test_a_backward_returning_a_gradient_of_the_wrong_shape_is_an_error_naming_the_op(
        sweep, form, rng):
    x = tensor64(rng, (3,))
    loss = misshapen_op(x.data * 2, (x,), lambda g: (np.ones(2),), form).sum()
    with pytest.raises(ValueError, match=r"the backward of .*misshapen_op \(.*test_autograd.py, "
                                         r"line \d+\) returned a gradient of shape \(2,\) for an "
                                         r"input of shape \(3,\)"):
        loss.backward() if sweep == "backward" else mg.grad(loss, x)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("parent_shape,grad_shape", [((3, 1), (3,)), ((2, 3), (3,)),
                                                     ((1, 3), (3, 2)), ((2,), (2, 3)),
                                                     ((3,), (3, 1)), ((3,), (1,)), ((3,), ()),
                                                     ((1,), ()), ((2, 1), (2,))])
def test_a_gradient_no_broadcasting_explains_is_an_error_however_the_shapes_differ(
        parent_shape, grad_shape, form, rng):
    """More dims, fewer dims, a length-1 axis too few or too many, a 0-d scalar: each is named."""
    x = tensor64(rng, parent_shape)
    op = misshapen_op(np.zeros(grad_shape), (x,), lambda g: (g,), form)
    with pytest.raises(ValueError, match=re.escape(f"returned a gradient of shape {grad_shape} "
                                                   f"for an input of shape {parent_shape}")):
        op.sum().backward()


@pytest.mark.parametrize("form", FORMS)
def test_the_error_for_an_op_of_several_inputs_says_which_input_got_the_wrong_shape(form, rng):
    a, b = tensor64(rng, (3,)), tensor64(rng, (3,))
    op = misshapen_op(a.data + b.data, (a, b), lambda g: (g, g[:2]), form)
    with pytest.raises(ValueError, match=re.escape("returned a gradient of shape (2,) for input "
                                                   "parents[1] of shape (3,)")):
        op.sum().backward()


@pytest.mark.parametrize("form", FORMS)
def test_a_wrong_shape_is_an_error_before_it_reaches_an_existing_grad_or_another_contribution(
        form, rng):
    """Caught where the backward returns it, not left to numpy's broadcasting when it is added
    to the leaf's .grad of an earlier backward, or to the tensor's other gradients."""
    x = tensor64(rng, (3,))
    (x * 2.0).sum().backward()
    before = x.grad.copy()
    message = r"misshapen_op .*shape \(4,\) for an input of shape \(3,\)"
    with pytest.raises(ValueError, match=message):
        misshapen_op(x.data * 2, (x,), lambda g: (np.ones(4),), form).sum().backward()
    np.testing.assert_array_equal(x.grad, before)
    with pytest.raises(ValueError, match=message):
        y = misshapen_op(x.data * 2, (x,), lambda g: (np.ones(4),), form)
        (y + x * 3.0 + x).sum().backward()


@pytest.mark.parametrize("form", FORMS)
def test_a_backward_returning_an_array_instead_of_a_tuple_is_an_error_naming_the_op(form, rng):
    """With one input; and with two, where the array's rows would have passed for the two
    gradients."""
    x, y = tensor64(rng, (3,)), tensor64(rng, (3,))
    with pytest.raises(ValueError, match=r"misshapen_op .*returned one array of shape \(3,\), "
                                         r"not a tuple, for an op with 1 input.*return \(grad,\)"):
        misshapen_op(x.data * 2, (x,), lambda g: g * 2, form).sum().backward()
    with pytest.raises(ValueError, match=r"returned one array of shape \(2, 3\), not a tuple, for "
                                         r"an op with 2 inputs"):
        misshapen_op(x.data + y.data, (x, y), lambda g: np.stack([g, g]), form).sum().backward()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("returned,message", [
    (lambda g: (g,), "returned 1 gradient, for an op with 2 inputs"),
    (lambda g: (g, g, g), "returned 3 gradients, for an op with 2 inputs"),
    (lambda g: None, "returned None, not a tuple, for an op with 2 inputs"),
])
def test_a_backward_returning_a_gradient_for_the_wrong_number_of_inputs_is_an_error(
        returned, message, form, rng):
    x, y = tensor64(rng, (3,)), tensor64(rng, (3,))
    with pytest.raises(ValueError, match=r"misshapen_op .*" + re.escape(message)):
        misshapen_op(x.data + y.data, (x, y), returned, form).sum().backward()


def test_a_backward_may_return_a_list_but_not_a_none_past_its_last_input(rng):
    x = tensor64(rng, (3,))
    misshapen_op(x.data * 2, (x,), lambda g: [g * 2], "closure").sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="returned 2 gradients, for an op with 1 input"):
        misshapen_op(x.data * 2, (x,), lambda g: (g * 2, None), "closure").sum().backward()


@pytest.mark.parametrize("form", FORMS)
def test_a_backward_returning_a_number_instead_of_an_array_is_an_error_naming_the_op(form, rng):
    x = tensor64(rng, (3,))
    with pytest.raises(ValueError, match=r"misshapen_op .*returned float 1.0 for an input of shape "
                                         r"\(3,\): a gradient must be a numpy array"):
        misshapen_op(x.data * 2, (x,), lambda g: (1.0,), form).sum().backward()
