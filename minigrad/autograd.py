"""The graph machinery: gradient mode, and the reverse sweep behind `backward` and `grad`.

Every tensor an op produces while gradients are enabled remembers its parents and a closure
`_backward(g) -> (g_parent_0, g_parent_1, ...)` (defined next to the op's forward, in tensor.py
and functional.py). This module walks those records backwards. It knows nothing about any
particular op: adding an op never touches this file.

The most frequent elementwise ops (tensor.py) record instead a plain function and the arrays it
needs, `_backward(g, _saved)`, unless an input that needs a gradient was broadcast, so that
their gradients already have their parents' shapes. On tiny tensors an op's bookkeeping costs
more than its arithmetic, and this form saves two parts of it: creating a function object and
its closure cells for every op, which Python's cyclic garbage collector must then walk (the
collector's visits were about a tenth of an op's cost), and comparing each gradient's shape with
its parent's in the sweep. `benchmarks/overhead.py` measures the result.

Two facts make the sweep simple and iterative:
- Every tensor gets a sequence number when it is created, and a tensor is always created after
  its parents. Sorting the reachable nodes by decreasing sequence number is therefore a valid
  reverse topological order (no recursion, no visited-twice bookkeeping).
- The same numbers bound the search in `grad`: a node created before the oldest of the requested
  inputs cannot lie on a path from the output to any of them, so it is never visited. This is
  what keeps `grad(f(theta_t), theta_t)` cheap deep inside an unrolled optimisation.
"""
import itertools

import numpy as np

_enabled = True
next_seq = itertools.count().__next__


class no_grad:
    """Context manager (and decorator) under which ops record no graph.

    >>> with no_grad():
    ...     y = x * 2          # y.requires_grad is False, whatever x is
    """

    def __enter__(self):
        global _enabled
        self._previous = _enabled
        _enabled = False

    def __exit__(self, *exc_info):
        global _enabled
        _enabled = self._previous

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def is_grad_enabled():
    return _enabled


def freed_graph(_):
    raise RuntimeError(
        "backward through a graph that has already been freed: a first backward() released it; "
        "call backward(retain_graph=True) the first time to walk it again")


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing numpy broadcasting (the one place the engine does it).

    Broadcasting prepends axes and stretches axes of length 1; the gradient of a broadcast input
    is the sum over every copy it was stretched into.
    """
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _reachable(root, oldest):
    """Nodes that require grad, reachable from root through parents, not older than `oldest`,
    in reverse topological order (children before parents)."""
    found = {root._seq: root}
    stack = [root]
    while stack:
        for parent in stack.pop()._parents:
            seq = parent._seq
            if seq >= oldest and seq not in found and parent.requires_grad:
                found[seq] = parent
                stack.append(parent)
    return [found[seq] for seq in sorted(found, reverse=True)]


class SliceGrad:
    """A gradient that is zero outside `index`: what `x[index]` (basic indexing) sends back to x.

    Returning it instead of a full array of zeros with `value` written in lets the sweep write
    every slice's gradient into one buffer per sliced tensor: k slices of a tensor then cost one
    array of its size, not k arrays and k - 1 sums. lstm_cell's two outputs are slices of one
    node, and a flat parameter vector is cut into a network's weights by slices.
    """

    __slots__ = ("index", "value", "shape", "dtype", "order")

    def __init__(self, index, value, shape, dtype, order):
        self.index, self.value = index, value
        self.shape, self.dtype, self.order = shape, dtype, order

    def dense(self):
        full = np.zeros(self.shape, self.dtype, self.order)
        full[self.index] = self.value
        return full


def _sweep(output, grad, oldest=-1, record=None, free=False):
    """Walk the graph from `output` back, summing each node's gradient over its consumers.

    The order guarantees that a node's gradient is complete when the node is reached. Then:
    with `record` (a dict keyed by sequence number, for `grad`), a wanted node's gradient is
    stored there, and the sweep goes no further back than `oldest`; without it (for
    `backward`), a leaf's gradient is added into its `.grad`. With `free`, each node lets go
    of its parents and closure once it has pushed its gradient to them.

    Summing without needless copies: the first contribution to a node is kept as it is (it may
    be a view, or an array the op also gave to another parent), the second is added into a new
    array, which the sweep then owns, and later ones are added into that array in place. A
    SliceGrad is written into an owned array of the node's shape.
    """
    grads = {output._seq: grad}
    owned = set()
    pop, get = grads.pop, grads.get
    for node in _reachable(output, oldest):
        seq = node._seq
        g = pop(seq, None)
        if g is None:
            continue
        if record is not None:
            if seq in record:
                record[seq] = g
            if seq == oldest:
                continue
        backward_fn, saved = node._backward, node._saved
        if backward_fn is None:
            if record is None:
                if node.grad is None:
                    node.grad = np.array(g, dtype=node.data.dtype)
                else:
                    node.grad += g
            continue
        if saved is None:
            parent_grads, shaped = backward_fn(g), False
        else:
            parent_grads, shaped = backward_fn(g, saved), True
        for parent, pg in zip(node._parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            key = parent._seq
            total = get(key)
            if type(pg) is SliceGrad:
                if total is None:
                    grads[key] = pg.dense()
                    owned.add(key)
                    continue
                if key not in owned:
                    total = grads[key] = np.array(total)
                    owned.add(key)
                total[pg.index] += pg.value
                continue
            if not shaped:
                shape = parent.data.shape
                if pg.shape != shape:
                    pg = unbroadcast(pg, shape)
            if total is None:
                grads[key] = pg
            elif key in owned:
                total += pg
            else:
                total = grads[key] = total + pg
                if type(total) is np.ndarray:      # a sum of 0-d arrays is a numpy scalar
                    owned.add(key)
        if free:
            node._parents = ()
            node._backward, node._saved = freed_graph, None


def _seed_grad(output, grad, who):
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{who}: the output has shape {output.shape}; a gradient can only be implied for a "
                "single-element output, so pass the gradient of the output explicitly")
        return np.ones_like(output.data)
    grad = np.asarray(grad.data if hasattr(grad, "_seq") else grad, dtype=output.data.dtype)
    if grad.shape != output.data.shape:
        raise ValueError(f"{who}: gradient of shape {grad.shape} given for an output of shape "
                         f"{output.shape}; they must match")
    return grad


def backward(output, grad=None, retain_graph=False):
    """Accumulate d(output)/d(leaf) into `.grad` of every leaf that requires grad.

    Intermediate tensors keep no gradient. Unless `retain_graph`, each node drops its parents
    and closure once it has been used, so the graph's memory goes as the sweep goes.
    """
    if not output.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (it was made from tensors "
                           "that do not require grad, or under no_grad(), or by detach())")
    _sweep(output, _seed_grad(output, grad, "backward"), free=not retain_graph)


def grad(output, inputs, grad_output=None):
    """The gradients of `output` with respect to each of `inputs`, as new numpy arrays.

    Unlike `backward`, no `.grad` is touched and the graph stays intact, so a later `backward()`
    through the same graph still works (the learned optimizer reads the optimizee's gradient this
    way and then backpropagates the meta-loss through the same forward pass). Inputs may be
    intermediate tensors. An input the output does not depend on gets zeros of its shape.

    `inputs` is a tensor (one array is returned) or a sequence of tensors (a list is returned).
    `grad_output` is required when `output` has more than one element.
    """
    single = hasattr(inputs, "_seq")
    inputs = [inputs] if single else list(inputs)
    if not inputs:
        raise ValueError("grad: no inputs given")
    wanted = {t._seq: None for t in inputs}
    if output.requires_grad:
        _sweep(output, _seed_grad(output, grad_output, "grad"), min(wanted), record=wanted)
    results = [np.zeros_like(t.data) if wanted[t._seq] is None
               else np.array(wanted[t._seq], dtype=t.data.dtype) for t in inputs]
    return results[0] if single else results
