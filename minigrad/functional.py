"""Functions of tensors: joins, selections, activations, losses and layers' maths.

Most are composed from the primitives in tensor.py. Four are *fused*: one graph node with a
hand-written backward, each for a stated reason, and each tested against its composed form in
tests/test_functional.py:
- `log_softmax` and `cross_entropy`: stability (the log-sum-exp is shifted by the maximum, so
  logits of 1e4 give finite losses) and one node instead of a dozen.
- `lstm_cell`: speed; the learned optimizer runs it on every coordinate of the optimizee at
  every step, and one node with one matmul per direction beats twenty small ones.
- `conv2d`: speed; as a sum of kh*kw shifted matmuls it would make a node per kernel position.

Import as `import minigrad.functional as F`.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .tensor import Tensor, _constant, _result, sigmoid as _sigmoid


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

    def backward(g):
        return tuple(np.split(g, bounds, axis=axis))
    return _result(out, tuple(tensors), backward)


def stack(tensors, axis=0):
    """Join same-shaped tensors along a new axis."""
    tensors = [_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    out = np.stack([t.data for t in tensors], axis=axis)

    def backward(g):
        return tuple(np.moveaxis(g, axis, 0))
    return _result(out, tuple(tensors), backward)


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

    def backward(g):
        zero = np.zeros((), g.dtype)
        return np.where(cond, g, zero), np.where(cond, zero, g)
    return _result(out, (a, b), backward)


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

    Backward: d/dx = g - softmax(x) * sum(g).
    """
    a = x.data
    shifted = a - a.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)
    return _result(out, (x,), backward)


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[label]; fused and stable for large logits.

    logits: (N, C) tensor; labels: (N,) integers in [0, C) (array or tensor).
    Backward: (softmax(logits) - onehot(labels)) / N.
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
    out = (log_norm[:, 0] - shifted[rows, labels]).mean()

    def backward(g):
        d = np.exp(shifted - log_norm)
        d[rows, labels] -= 1
        d *= g / n
        return (d,)
    return _result(out, (logits,), backward)


def linear(x, W, b=None):
    """x @ W + b, with W of shape (in, out): one row of W per input feature."""
    if x.shape[-1] != W.shape[0]:
        raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape {W.shape} "
                         f"(expected the last axis of x to be {W.shape[0]})")
    y = x @ W
    return y if b is None else y + b


def lstm_cell(x, h, c, W, b):
    """One step of an LSTM on a batch: returns (h_new, c_new), each (B, H).

    x: (B, I); h, c: (B, H); W: (I + H, 4H) applied to concat([x, h]); b: (4H,).
    Gates in the order input, forget, cell, output:
        i, f, o = sigmoid(.), g = tanh(.);  c_new = f * c + i * g;  h_new = o * tanh(c_new)
    One node computes both outputs, packed as (B, 2H) = [h_new | c_new]; the two results are
    slices of it, so the engine needs no notion of an op with several outputs.
    """
    xa, ha, ca, Wa, ba = x.data, h.data, c.data, W.data, b.data
    batch, n_in = xa.shape if xa.ndim == 2 else (None, None)
    hidden = ha.shape[-1] if ha.ndim == 2 else None
    if (xa.ndim != 2 or ha.shape != (batch, hidden) or ca.shape != (batch, hidden)
            or Wa.shape != (n_in + hidden, 4 * hidden) or ba.shape != (4 * hidden,)):
        raise ValueError(f"lstm_cell: expected x (B, I), h (B, H), c (B, H), W (I + H, 4H), b (4H,); "
                         f"got x {xa.shape}, h {ha.shape}, c {ca.shape}, W {Wa.shape}, b {ba.shape}")
    H = hidden
    xh = np.concatenate([xa, ha], axis=1)
    gates = xh @ Wa
    gates += ba
    i = _sigmoid(gates[:, :H])
    f = _sigmoid(gates[:, H:2 * H])
    g = np.tanh(gates[:, 2 * H:3 * H])
    o = _sigmoid(gates[:, 3 * H:])
    packed = np.empty((batch, 2 * H), xa.dtype)
    c_new = packed[:, H:]
    np.multiply(f, ca, out=c_new)
    c_new += i * g
    tanh_c = np.tanh(c_new)
    np.multiply(o, tanh_c, out=packed[:, :H])

    def backward(grad):
        dh, dc = grad[:, :H], grad[:, H:]
        dc = dc + dh * o * (1 - tanh_c * tanh_c)
        dgates = np.empty_like(gates)
        dgates[:, :H] = dc * g * i * (1 - i)
        dgates[:, H:2 * H] = dc * ca * f * (1 - f)
        dgates[:, 2 * H:3 * H] = dc * i * (1 - g * g)
        dgates[:, 3 * H:] = dh * tanh_c * o * (1 - o)
        dxh = dgates @ Wa.T
        return dxh[:, :n_in], dxh[:, n_in:], dc * f, xh.T @ dgates, dgates.sum(axis=0)

    state = _result(packed, (x, h, c, W, b), backward)
    return state[:, :H], state[:, H:]


def _windows(x, kh, kw, stride):
    """(N, C, H, W) -> view (N, C, OH, OW, kh, kw) of every kernel-sized patch (no copy)."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]


def conv2d(x, w, b=None, stride=1, padding=0):
    """2-D cross-correlation (what the usual frameworks call convolution), NCHW.

    x: (N, C, H, W); w: (O, C, kh, kw); b: (O,). Returns (N, O, OH, OW) with
    OH = (H + 2*padding - kh) // stride + 1. Fused: patches are read as a strided view
    (im2col without a Python loop) and contracted with w in one tensordot; the backward
    scatters the patch gradients back with one strided add per kernel position.
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

    def backward(g):
        dw = np.tensordot(g, patches, axes=([0, 2, 3], [0, 2, 3]))
        dpatches = np.tensordot(g, wa, axes=([1], [0]))          # (N, OH, OW, C, kh, kw)
        dxp = np.zeros(xp.shape, xp.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw] += \
                    dpatches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        dx = dxp[:, :, ph:ph + xa.shape[2], pw:pw + xa.shape[3]]
        return dx, dw, (g.sum(axis=(0, 2, 3)) if b is not None else None)

    parents = (x, w) if b is None else (x, w, b)
    return _result(np.ascontiguousarray(out), parents, backward)


def max_pool2d(x, kernel_size, stride=None):
    """Maximum over kernel-sized windows of an (N, C, H, W) tensor; stride defaults to the kernel.

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

    def backward(g):
        dx = np.zeros(xa.shape, xa.dtype)
        rows = np.arange(out_h)[:, None] * sh + first_max // kw
        cols = np.arange(out_w)[None, :] * sw + first_max % kw
        nn_, cc = np.indices((n, c))
        np.add.at(dx, (nn_[:, :, None, None], cc[:, :, None, None], rows, cols), g)
        return (dx,)
    return _result(out, (x,), backward)
