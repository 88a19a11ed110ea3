"""The graph machinery: gradient mode, and the reverse sweep behind `backward` and `grad`.

Every tensor an op produces while gradients are enabled remembers its parents and its op's
backward, which turns the gradient g of the tensor into its parents' gradients (tensor.op_result
records them; docs/extending.md explains the two forms a backward takes). This module walks
those records backwards. It knows nothing about any particular op: adding an op never touches
this file.

`backward` and `grad` share one walk, `_sweep`: children first, each node sends its gradient to
its parents, and the contributions each node receives are summed. They differ in what they take
from it. `backward` adds the leaves' totals into their `.grad`, and has the walk free the graph
as it goes unless asked to keep it; `grad` has the walk keep the totals of the tensors asked for
and stop at the oldest of them, and touches nothing else. The walk also checks what an op's
backward returns, at the cost of a length comparison per node and a shape comparison per
gradient: one gradient per parent, each an array of its parent's shape or of a shape numpy
broadcast it to; anything else is an error naming the op and the shapes (`_sum_to_shape`,
`_one_per_parent`).

Two facts make the sweep simple and iterative:
- Every tensor gets a sequence number when it is created, and a tensor is always created after
  its parents. Sorting the reachable nodes by decreasing sequence number is therefore a valid
  reverse topological order (no recursion, no visited-twice bookkeeping).
- The same numbers bound the search in `grad`: a node created before the oldest of the requested
  inputs cannot lie on a path from the output to any of them, so it is never visited. This is
  what keeps `grad(f(theta_t), theta_t)` cheap deep inside an unrolled optimisation.

With `create_graph=True`, `grad` and `backward` walk the graph with `_graph_sweep` instead: the
gradients are Tensors, and each op's backward runs in its Tensor form (`_tensor_backward`), so
the gradients carry a graph of their own and can be differentiated again (Hessian-vector
products, `hvp`). The first-order walk above is untouched by it.
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


def saved_as(tensors_of):
    """Give a backward of the static form `backward(g, saved)` its Tensor form, for create_graph.

    tensors_of(out) returns what that backward saves, read from the op's result tensor `out`
    and its inputs `out.parents`: tensors where the gradient depends on them (the factors of a
    product, the output of exp), arrays where it is piecewise constant (relu's input, for its
    mask). Under create_graph the sweep calls `backward(g, tensors_of(out))` with g a Tensor,
    so the same body, run on tensors, records a graph. The backward itself is returned
    unchanged: the first-order path does not see this.
    """
    def mark(backward_fn):
        backward_fn.saved_as_tensors = tensors_of
        return backward_fn
    return mark


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing numpy broadcasting (the one place the engine does it).

    Broadcasting prepends axes and stretches axes of length 1; the gradient of a broadcast input
    is the sum over every copy it was stretched into. `grad` may be an array or a Tensor.
    """
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _reachable(root, oldest):
    """{sequence number: node} of root and the nodes reachable from it through parents that
    require grad, each newer than `oldest` (a sequence number)."""
    found = {root._seq: root} if root._seq > oldest else {}
    stack = list(found.values())
    while stack:
        for parent in stack.pop()._parents:
            seq = parent._seq
            if seq > oldest and seq not in found and parent.requires_grad:
                found[seq] = parent
                stack.append(parent)
    return found


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


def _sweep(output, grads, oldest=-1, keep=(), free=False):
    """The walk `backward` and `grad` share, from `output` back through the nodes newer than
    `oldest` that require grad; returns those nodes, {sequence number: node}. Each node in turn,
    children first, has its backward turn its complete gradient into its parents', and each of
    those is added to its parent's total in `grads` ({sequence number: gradient}, which holds
    the output's to begin with).

    A total is dropped once its node has sent it on, except those of the nodes in `keep`
    (sequence numbers); a leaf sends nothing on, so its total stays in `grads` too. With `free`,
    each node lets go of its parents and backward once it has sent its gradient to them.

    A gradient is summed down to its parent's shape if numpy broadcast the parent, and a
    SliceGrad is written into its parent's total. Summing without needless copies: the first
    contribution to a total is kept as it is (it may be a view, or an array the op also gave to
    another parent), the second is added into a new array, which the sweep then owns (its key
    goes into `owned`), and later ones are added into that array in place.
    """
    nodes = _reachable(output, oldest)
    owned = set()
    pop = grads.pop
    for seq in sorted(nodes, reverse=True):        # a node is always newer than its parents
        node = nodes[seq]
        backward_fn = node._backward
        if backward_fn is None:
            continue
        g = grads.get(seq) if seq in keep else pop(seq, None)
        if g is None:
            continue
        saved = node._saved
        parent_grads = backward_fn(g) if saved is None else backward_fn(g, saved)
        parents = node._parents
        if type(parent_grads) is not tuple or len(parent_grads) != len(parents):
            parent_grads = _one_per_parent(parent_grads, node)
        try:
            for parent, pg in zip(parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                key = parent._seq
                if type(pg) is SliceGrad:
                    _add_slice(grads, owned, key, pg)
                    continue
                if pg.shape != parent.data.shape:
                    pg = _sum_to_shape(pg, parent, node)
                total = grads.get(key)
                if total is None:
                    grads[key] = pg
                elif key in owned:
                    total += pg
                else:
                    total = grads[key] = total + pg
                    if type(total) is np.ndarray:  # a sum of 0-d arrays is a numpy scalar
                        owned.add(key)
        except AttributeError:                     # a gradient without a shape: a float, a list
            _check_arrays(parent_grads, node)
            raise
        if free:
            node._parents = ()
            node._backward, node._saved = freed_graph, None
    return nodes


def _graph_sweep(output, grads, oldest=-1, keep=()):
    """_sweep for create_graph: the gradients in `grads` are Tensors, each node's backward runs
    in its Tensor form (`_tensor_backward`), and the contributions are summed by Tensor
    additions, so every gradient it leaves carries the graph of how it was computed. Nothing is
    freed: that graph runs through the nodes of the first one. Returns the nodes it walked."""
    nodes = _reachable(output, oldest)
    for seq in sorted(nodes, reverse=True):
        node = nodes[seq]
        if node._backward is None:
            continue
        g = grads.get(seq) if seq in keep else grads.pop(seq, None)
        if g is None:
            continue
        parent_grads = _tensor_backward(node, g)
        if type(parent_grads) is not tuple or len(parent_grads) != len(node._parents):
            parent_grads = _one_per_parent(parent_grads, node)
        for parent, pg in zip(node._parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            if not hasattr(pg, "_seq"):
                raise ValueError(
                    f"{_describe_backward(node._backward)} returned {type(pg).__name__} for "
                    f"{_which_input(parent, node)} under create_graph: its Tensor form must "
                    "return Tensors, or the gradient's own graph is lost")
            if pg.shape != parent.data.shape:
                pg = _sum_to_shape(pg, parent, node)
            total = grads.get(parent._seq)
            grads[parent._seq] = pg if total is None else total + pg
    return nodes


def _tensor_backward(node, g):
    """The gradients of node's parents from g (a Tensor), computed in Tensor ops: a static
    backward runs on the tensors its op names with `saved_as`; a closure that takes `out` is
    called with the node as `out`, and computes in Tensor ops when given it. Any other backward
    has no Tensor form, and create_graph through it is an error naming the op."""
    backward_fn = node._backward
    if backward_fn is freed_graph:
        freed_graph(g)
    if node._saved is not None:
        tensors_of = getattr(backward_fn, "saved_as_tensors", None)
        if tensors_of is not None:
            return backward_fn(g, tensors_of(node))
    else:
        code = getattr(backward_fn, "__code__", None)
        if code is not None and "out" in code.co_varnames[:code.co_argcount]:
            return backward_fn(g, out=node)
    raise NotImplementedError(
        f"{_describe_backward(backward_fn)} is first order only: create_graph=True needs a "
        "backward that can run on tensors (a closure `backward(g, out=None)`, or a static "
        "backward marked with autograd.saved_as; docs/extending.md, 'Twice differentiable "
        "ops'). Differentiate through a form of the op composed from primitives instead")


def _add_slice(grads, owned, key, pg):
    """Add the SliceGrad `pg` to the total under `key`, writing only its slice."""
    total = grads.get(key)
    if total is None:
        grads[key] = pg.dense()
        owned.add(key)
        return
    if key not in owned:
        total = grads[key] = np.array(total)
        owned.add(key)
    total[pg.index] += pg.value


def _sum_to_shape(pg, parent, node):
    """unbroadcast(pg, parent's shape), or, where no broadcasting of that shape gives pg's, an
    error naming the op whose backward (recorded on `node`) returned pg, and both shapes."""
    shape = parent.data.shape
    summed = unbroadcast(pg, shape) if pg.ndim >= len(shape) else None
    if summed is None or summed.shape != shape:
        raise ValueError(
            f"{_describe_backward(node._backward)} returned a gradient of shape {pg.shape} for "
            f"{_which_input(parent, node)} of shape {shape}: a gradient must have its input's "
            "shape, or the shape numpy broadcast that input to")
    return summed


def _one_per_parent(parent_grads, node):
    """parent_grads as a tuple of one gradient per parent of `node`, or the error naming the op
    whose backward returned something else. A list of the right length will do."""
    n = len(node._parents)
    if isinstance(parent_grads, (tuple, list)):
        if len(parent_grads) == n:
            return tuple(parent_grads)
        returned = _count(len(parent_grads), "gradient")
    elif isinstance(parent_grads, np.ndarray):
        returned = f"one array of shape {parent_grads.shape}, not a tuple"
    elif parent_grads is None:
        returned = "None, not a tuple"
    else:
        returned = f"a {type(parent_grads).__name__}, not a tuple"
    inputs = _count(n, "input")
    raise ValueError(
        f"{_describe_backward(node._backward)} returned {returned}, for an op with {inputs}: "
        "a backward returns a tuple with one gradient (or None) per input, in the order of the "
        "op's parents, so `return (grad,)` for an op with one input")


def _count(n, noun):
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_arrays(parent_grads, node):
    """Raise the error naming the op of `node` if one of the gradients its backward returned is
    not an array (has no shape); return if they all are."""
    for parent, pg in zip(node._parents, parent_grads):
        if pg is not None and not hasattr(pg, "shape"):
            raise ValueError(
                f"{_describe_backward(node._backward)} returned {type(pg).__name__} {pg!r:.40} "
                f"for {_which_input(parent, node)} of shape {parent.data.shape}: a gradient must "
                "be a numpy array of its input's shape") from None


def _which_input(parent, node):
    """'an input', or 'input parents[1]': where `parent` stands among the parents of `node`."""
    parents = node._parents
    if len(parents) == 1:
        return "an input"
    return f"input parents[{next(i for i, p in enumerate(parents) if p is parent)}]"


def _describe_backward(backward_fn):
    """'the backward of softplus (path/to/file.py, line 12)', for an error message: the function
    in which a closure was defined is its op."""
    qualname = getattr(backward_fn, "__qualname__", None) or repr(backward_fn)
    op = qualname.rpartition(".<locals>.")[0].rpartition(".<locals>.")[2]
    name = f"the backward of {op}" if op else qualname
    code = getattr(backward_fn, "__code__", None)
    where = f" ({code.co_filename}, line {code.co_firstlineno})" if code is not None else ""
    return name + where


def _seed_grad(output, grad, who, create_graph=False):
    """The gradient the sweep starts from: `grad` (or ones for a one-element output) as an array
    of output's dtype, or, with create_graph, as a Tensor; a Tensor given keeps its graph, so
    the result can be differentiated with respect to it too."""
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{who}: the output has shape {output.shape}; a gradient can only be implied for a "
                "single-element output, so pass the gradient of the output explicitly")
        grad = np.ones_like(output.data)
    elif create_graph and hasattr(grad, "_seq"):
        if grad.shape != output.data.shape:
            raise ValueError(f"{who}: gradient of shape {grad.shape} given for an output of "
                             f"shape {output.shape}; they must match")
        return grad
    grad = np.asarray(grad.data if hasattr(grad, "_seq") else grad, dtype=output.data.dtype)
    if grad.shape != output.data.shape:
        raise ValueError(f"{who}: gradient of shape {grad.shape} given for an output of shape "
                         f"{output.shape}; they must match")
    return type(output)(grad, dtype=grad.dtype) if create_graph else grad


def backward(output, grad=None, retain_graph=False, create_graph=False):
    """Accumulate d(output)/d(leaf) into `.grad` of every leaf that requires grad.

    Intermediate tensors keep no gradient. Unless `retain_graph`, each node drops its parents
    and backward once it has been used, so the graph's memory goes as the sweep goes.

    With `create_graph`, as in torch, each leaf's `.grad` becomes a Tensor that carries the
    graph of its computation (added to what `.grad` held), and the graph is kept. Optimizers
    read `.grad` as an array: set it to None (zero_grad) before their step.
    """
    if not output.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (it was made from tensors "
                           "that do not require grad, or under no_grad(), or by detach())")
    grads = {output._seq: _seed_grad(output, grad, "backward", create_graph)}
    if create_graph:
        nodes = _graph_sweep(output, grads)
        for seq, g in grads.items():
            leaf = nodes[seq]
            leaf.grad = g if leaf.grad is None else g + leaf.grad
        return
    nodes = _sweep(output, grads, free=not retain_graph)
    for seq, g in grads.items():                   # what the sweep leaves: the leaves' totals
        leaf = nodes[seq]
        if leaf.grad is None:
            leaf.grad = np.array(g, dtype=leaf.data.dtype)
        else:
            leaf.grad += g


def grad(output, inputs, grad_output=None, create_graph=False):
    """The gradients of `output` with respect to each of `inputs`, as new numpy arrays, or, with
    `create_graph`, as Tensors that carry the graph of their computation, to be differentiated
    again (grad of grad, Hessian-vector products: `hvp`).

    Unlike `backward`, no `.grad` is touched and the graph stays intact, so a later `backward()`
    through the same graph still works (the learned optimizer reads the optimizee's gradient this
    way and then backpropagates the meta-loss through the same forward pass). Inputs may be
    intermediate tensors. An input the output does not depend on gets zeros of its shape.

    `inputs` is a tensor (one gradient is returned) or a sequence of tensors (a list is
    returned). `grad_output` is required when `output` has more than one element; with
    create_graph it may be a Tensor, whose graph the gradients then depend on.
    """
    single = hasattr(inputs, "_seq")
    inputs = [inputs] if single else list(inputs)
    if not inputs:
        raise ValueError("grad: no inputs given")
    grads = {}
    if output.requires_grad:
        wanted = {t._seq for t in inputs}
        grads[output._seq] = _seed_grad(output, grad_output, "grad", create_graph)
        # nothing older than the oldest input can lie on a path to one; that input's own
        # gradient stays in grads, since it is never sent on
        sweep = _graph_sweep if create_graph else _sweep
        sweep(output, grads, min(wanted), keep=wanted)
    if create_graph:
        results = [type(t)(np.zeros_like(t.data), dtype=t.dtype) if grads.get(t._seq) is None
                   else grads[t._seq] for t in inputs]
    else:
        results = [np.zeros_like(t.data) if grads.get(t._seq) is None
                   else np.array(grads[t._seq], dtype=t.data.dtype) for t in inputs]
    return results[0] if single else results


def hvp(f, inputs, vectors):
    """Hessian-vector products: H v for the scalar f(*inputs), where H is its Hessian with
    respect to `inputs` (a sequence of tensors) and v is `vectors`, one array per input of its
    shape. Returns a list of arrays, one per input.

    Two sweeps and no Hessian (Pearlmutter 1994): the gradient, kept as a graph, is dotted with
    v, and that scalar is differentiated again: d/dx (grad f(x) . v) = H v. A full Hessian is H
    applied to each unit vector in turn (one column each).
    """
    inputs = list(inputs)
    gradients = grad(f(*inputs), inputs, create_graph=True)
    dot = sum((g * np.asarray(v, g.dtype)).sum() for g, v in zip(gradients, vectors))
    return grad(dot, inputs)
