"""The Tensor and its primitive ops.

Each op computes its result from numpy arrays and, right beside it, defines its backward: given
the gradient g of the loss with respect to the result, it returns the gradient with respect to
each parent. It hands both to `op_result`, which makes the result tensor and records the graph.
Summing a broadcast gradient back to its parent's shape, and adding up the contributions of a
parent used several times, is done once, in autograd.py. (A slice returns an
autograd.SliceGrad instead of a mostly-zero array: see there.) Ops whose gradients cost real
work (mul, div, matmul) skip those of parents that need none, such as a minibatch or a constant.

A backward is a closure `backward(g)`, or, for the elementwise ops that run millions of times on
small tensors (add, sub, mul, div, neg, exp, log, tanh, sigmoid, relu, abs, sqrt), a static
method `backward(g, saved)` beside the forward, with the arrays it needs passed as `saved`.
docs/extending.md explains both forms, and why the second exists, in full.

Every op here is twice differentiable: under create_graph (autograd.grad, autograd.backward)
its backward runs on tensors instead of arrays, so the gradients it computes carry a graph. A
closure takes the op's result as `out` (None on the first-order path) and, given it, computes
in Tensor ops from `out` and `out.parents`; many need no change for it, since the same body
works on arrays and tensors. A static backward is marked with `autograd.saved_as`, which names
the tensors it then runs on.

A backward captures or saves arrays and plain values, never tensors, so that dropping the last
reference to a very long graph never recurses through closures.
"""
import numpy as np

from . import autograd

_FLOAT_KINDS = "f"
# Looked up once here rather than at each of the millions of ops a meta-training run makes.
_new_tensor = object.__new__      # op_result fills in the fields itself: no __init__, no copy
_next_seq = autograd.next_seq


def op_result(data, parents, backward, saved=None):
    """The tensor an op returns: its output array `data`, and, if gradients are enabled and some
    parent requires grad, the record of how to send a gradient back. Public: the one function
    a new op needs (docs/extending.md).

    parents: the op's input tensors (a tuple), in the order its backward returns their gradients.
    backward: a closure `backward(g)`, g of data's shape, returning a tuple of one gradient per
        parent (None for one that needs none), each of its parent's shape or of a shape numpy
        broadcast that parent to; or, with `saved` (anything but None), a function
        `backward(g, saved)` returning the same. None for a result with no parents. The sweep
        checks the gradients' number and shapes, and names the op if they are wrong.
    """
    out = _new_tensor(Tensor)
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = None
    out._seq = _next_seq()
    if autograd._enabled:
        for p in parents:
            if p.requires_grad:
                out.requires_grad = True
                out._parents = parents
                out._backward = backward
                out._saved = saved
                return out
    out.requires_grad = False
    out._parents = ()
    out._backward = None
    out._saved = None
    return out


def _constant(value, like):
    """A tensor for a non-tensor operand; floats take `like`'s dtype so float32 stays float32."""
    data = np.asarray(value)
    if like.dtype.kind in _FLOAT_KINDS and data.dtype.kind in "fiub":
        data = data.astype(like.dtype, copy=False)
    return op_result(data, (), None)


def _broadcast_error(op, a, b):
    return ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together")


def _as_index(index):
    """Replace tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic_index(index):
    """True if numpy would answer with a view: no element can be picked twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, np.integer, slice)) for p in parts)


def _memory_order(a):
    """The order to lay out a's gradient in, as numpy names it: "F" for a 2-D array stored
    column by column (Fortran order), such as x.T of a C array or lstm_cell's outputs, else "C".
    A gradient in its tensor's own memory order is summed with the tensor's other gradients,
    and read by the op that made the tensor, over contiguous memory."""
    return "F" if a.ndim == 2 and a.flags.f_contiguous and not a.flags.c_contiguous else "C"


def _matmul_in_order_of(like, x, y):
    """x @ y, stored in the memory order of `like` when x and y are matrices: a Fortran-ordered
    result is computed as (yᵀ xᵀ)ᵀ, the same product."""
    if x.ndim == y.ndim == 2 and _memory_order(like) == "F":
        return (y.T @ x.T).T
    return x @ y


def _swap_last_axes(t):
    """t with its last two axes swapped (a Tensor or an array)."""
    n = t.ndim
    return t.transpose((*range(n - 2), n - 1, n - 2))


def _matmul_backward_on_tensors(g, a, b):
    """matmul's backward in Tensor ops, for create_graph: each case of its first-order rule."""
    if a.ndim == 1 and b.ndim == 1:
        return g * b, g * a
    if a.ndim == 1:
        return (b @ g[..., None])[..., 0], a[:, None] * g[..., None, :]
    if b.ndim == 1:
        return g[..., None] * b, (_swap_last_axes(a) @ g[..., None])[..., 0]
    return g @ _swap_last_axes(b), _swap_last_axes(a) @ g


def _reduce_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % ndim for a in axes)


def _kept_shape(shape, axis):
    """The shape of a reduction over `axis` with keepdims: the reduced axes become 1."""
    if axis is None:
        return (1,) * len(shape)
    reduced = _reduce_axes(axis, len(shape))
    return tuple(1 if i in reduced else n for i, n in enumerate(shape))


def _spread(g, kept, shape):
    """The gradient of a sum: g (the reduced axes kept as 1) repeated along the reduced axes.
    A new array, not np.broadcast_to's view: on the small arrays reductions mostly see here
    (losses), broadcast_to's Python layer costs more than writing the values."""
    full = np.empty(shape, g.dtype)
    full[...] = g.reshape(kept)
    return full


class Tensor:
    """A numpy array that records, as ops run on it, how to send gradients back.

    Float data becomes float32 unless another float dtype is asked for (float64 for gradient
    checks); integer and bool data keep their dtype (labels, indices) and cannot require grad.
    The data is copied, so later changes to the caller's array do not reach the tensor.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_saved", "_seq",
                 "__weakref__")
    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators: array + tensor works

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        data = np.array(data, dtype=dtype)
        if dtype is None and data.dtype.kind in _FLOAT_KINDS and data.dtype != np.float32:
            data = data.astype(np.float32)
        if requires_grad and data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"Tensor: only floating-point tensors can require grad; got dtype "
                            f"{data.dtype} (convert with dtype=np.float32 or np.float64)")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward = None
        self._saved = None
        self._seq = autograd.next_seq()

    # ----- plain attributes -----
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        """Like numpy's: `Tensor([[1., 2.],` and the next rows aligned under the first, then the
        dtype unless it is float32, the default, and requires_grad if set."""
        prefix = type(self).__name__ + "("
        extra = "" if self.data.dtype == np.float32 else f", dtype={self.data.dtype}"
        extra += ", requires_grad=True" if self.requires_grad else ""
        # numpy wraps every row as if it ended in `suffix`: give it only the next character
        values = np.array2string(self.data, precision=4, separator=", ", prefix=prefix,
                                 suffix="," if extra else ")")
        return prefix + values + extra + ")"

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             "use .any() or .all() on .data")
        return bool(self.data)

    __hash__ = object.__hash__

    def numpy(self):
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        return self.data.item()

    def __float__(self):
        return float(self.data)

    @property
    def parents(self):
        """The tensors this one was computed from, in the order of its op's backward; empty for
        a leaf, a constant, or a result made where no input required grad."""
        return self._parents

    def detach(self):
        """The same data, cut from the graph: gradients do not flow through the result."""
        return op_result(self.data, (), None)

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Accumulate the gradient of this tensor into `.grad` of every leaf it depends on; with
        create_graph, as Tensors that can be differentiated again (autograd.backward)."""
        autograd.backward(self, grad, retain_graph, create_graph)

    # ----- elementwise binary ops (numpy broadcasting) -----
    def __add__(self, other):
        if not isinstance(other, Tensor):
            other = _constant(other, self)
        try:
            out = self.data + other.data
        except ValueError:
            raise _broadcast_error("add", self, other) from None
        return op_result(out, (self, other), self._add_backward, ())

    @staticmethod
    @autograd.saved_as(lambda out: ())
    def _add_backward(g, _):
        return g, g

    def __sub__(self, other):
        if not isinstance(other, Tensor):
            other = _constant(other, self)
        try:
            out = self.data - other.data
        except ValueError:
            raise _broadcast_error("sub", self, other) from None
        return op_result(out, (self, other), self._sub_backward, ())

    @staticmethod
    @autograd.saved_as(lambda out: ())
    def _sub_backward(g, _):
        return g, -g

    def __mul__(self, other):
        if not isinstance(other, Tensor):
            other = _constant(other, self)
        a, b = self.data, other.data
        try:
            out = a * b
        except ValueError:
            raise _broadcast_error("mul", self, other) from None

        # each factor's gradient is g times the other factor, kept only if that one is needed
        return op_result(out, (self, other), self._mul_backward,
                         (b if self.requires_grad else None, a if other.requires_grad else None))

    @staticmethod
    @autograd.saved_as(lambda out: out.parents[::-1])        # (b, a)
    def _mul_backward(g, saved):
        b_for_a, a_for_b = saved
        return (None if b_for_a is None else g * b_for_a,
                None if a_for_b is None else g * a_for_b)

    def __truediv__(self, other):
        if not isinstance(other, Tensor):
            other = _constant(other, self)
        a, b = self.data, other.data
        try:
            out = a / b
        except ValueError:
            raise _broadcast_error("div", self, other) from None

        # only the divisor's gradient needs the quotient
        return op_result(out, (self, other), self._div_backward,
                         (b, out if other.requires_grad else None))

    @staticmethod
    @autograd.saved_as(lambda out: (out.parents[1], out))
    def _div_backward(g, saved):
        b, out_for_b = saved
        g_over_b = g / b
        return g_over_b, None if out_for_b is None else -g_over_b * out_for_b

    def __pow__(self, exponent):
        if not isinstance(exponent, Tensor):
            exponent = _constant(exponent, self)
        a, b = self.data, exponent.data
        try:
            out_data = a ** b
        except ValueError:
            raise _broadcast_error("pow", self, exponent) from None
        exponent_needs_grad = exponent.requires_grad

        def backward(g, out=None):
            if out is not None:                   # create_graph: the same rule on tensors
                base, power = out.parents
                return (g * power * base ** (power - 1),
                        g * out * base.log() if exponent_needs_grad else None)
            ga = g * b * a ** (b - 1)
            gb = g * out_data * np.log(a) if exponent_needs_grad else None
            return ga, gb
        return op_result(out_data, (self, exponent), backward)

    def __matmul__(self, other):
        if not isinstance(other, Tensor):
            other = _constant(other, self)
        a, b = self.data, other.data
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
        try:
            out = a @ b
        except ValueError:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned "
                             f"({a.shape[-1]} != {b.shape[0] if b.ndim == 1 else b.shape[-2]})") from None

        a_needs_grad, b_needs_grad = self.requires_grad, other.requires_grad

        def backward(g, out=None):
            if out is not None:               # create_graph: the same rules on tensors
                return _matmul_backward_on_tensors(g, *out.parents)
            if a.ndim == 1 and b.ndim == 1:   # dot product: g is a scalar
                return g * b, g * a
            if a.ndim == 1:                   # (k,) @ (..., k, m) -> (..., m)
                return (b @ g[..., None])[..., 0], a[:, None] * g[..., None, :]
            if b.ndim == 1:                   # (..., n, k) @ (k,) -> (..., n)
                return g[..., None] * b, (np.swapaxes(a, -1, -2) @ g[..., None])[..., 0]
            ga = gb = None                    # the usual case: only what a parent needs
            if a_needs_grad:
                ga = _matmul_in_order_of(a, g, np.swapaxes(b, -1, -2))
            if b_needs_grad:
                gb = np.swapaxes(a, -1, -2) @ g
            return ga, gb
        return op_result(out, (self, other), backward)

    def __radd__(self, other):
        return _constant(other, self) + self

    def __rsub__(self, other):
        return _constant(other, self) - self

    def __rmul__(self, other):
        return _constant(other, self) * self

    def __rtruediv__(self, other):
        return _constant(other, self) / self

    def __rpow__(self, other):
        return _constant(other, self) ** self

    def __rmatmul__(self, other):
        return _constant(other, self) @ self

    def __neg__(self):
        return op_result(-self.data, (self,), self._neg_backward, ())

    @staticmethod
    @autograd.saved_as(lambda out: ())
    def _neg_backward(g, _):
        return (-g,)

    # ----- comparisons: boolean results that carry no gradient -----
    def _compare(self, other, ufunc):
        other = other.data if isinstance(other, Tensor) else other
        return op_result(ufunc(self.data, other), (), None)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    # ----- indexing -----
    def __getitem__(self, index):
        index = _as_index(index)
        out = self.data[index]
        shape, dtype = self.data.shape, self.data.dtype
        order = _memory_order(self.data)

        if _is_basic_index(index):
            def backward(g, out=None):
                if out is not None:           # create_graph: the scatter as an op
                    return (_scattered(g, index, shape),)
                return (autograd.SliceGrad(index, g, shape, dtype, order),)
        else:
            def backward(g, out=None):
                if out is not None:
                    return (_scattered(g, index, shape),)
                full = np.zeros(shape, dtype, order)
                np.add.at(full, index, g)     # an element picked twice gets both gradients
                return (full,)
        return op_result(out, (self,), backward)

    # ----- reductions -----
    def sum(self, axis=None, keepdims=False):
        shape = self.data.shape
        out = self.data.sum(axis=axis, keepdims=keepdims)
        kept = _kept_shape(shape, axis)

        def backward(g, out=None):
            if out is not None:                   # create_graph: the spread as an op
                return (g.reshape(kept).broadcast_to(shape),)
            return (_spread(g, kept, shape),)
        return op_result(out, (self,), backward)

    def mean(self, axis=None, keepdims=False):
        shape = self.data.shape
        out = self.data.mean(axis=axis, keepdims=keepdims)
        kept = _kept_shape(shape, axis)
        scale = out.size / self.data.size if self.data.size else 0.0

        def backward(g, out=None):
            if out is not None:
                return ((g * scale).reshape(kept).broadcast_to(shape),)
            return (_spread(g * scale, kept, shape),)
        return op_result(out, (self,), backward)

    def max(self, axis=None, keepdims=False):
        """Maximum along axes; tied maxima share the gradient equally."""
        a = self.data
        kept = a.max(axis=axis, keepdims=True)
        out = kept if keepdims else kept.reshape(np.delete(a.shape, _reduce_axes(axis, a.ndim)))

        def backward(g, out=None):
            winners = a == kept
            share = winners / winners.sum(axis=axis, keepdims=True)
            if not keepdims:
                g = g.reshape(kept.shape)
            if out is not None:                   # create_graph: the share is piecewise constant
                return (g * share.astype(a.dtype),)
            return ((g * share).astype(a.dtype, copy=False),)
        return op_result(out, (self,), backward)

    # ----- elementwise unary ops -----
    def exp(self):
        out = np.exp(self.data)
        return op_result(out, (self,), self._exp_backward, out)

    @staticmethod
    @autograd.saved_as(lambda out: out)
    def _exp_backward(g, out):
        return (g * out,)

    def log(self):
        return op_result(np.log(self.data), (self,), self._log_backward, self.data)

    @staticmethod
    @autograd.saved_as(lambda out: out.parents[0])
    def _log_backward(g, a):
        return (g / a,)

    def tanh(self):
        out = np.tanh(self.data)
        return op_result(out, (self,), self._tanh_backward, out)

    @staticmethod
    @autograd.saved_as(lambda out: out)
    def _tanh_backward(g, out):
        return (g - g * out * out,)              # g * (1 - out^2), without a scalar operand

    def sigmoid(self):
        out = sigmoid(self.data)
        return op_result(out, (self,), self._sigmoid_backward, out)

    @staticmethod
    @autograd.saved_as(lambda out: out)
    def _sigmoid_backward(g, out):
        g_out = g * out
        return (g_out - g_out * out,)            # g * out * (1 - out)

    def relu(self):
        return op_result(np.maximum(self.data, 0), (self,), self._relu_backward, self.data)

    @staticmethod
    @autograd.saved_as(lambda out: out.parents[0].data)      # the mask is piecewise constant
    def _relu_backward(g, a):
        return (g * (a > 0),)

    def abs(self):
        return op_result(np.abs(self.data), (self,), self._abs_backward, self.data)

    @staticmethod
    @autograd.saved_as(lambda out: out.parents[0].data)      # so is the sign
    def _abs_backward(g, a):
        return (g * np.sign(a),)

    def sqrt(self):
        out = np.sqrt(self.data)
        return op_result(out, (self,), self._sqrt_backward, out)

    @staticmethod
    @autograd.saved_as(lambda out: out)
    def _sqrt_backward(g, out):
        return (g * 0.5 / out,)

    def sign(self):
        """-1, 0 or 1; a step function, so its gradient is zero: the result is a constant."""
        return op_result(np.sign(self.data), (), None)

    def clip(self, lo=None, hi=None):
        """Clamp to [lo, hi]; the gradient passes where the input lies inside the interval."""
        a = self.data
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"clip: lo={lo} is greater than hi={hi}")

        def backward(g, out=None):                # the same on arrays and tensors (create_graph)
            inside = np.ones(a.shape, bool)
            if lo is not None:
                inside &= a >= lo
            if hi is not None:
                inside &= a <= hi
            return (g * inside,)
        return op_result(np.clip(a, lo, hi), (self,), backward)

    # ----- shape ops -----
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        original = self.data.shape
        try:
            out = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {original} ({self.data.size} elements) "
                             f"into {shape}") from None

        def backward(g, out=None):                # the same on arrays and tensors (create_graph)
            return (g.reshape(original),)
        return op_result(out, (self,), backward)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = axes or tuple(reversed(range(self.data.ndim)))
        if sorted(a % max(self.data.ndim, 1) for a in axes) != list(range(self.data.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the axes of shape "
                             f"{self.shape}")
        inverse = tuple(int(i) for i in np.argsort([a % self.data.ndim for a in axes]))

        def backward(g, out=None):                # the same on arrays and tensors (create_graph)
            return (g.transpose(inverse),)
        return op_result(self.data.transpose(axes), (self,), backward)

    @property
    def T(self):
        return self.transpose()

    def broadcast_to(self, shape):
        """The tensor repeated along new leading axes and axes of length 1, to `shape`, as numpy
        broadcasts it. Its backward hands g back whole: the engine sums it to this tensor's
        shape, as for every broadcast input."""
        try:
            repeated = np.broadcast_to(self.data, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: shape {self.shape} cannot be broadcast to "
                             f"{tuple(shape)}") from None

        def backward(g, out=None):                # the same on arrays and tensors (create_graph)
            return (g,)
        return op_result(repeated, (self,), backward)


def _scattered(value, index, shape):
    """Zeros of `shape` with the tensor `value` added at `index` (an element picked twice gets
    both): what `x[index]` sends back to x, as an op, so that under create_graph the gradient
    of a selection can be differentiated again. Its backward picks `index` out again."""
    full = np.zeros(shape, value.dtype)
    np.add.at(full, index, value.data)

    def backward(g, out=None):                    # the same on arrays and tensors
        return (g[index],)
    return op_result(full, (value,), backward)


_HALVES = {}


def sigmoid(a):
    """The logistic function on an array, as (1 + tanh(a/2)) / 2: it never overflows, unlike
    1 / (1 + exp(-a)). The constant is a 0-d array of a's dtype: it keeps float32 float32 and,
    on tiny arrays, costs less than a Python float; it is made once per dtype."""
    half = _HALVES.get(a.dtype)
    if half is None:
        half = _HALVES[a.dtype] = np.array(0.5, a.dtype)
    out = np.tanh(a * half)
    out *= half
    out += half
    return out
