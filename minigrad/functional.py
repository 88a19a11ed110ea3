"""Functions of tensors: joins, selections, activations, losses and layers' maths.

Most are composed from the primitives in tensor.py. Five are *fused*: one graph node with a
hand-written backward, each for a stated reason, and each tested against its composed form in
tests/test_functional.py:
- `log_softmax` and `cross_entropy`: stability (the log-sum-exp is shifted by the maximum, so
  logits of 1e4 give finite losses) and one node instead of a dozen.
- `lstm_cell`: speed; the learned optimizer runs it on every coordinate of the optimizee at
  every step, and one node, laid out so that every pass runs over contiguous memory, beats
  twenty small ones (its docstring says how).
- `conv2d`: speed; as a sum of kh*kw shifted matmuls it would make a node per kernel position.
- `max_pool2d`: speed; as a maximum over kh*kw stacked strided slices it would make kh*kw + 2
  nodes and copy every window.

Every op here is twice differentiable: under create_graph its backward runs on tensors (the
`out` argument of each closure; docs/extending.md). The fused ops do it in two ways: the
short rules (log_softmax, cross_entropy, max_pool2d) are written again in Tensor ops, and
lstm_cell and conv2d have the engine differentiate their composed forms
(`_lstm_cell_composed`, `_conv2d_composed`), the same maths in primitives.

Import as `import minigrad.functional as F`.
"""
import threading

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .autograd import grad
from .tensor import Tensor, _constant, _scattered, op_result


def _tensor(x, like=None):
    if isinstance(x, Tensor):
        return x
    return _constant(x, like) if like is not None else Tensor(x)


def _pair(v, name, op):
    if isinstance(v, int):
        return v, v
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return v
    raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")


# ----- joins -----
def concat(tensors, axis=0):
    """Join tensors along an existing axis."""
    tensors = [_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    try:
        out = np.concatenate([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError(f"concat: shapes {[t.shape for t in tensors]} do not match outside "
                         f"axis {axis}") from None
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g, out=None):
        if out is not None:                       # create_graph: the split as slices
            edges = [0, *bounds, g.shape[axis]]
            before = (slice(None),) * (axis % g.ndim)
            return tuple(g[(*before, slice(lo, hi))] for lo, hi in zip(edges, edges[1:]))
        return tuple(np.split(g, bounds, axis=axis))
    return op_result(out, tuple(tensors), backward)


def stack(tensors, axis=0):
    """Join same-shaped tensors along a new axis."""
    tensors = [_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    out = np.stack([t.data for t in tensors], axis=axis)

    def backward(g, out=None):
        if out is not None:                       # create_graph: one index per tensor
            before = (slice(None),) * (axis % g.ndim)
            return tuple(g[(*before, k)] for k in range(len(tensors)))
        return tuple(np.moveaxis(g, axis, 0))
    return op_result(out, tuple(tensors), backward)


# ----- selection -----
def where(cond, a, b):
    """Elementwise `a if cond else b`, with broadcasting; `cond` carries no gradient."""
    cond = np.asarray(cond.data if isinstance(cond, Tensor) else cond, dtype=bool)
    if isinstance(a, Tensor):
        b = _tensor(b, a)
    elif isinstance(b, Tensor):
        a = _tensor(a, b)
    else:
        a, b = Tensor(a), Tensor(b)
    try:
        out = np.where(cond, a.data, b.data)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {a.shape} and {b.shape} cannot be broadcast "
                         "together") from None

    def backward(g, out=None):
        if out is not None:                       # create_graph: where again, on tensors
            return where(cond, g, 0.0), where(cond, 0.0, g)
        zero = np.zeros((), g.dtype)
        return np.where(cond, g, zero), np.where(cond, zero, g)
    return op_result(out, (a, b), backward)


def maximum(a, b):
    """Elementwise maximum; where the two are equal the gradient goes to `a`."""
    a = _tensor(a, b if isinstance(b, Tensor) else None)
    b = _tensor(b, a)
    return where(a.data >= b.data, a, b)


def minimum(a, b):
    """Elementwise minimum; where the two are equal the gradient goes to `a`."""
    a = _tensor(a, b if isinstance(b, Tensor) else None)
    b = _tensor(b, a)
    return where(a.data <= b.data, a, b)


# ----- activations and losses -----
def relu(x):
    return x.relu()


def sigmoid(x):
    return x.sigmoid()


def tanh(x):
    return x.tanh()


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)), composed from primitives; shifting by the (constant) maximum
    changes nothing mathematically and keeps exp from overflowing."""
    e = (x - x.max(axis=axis, keepdims=True).detach()).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - log(sum(exp(x))) along `axis`, fused and stable for large logits.

    Backward: d/dx = g - softmax(x) * sum(g), with softmax(x) = exp(output); under create_graph
    the same in Tensor ops.
    """
    a = x.data
    shifted = a - a.max(axis=axis, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g, out=None):
        if out is not None:
            return (g - out.exp() * g.sum(axis=axis, keepdims=True),)
        return (g - np.exp(log_p) * g.sum(axis=axis, keepdims=True),)
    return op_result(log_p, (x,), backward)


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[label]; fused and stable for large logits.

    logits: (N, C) tensor; labels: (N,) integers in [0, C) (array or tensor).
    Backward: (softmax(logits) - onehot(labels)) / N; under create_graph the same in Tensor ops,
    softmax as exp(log_softmax(logits)).
    """
    labels = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    z = logits.data
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ValueError(f"cross_entropy: expected logits (N, C) and labels (N,), got shapes "
                         f"{z.shape} and {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    n, classes = z.shape
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"cross_entropy: labels must lie in [0, {classes}), got values from "
                         f"{labels.min()} to {labels.max()}")
    rows = np.arange(n)
    shifted = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = (log_norm[:, 0] - shifted[rows, labels]).mean()

    def backward(g, out=None):
        if out is not None:
            onehot = np.zeros_like(z)
            onehot[rows, labels] = 1
            return ((log_softmax(out.parents[0], axis=1).exp() - onehot) * (g / n),)
        d = np.exp(shifted - log_norm)
        d[rows, labels] -= 1
        d *= g / n
        return (d,)
    return op_result(loss, (logits,), backward)


def linear(x, W, b=None):
    """x @ W + b, with W of shape (in, out): one row of W per input feature."""
    if x.shape[-1] != W.shape[0]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape {W.shape} "
                         f"(expected the last axis of x to be {W.shape[0]})")
    y = x @ W
    return y if b is None else y + b


def _gate_functions(gates, hidden):
    """In place, turn tanh(z/2) (rows of i, f, o) into sigmoid(z) = (1 + tanh(z/2)) / 2; the
    rows of g, tanh(z), stay. gates: (4H, B), rows i, f, g, o."""
    half = np.array(0.5, gates.dtype)
    for rows in (gates[:2 * hidden], gates[3 * hidden:]):
        rows *= half
        rows += half


def lstm_cell(x, h, c, W, b):
    """One step of an LSTM on a batch: returns (h_new, c_new), each (B, H).

    x: (B, I); h, c: (B, H); W: (I + H, 4H) applied to concat([x, h]); b: (4H,).
    Gates in the order input, forget, cell, output, from z = concat([x, h]) @ W + b:
        i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
        c_new = f * c + i * g,   h_new = o * tanh(c_new)
    One node computes both outputs, packed as (B, 2H) = [h_new | c_new]; the two results are
    slices of it, so the engine needs no notion of an op with several outputs.

    Backward, from dh and dc_out (the gradients of h_new and c_new):
        dc = dc_out + dh * o * (1 - tanh(c_new)^2),   dc_prev = dc * f
        dz = (dc * g, dc * c, dc * i, dh * tanh(c_new)) times each gate's derivative,
             sigmoid' = s (1 - s) for i, f, o and tanh' = 1 - g^2 for g
        dW = concat([x, h])^T @ dz,   db = dz summed over the batch,   [dx, dh_prev] = dz @ W^T

    Fused for speed: the learned optimizer runs it on every coordinate of the optimizee (B in
    the tens of thousands) at every step, forward and backward. What makes it fast:
    - Transposed layout: inside, features run along rows and the batch along columns, so each
      gate is one contiguous (H, B) block and every elementwise step is one pass over
      contiguous memory (a (B, H) column block of a (B, 4H) array is 2-3x slower to walk).
      h_new and c_new are transposed views of the (2H, B) result, (B, H) to the caller; so are
      the gradients the backward returns for x, h and c.
    - The bias is one more row of the weights, applied to a row of ones: the matmul adds it,
      and the weight-gradient matmul yields db as its last row.
    - One tanh for all four gates: sigmoid(z) = (1 + tanh(z/2)) / 2, and the halving is done
      on the weights of the sigmoid gates (multiplying by 1/2 is exact).
    - The backward computes only the gradients some input needs (the learned optimizer's x is
      a constant, and so are h and c after each truncation), and takes its two (4H, B)
      temporaries from a workspace that is reused from call to call.
    Under create_graph, the backward is the engine's gradient of the composed cell
    (`_lstm_cell_composed`), which can be differentiated again.
    """
    xa, ha, ca, Wa, ba = x.data, h.data, c.data, W.data, b.data
    batch, n_in = xa.shape if xa.ndim == 2 else (None, None)
    hidden = ha.shape[-1] if ha.ndim == 2 else None
    if (xa.ndim != 2 or ha.shape != (batch, hidden) or ca.shape != (batch, hidden)
            or Wa.shape != (n_in + hidden, 4 * hidden) or ba.shape != (4 * hidden,)):
        raise ValueError(f"lstm_cell: expected x (B, I), h (B, H), c (B, H), W (I + H, 4H), b (4H,); "
                         f"got x {xa.shape}, h {ha.shape}, c {ca.shape}, W {Wa.shape}, b {ba.shape}")
    H, dtype = hidden, xa.dtype
    xh1 = np.empty((n_in + H + 1, batch), dtype)          # rows: x, h, then ones for the bias
    xh1[:n_in] = xa.T
    xh1[n_in:-1] = ha.T
    xh1[-1] = 1
    W1 = np.empty((n_in + H + 1, 4 * H), dtype)           # rows: W, then b; sigmoid gates halved
    W1[:-1], W1[-1] = Wa, ba
    W1[:, :2 * H] *= 0.5
    W1[:, 3 * H:] *= 0.5
    gates = np.matmul(W1.T, xh1)                          # (4H, B): z/2 for i, f, o; z for g
    np.tanh(gates, out=gates)
    _gate_functions(gates, H)                             # now the gate values i, f, g, o
    i, f, g, o = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
    c_t = ca.T
    packed = np.empty((2 * H, batch), dtype)              # rows: h_new, then c_new
    h_new, c_new = packed[:H], packed[H:]
    np.multiply(f, c_t, out=c_new)
    tanh_c = np.multiply(i, g)
    c_new += tanh_c
    np.tanh(c_new, out=tanh_c)
    np.multiply(o, tanh_c, out=h_new)
    x_needs_grad, h_needs_grad, c_needs_grad = x.requires_grad, h.requires_grad, c.requires_grad

    def backward(grad, out=None):
        if out is not None:
            return _backward_through(_lstm_cell_composed_packed, grad, out)
        grad_t = grad.T
        dh, dc_out = grad_t[:H], grad_t[H:]
        dgates = _workspace("lstm_cell.dgates", gates.shape, dtype)    # first w.r.t. the gate
        di, df, dg, do = dgates[:H], dgates[H:2 * H], dgates[2 * H:3 * H], dgates[3 * H:]  # values
        np.multiply(dh, o, out=do)
        dc = np.multiply(tanh_c, tanh_c)                  # dc = dc_out + dh * o * (1 - tanh_c^2)
        np.subtract(1, dc, out=dc)
        dc *= do
        dc += dc_out
        np.multiply(dh, tanh_c, out=do)
        np.multiply(dc, g, out=di)
        np.multiply(dc, c_t, out=df)
        np.multiply(dc, i, out=dg)
        slope = np.multiply(gates, gates, out=_workspace("lstm_cell.slope", gates.shape, dtype))
        np.subtract(1, slope[2 * H:3 * H], out=slope[2 * H:3 * H])      # tanh' = 1 - g^2
        np.subtract(gates[:2 * H], slope[:2 * H], out=slope[:2 * H])    # sigmoid' = s - s^2
        np.subtract(o, slope[3 * H:], out=slope[3 * H:])
        dgates *= slope                                   # then w.r.t. the pre-activations z
        dW1 = (dgates @ xh1.T).T                          # (I + H + 1, 4H): dW, then db
        dx = dh_prev = None
        if x_needs_grad:
            dxh = Wa @ dgates
            dx, dh_prev = dxh[:n_in].T, dxh[n_in:].T
        elif h_needs_grad:
            dh_prev = (Wa[n_in:] @ dgates).T
        dc *= f
        return dx, dh_prev, dc.T if c_needs_grad else None, dW1[:-1], dW1[-1]

    state = op_result(packed.T, (x, h, c, W, b), backward)
    return state[:, :H], state[:, H:]


def _lstm_cell_composed(x, h, c, W, b):
    """lstm_cell composed from primitives, (h_new, c_new): the maths of its docstring, a graph
    node for each step of it."""
    gates = concat([x, h], axis=1) @ W + b
    H = h.shape[1]
    i, f = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid()
    g, o = gates[:, 2 * H:3 * H].tanh(), gates[:, 3 * H:].sigmoid()
    c_new = f * c + i * g
    return o * c_new.tanh(), c_new


def _lstm_cell_composed_packed(x, h, c, W, b):
    """_lstm_cell_composed's two results as lstm_cell's node holds them: (B, 2H), [h_new | c_new]."""
    return concat(_lstm_cell_composed(x, h, c, W, b), axis=1)


def _backward_through(composed, g, out):
    """A fused op's backward under create_graph: the engine's gradient of `composed`, the same
    maths in primitives, at the op's inputs (out.parents), with g (a Tensor) as the gradient of
    the result. Its graph is made of primitives, so it can be differentiated again. An input
    passed twice gets its gradient once."""
    inputs = out.parents
    grads = grad(composed(*inputs), inputs, grad_output=g, create_graph=True)
    seen = set()
    for k, t in enumerate(inputs):
        if id(t) in seen:
            grads[k] = None
        seen.add(id(t))
    return tuple(grads)


_workspaces = threading.local()


def _workspace(name, shape, dtype):
    """A scratch array for an op's temporaries that die before the op returns, the same one at
    every call with that name, shape and dtype (one set per thread). Reused memory is already
    mapped and often still in cache; a fresh array of megabytes is neither."""
    arrays = _workspaces.__dict__
    key = (name, shape, dtype)
    array = arrays.get(key)
    if array is None:
        array = arrays[key] = np.empty(shape, dtype)
    return array


def _windows(x, kh, kw, stride):
    """(N, C, H, W) -> view (N, C, OH, OW, kh, kw) of every kernel-sized patch (no copy)."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]


def conv2d(x, w, b=None, stride=1, padding=0):
    """2-D cross-correlation (what the usual frameworks call convolution), NCHW.

    x: (N, C, H, W); w: (O, C, kh, kw); b: (O,). Returns (N, O, OH, OW) with
    OH = (H + 2*padding - kh) // stride + 1. Fused: patches are read as a strided view
    (im2col without a Python loop) and contracted with w in one tensordot; the backward
    scatters the patch gradients back with one strided add per kernel position. Under
    create_graph, the backward is the engine's gradient of the composed form, kh*kw shifted
    matmuls (`_conv2d_composed`).
    """
    stride = _pair(stride, "stride", "conv2d")
    padding = _pair(padding, "padding", "conv2d")
    xa, wa = x.data, w.data
    if xa.ndim != 4 or wa.ndim != 4 or xa.shape[1] != wa.shape[1]:
        raise ValueError(f"conv2d: expected x (N, C, H, W) and w (O, C, kh, kw) with the same C, "
                         f"got x {xa.shape} and w {wa.shape}")
    if b is not None and b.shape != (wa.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({wa.shape[0]},), got {b.shape}")
    ph, pw = padding
    kh, kw = wa.shape[2:]
    xp = np.pad(xa, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else xa
    if xp.shape[2] < kh or xp.shape[3] < kw:
        raise ValueError(f"conv2d: kernel {(kh, kw)} is larger than the padded input "
                         f"{xp.shape[2:]} (x {xa.shape}, padding {padding})")
    patches = _windows(xp, kh, kw, stride)
    out = np.tensordot(patches, wa, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if b is not None:
        out += b.data[:, None, None]
    out_h, out_w = out.shape[2:]
    sh, sw = stride

    def backward(g, out=None):
        if out is not None:
            return _backward_through(
                lambda *inputs: _conv2d_composed(*inputs, stride=stride, padding=padding), g, out)
        dw = np.tensordot(g, patches, axes=([0, 2, 3], [0, 2, 3]))
        dpatches = np.tensordot(g, wa, axes=([1], [0]))          # (N, OH, OW, C, kh, kw)
        dxp = np.zeros(xp.shape, xp.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw] += \
                    dpatches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        dx = dxp[:, :, ph:ph + xa.shape[2], pw:pw + xa.shape[3]]
        return (dx, dw) if b is None else (dx, dw, g.sum(axis=(0, 2, 3)))

    parents = (x, w) if b is None else (x, w, b)
    return op_result(np.ascontiguousarray(out), parents, backward)


def _conv2d_composed(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """conv2d composed from primitives: the sum over kernel positions (i, j) of the input
    shifted by (i, j), strided, times w[:, :, i, j] (a matmul over channels); padding is
    concatenated zeros."""
    (sh, sw), (ph, pw) = stride, padding
    n, channels, height, width = x.shape
    if ph:
        rows = Tensor(np.zeros((n, channels, ph, width)), dtype=x.dtype)
        x = concat([rows, x, rows], axis=2)
    if pw:
        cols = Tensor(np.zeros((n, channels, x.shape[2], pw)), dtype=x.dtype)
        x = concat([cols, x, cols], axis=3)
    kh, kw = w.shape[2:]
    out_h, out_w = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    total = None
    for i in range(kh):
        for j in range(kw):
            shifted = x[:, :, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw]
            term = shifted.transpose(0, 2, 3, 1) @ w[:, :, i, j].T        # (N, OH, OW, O)
            total = term if total is None else total + term
    out = total.transpose(0, 3, 1, 2)
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def max_pool2d(x, kernel_size, stride=None):
    """Maximum over kernel-sized windows of an (N, C, H, W) tensor; stride defaults to the kernel.
    Returns (N, C, OH, OW) with OH = (H - kh) // stride + 1. Fused: the windows are a strided
    view, and one argmax over it finds each window's maximum.

    The gradient of each window goes to its first maximal element (as in the usual frameworks).
    """
    kh, kw = _pair(kernel_size, "kernel_size", "max_pool2d")
    sh, sw = _pair(stride, "stride", "max_pool2d") if stride is not None else (kh, kw)
    xa = x.data
    if xa.ndim != 4 or xa.shape[2] < kh or xa.shape[3] < kw:
        raise ValueError(f"max_pool2d: expected x (N, C, H, W) at least as large as the kernel "
                         f"{(kh, kw)}, got {xa.shape}")
    windows = _windows(xa, kh, kw, (sh, sw))
    n, c, out_h, out_w = windows.shape[:4]
    flat = windows.reshape(n, c, out_h, out_w, kh * kw)
    first_max = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, first_max[..., None], axis=-1)[..., 0]

    def backward(g, out=None):
        rows = np.arange(out_h)[:, None] * sh + first_max // kw
        cols = np.arange(out_w)[None, :] * sw + first_max % kw
        nn_, cc = np.indices((n, c))
        winners = (nn_[:, :, None, None], cc[:, :, None, None], rows, cols)
        if out is not None:                       # create_graph: the scatter as an op
            return (_scattered(g, winners, xa.shape),)
        dx = np.zeros(xa.shape, xa.dtype)
        np.add.at(dx, winners, g)
        return (dx,)
    return op_result(out, (x,), backward)
