"""Functional ops: gradients in float64, and each fused op against the same maths composed
from primitives."""
import itertools

import numpy as np
import pytest

import minigrad as mg
import minigrad.functional as F
from conftest import tensor64

BROADCAST_SHAPES = [(), (3,), (2, 3), (1, 3), (2, 1)]


@pytest.mark.parametrize("shape_a,shape_b", list(itertools.product(BROADCAST_SHAPES, repeat=2)))
@pytest.mark.parametrize("fn", [F.maximum, F.minimum,
                                lambda a, b: F.where(a.data > 0, a, b)], ids=["max", "min", "where"])
def test_selection_gradients_with_broadcasting(rng, fn, shape_a, shape_b):
    a, b = tensor64(rng, shape_a), tensor64(rng, shape_b)
    assert mg.gradcheck(fn, [a, b])


def test_maximum_minimum_where_values(rng):
    a, b = tensor64(rng, (5,)), tensor64(rng, (5,))
    np.testing.assert_array_equal(F.maximum(a, b).data, np.maximum(a.data, b.data))
    np.testing.assert_array_equal(F.minimum(a, 0.0).data, np.minimum(a.data, 0.0))
    np.testing.assert_array_equal(F.where(a.data > 0, a, 0.0).data, np.where(a.data > 0, a.data, 0))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_and_stack_gradients(rng, axis):
    a, b, c = tensor64(rng, (2, 3)), tensor64(rng, (2, 3)), tensor64(rng, (2, 3))
    assert mg.gradcheck(lambda a, b, c: F.concat([a, b, c], axis=axis), [a, b, c])
    assert mg.gradcheck(lambda a, b, c: F.stack([a, b, c], axis=axis), [a, b, c])
    np.testing.assert_array_equal(F.concat([a, b], axis).data, np.concatenate([a.data, b.data], axis))
    np.testing.assert_array_equal(F.stack([a, b], axis).data, np.stack([a.data, b.data], axis))


def test_concat_of_unequal_lengths(rng):
    a, b = tensor64(rng, (2, 1)), tensor64(rng, (2, 4))
    assert mg.gradcheck(lambda a, b: F.concat([a, b], axis=1), [a, b])
    with pytest.raises(ValueError, match="concat: shapes"):
        F.concat([a, b], axis=0)
    with pytest.raises(ValueError, match="stack: all tensors must have the same shape"):
        F.stack([a, b])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax_gradients(rng, axis):
    x = tensor64(rng, (3, 4), -2, 2)
    assert mg.gradcheck(lambda x: F.softmax(x, axis=axis), [x])
    assert mg.gradcheck(lambda x: F.log_softmax(x, axis=axis), [x])
    np.testing.assert_allclose(F.softmax(x, axis).data.sum(axis=axis), 1.0)


def composed_log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def composed_cross_entropy(logits, labels):
    log_p = composed_log_softmax(logits, axis=1)
    return -log_p[np.arange(len(labels)), labels].mean()


def test_fused_log_softmax_matches_composed_form(rng):
    x = tensor64(rng, (4, 5), -3, 3)
    weights = rng.standard_normal((4, 5))
    fused, composed = F.log_softmax(x), composed_log_softmax(x)
    np.testing.assert_allclose(fused.data, composed.data)
    np.testing.assert_allclose(mg.grad((fused * weights).sum(), x),
                               mg.grad((composed * weights).sum(), x))


def test_fused_cross_entropy_matches_composed_form(rng):
    logits = tensor64(rng, (6, 4), -3, 3)
    labels = np.array([0, 3, 1, 1, 2, 0])
    fused, composed = F.cross_entropy(logits, labels), composed_cross_entropy(logits, labels)
    np.testing.assert_allclose(fused.data, composed.data)
    np.testing.assert_allclose(mg.grad(fused, logits), mg.grad(composed, logits))
    assert mg.gradcheck(lambda z: F.cross_entropy(z, labels), [logits])


def test_cross_entropy_is_stable_for_large_logits():
    logits = mg.Tensor([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 1]))
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), np.log(2) / 2, rtol=1e-5)
    loss.backward()
    assert np.all(np.isfinite(logits.grad))


def test_cross_entropy_rejects_bad_labels():
    logits = mg.Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"cross_entropy: expected logits \(N, C\) and labels \(N,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(TypeError, match="labels must be integers"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(rng, bias):
    x, W, b = tensor64(rng, (4, 3)), tensor64(rng, (3, 2)), tensor64(rng, (2,))
    fn = (lambda x, W, b: F.linear(x, W, b)) if bias else (lambda x, W, b: F.linear(x, W) + 0 * b)
    assert mg.gradcheck(fn, [x, W, b])
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 3\) does not fit weight of shape \(2, 2\)"):
        F.linear(x, tensor64(rng, (2, 2)))


def composed_lstm_cell(x, h, c, W, b):
    gates = F.concat([x, h], axis=1) @ W + b
    H = h.shape[1]
    i, f = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid()
    g, o = gates[:, 2 * H:3 * H].tanh(), gates[:, 3 * H:].sigmoid()
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new


@pytest.mark.parametrize("batch,n_in,hidden", [(1, 1, 1), (5, 2, 3), (4, 3, 20)])
def test_fused_lstm_cell_matches_composed_form(rng, batch, n_in, hidden):
    args = [tensor64(rng, (batch, n_in)), tensor64(rng, (batch, hidden)), tensor64(rng, (batch, hidden)),
            tensor64(rng, (n_in + hidden, 4 * hidden)), tensor64(rng, (4 * hidden,))]
    w_h, w_c = rng.standard_normal((batch, hidden)), rng.standard_normal((batch, hidden))
    results = {}
    for name, cell in [("fused", F.lstm_cell), ("composed", composed_lstm_cell)]:
        h_new, c_new = cell(*args)
        loss = (h_new * w_h).sum() + (c_new * w_c).sum()
        results[name] = (h_new.data, c_new.data, mg.grad(loss, args))
    np.testing.assert_allclose(results["fused"][0], results["composed"][0])
    np.testing.assert_allclose(results["fused"][1], results["composed"][1])
    for fused, composed in zip(results["fused"][2], results["composed"][2]):
        np.testing.assert_allclose(fused, composed, atol=1e-12)


def lstm_case(rng, batch=5, n_in=2, hidden=3):
    """Float64 inputs of lstm_cell and weights for the two outputs."""
    args = [tensor64(rng, (batch, n_in)), tensor64(rng, (batch, hidden)),
            tensor64(rng, (batch, hidden)), tensor64(rng, (n_in + hidden, 4 * hidden)),
            tensor64(rng, (4 * hidden,))]
    return args, rng.standard_normal((batch, hidden)), rng.standard_normal((batch, hidden))


def lstm_results(cell, args, w_h, w_c):
    h_new, c_new = cell(*args)
    wanted = [a for a in args if a.requires_grad]
    return h_new.data, c_new.data, mg.grad((h_new * w_h).sum() + (c_new * w_c).sum(), wanted)


def test_fused_lstm_cell_with_constant_state_and_input_matches_composed_form(rng):
    """The cell skips the gradients of inputs that need none (the learned optimizer's
    preprocessed gradient; the state after a truncation); what it does compute is unchanged."""
    (x, h, c, W, b), w_h, w_c = lstm_case(rng)
    for constants in [(x,), (x, h, c), (h,), (c,)]:
        args = [mg.Tensor(a.data, dtype=np.float64) if any(a is k for k in constants) else a
                for a in (x, h, c, W, b)]
        fused = lstm_results(F.lstm_cell, args, w_h, w_c)
        composed = lstm_results(composed_lstm_cell, args, w_h, w_c)
        for got, expected in zip(fused[:2] + tuple(fused[2]), composed[:2] + tuple(composed[2])):
            np.testing.assert_allclose(got, expected, atol=1e-12)


def test_lstm_cell_gives_the_same_numbers_for_inputs_in_any_memory_layout(rng):
    (x, h, c, W, b), w_h, w_c = lstm_case(rng, batch=6, n_in=3, hidden=4)
    reference = lstm_results(F.lstm_cell, [x, h, c, W, b], w_h, w_c)
    relayouts = {"fortran": lambda t: t.T.reshape(-1).reshape(t.shape[::-1]).T,
                 "strided": lambda t: F.stack([t, t], axis=1).reshape(2 * len(t), -1)[::2]}
    for name, relayout in relayouts.items():
        args = [relayout(a) for a in (x, h, c, W)] + [b]
        assert args[0].data.flags.f_contiguous == (name == "fortran")
        result = lstm_results(F.lstm_cell, args, w_h, w_c)
        for got, expected in zip(result[:2] + tuple(result[2]), reference[:2] + tuple(reference[2])):
            np.testing.assert_allclose(got, expected, atol=1e-12)


def test_lstm_cell_backward_can_run_twice_and_records_nothing_without_grad(rng):
    """The backward's scratch arrays are reused from call to call, never the saved values."""
    (x, h, c, W, b), w_h, w_c = lstm_case(rng)
    h_new, c_new = F.lstm_cell(x, h, c, W, b)
    loss = (h_new * w_h).sum() + (c_new * w_c).sum()
    first = mg.grad(loss, [x, h, c, W, b])
    F.lstm_cell(h, h, c, mg.Tensor(np.ones((6, 12))), b)[0].sum().backward()   # another cell
    for again, expected in zip(mg.grad(loss, [x, h, c, W, b]), first):
        np.testing.assert_array_equal(again, expected)
    with mg.no_grad():
        h_new, c_new = F.lstm_cell(x, h, c, W, b)
    assert not h_new.requires_grad and h_new._parents == () and c_new._parents == ()


def test_lstm_cell_gradients(rng):
    args = [tensor64(rng, (3, 2)), tensor64(rng, (3, 4)), tensor64(rng, (3, 4)),
            tensor64(rng, (6, 16)), tensor64(rng, (16,))]
    assert mg.gradcheck(lambda *a: F.concat(list(F.lstm_cell(*a)), axis=1), args)


def test_lstm_cell_shape_error_names_every_shape(rng):
    x, h = tensor64(rng, (3, 2)), tensor64(rng, (3, 4))
    with pytest.raises(ValueError, match=r"lstm_cell: .*got x \(3, 2\), h \(3, 4\), c \(3, 4\), W \(5, 16\)"):
        F.lstm_cell(x, h, h, tensor64(rng, (5, 16)), tensor64(rng, (16,)))


def composed_conv2d(x, w, b, stride, padding):
    """Sum over kernel positions of a shifted slice of x times one (C, O) slice of w."""
    n, c, height, width = x.shape
    if padding:
        zeros_rows = mg.Tensor(np.zeros((n, c, padding, width)), dtype=x.dtype)
        x = F.concat([zeros_rows, x, zeros_rows], axis=2)
        zeros_cols = mg.Tensor(np.zeros((n, c, height + 2 * padding, padding)), dtype=x.dtype)
        x = F.concat([zeros_cols, x, zeros_cols], axis=3)
    out_ch, _, kh, kw = w.shape
    out_h = (x.shape[2] - kh) // stride + 1
    out_w = (x.shape[3] - kw) // stride + 1
    total = 0
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride]
            total = total + patch.transpose(0, 2, 3, 1) @ w[:, :, i, j].T
    return total.transpose(0, 3, 1, 2) + b.reshape(out_ch, 1, 1)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 0), (2, 2)])
def test_fused_conv2d_matches_composed_form(rng, stride, padding):
    x, w, b = tensor64(rng, (2, 3, 6, 5)), tensor64(rng, (4, 3, 3, 2)), tensor64(rng, (4,))
    fused = F.conv2d(x, w, b, stride=stride, padding=padding)
    composed = composed_conv2d(x, w, b, stride, padding)
    np.testing.assert_allclose(fused.data, composed.data)
    weights = rng.standard_normal(fused.shape)
    for g_fused, g_composed in zip(mg.grad((fused * weights).sum(), [x, w, b]),
                                   mg.grad((composed * weights).sum(), [x, w, b])):
        np.testing.assert_allclose(g_fused, g_composed, atol=1e-12)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_conv2d_gradients(rng, stride, padding):
    x, w, b = tensor64(rng, (2, 2, 5, 5)), tensor64(rng, (3, 2, 3, 3)), tensor64(rng, (3,))
    assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), [x, w, b])
    assert mg.gradcheck(lambda x, w: F.conv2d(x, w, stride=stride, padding=padding), [x, w])


def test_conv2d_shape_errors(rng):
    with pytest.raises(ValueError, match=r"conv2d: .*got x \(2, 3, 5, 5\) and w \(4, 2, 3, 3\)"):
        F.conv2d(tensor64(rng, (2, 3, 5, 5)), tensor64(rng, (4, 2, 3, 3)))
    with pytest.raises(ValueError, match="conv2d: kernel"):
        F.conv2d(tensor64(rng, (1, 1, 2, 2)), tensor64(rng, (1, 1, 3, 3)))


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 1), (2, 1), (3, 2)])
def test_max_pool2d_values_and_gradients(rng, kernel, stride):
    x = tensor64(rng, (2, 3, 6, 7))
    out = F.max_pool2d(x, kernel, stride)
    s = stride or kernel
    expected = np.stack([np.stack([x.data[:, :, i * s:i * s + kernel, j * s:j * s + kernel].max(axis=(2, 3))
                                   for j in range(out.shape[3])], axis=-1)
                         for i in range(out.shape[2])], axis=-2)
    np.testing.assert_array_equal(out.data, expected)
    assert mg.gradcheck(lambda x: F.max_pool2d(x, kernel, stride), [x])


def composed_max_pool2d(x, kernel, stride):
    """The maximum over the kernel's positions of one strided slice of x per position."""
    out_h = (x.shape[2] - kernel) // stride + 1
    out_w = (x.shape[3] - kernel) // stride + 1
    shifted = [x[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride]
               for i in range(kernel) for j in range(kernel)]
    return F.stack(shifted, axis=-1).max(axis=-1)


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 1), (3, 2)])
def test_fused_max_pool2d_matches_composed_form(rng, kernel, stride):
    x = tensor64(rng, (2, 3, 6, 7))              # continuous values: no ties within a window
    fused, composed = F.max_pool2d(x, kernel, stride), composed_max_pool2d(x, kernel, stride)
    np.testing.assert_array_equal(fused.data, composed.data)
    weights = rng.standard_normal(fused.shape)
    np.testing.assert_allclose(mg.grad((fused * weights).sum(), x),
                               mg.grad((composed * weights).sum(), x), atol=1e-12)
