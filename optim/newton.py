"""Newton's method without a Hessian: `NewtonCG`, the Newton step solved by conjugate gradient
on Hessian-vector products (minigrad's create_graph)."""
import numpy as np

from minigrad import grad, no_grad

from .base import Optimizer, check_range


class NewtonCG(Optimizer):
    """Newton's method, the linear system solved by conjugate gradient on Hessian-vector
    products (truncated Newton; Nocedal and Wright, Numerical Optimization, 2006, algorithm
    7.1). Like torch's LBFGS it needs a closure, `step(closure)`, that re-evaluates the model
    and returns the loss: each step differentiates the loss twice.

        g = ∇f(θ),   B = H + damping · I   (H = ∇²f(θ), never formed: B v costs two sweeps)
        p = CG solution of B p = −g, from p = 0, stopped after max_cg iterations or once the
            residual ||B p + g|| ≤ tol · ||g||; if B shows non-positive curvature along a CG
            direction d (dᵀ B d ≤ 0), CG stops there and returns the p so far, or −g if that
            happens on the first direction
        θ ← θ + lr · p

    With lr=1 and damping=0 this is Newton's method: on a quadratic with a positive definite
    Hessian, one step lands on the minimum, and CG needs at most as many Hessian-vector
    products as θ has coordinates (in exact arithmetic). Newton's step goes to the nearest
    critical point, a saddle or a maximum as readily as a minimum; the negative-curvature stop
    turns it downhill instead. The damped variant, damping = λ > 0 (Levenberg-Marquardt),
    shortens the step and turns it toward −g: p → −g/λ as λ grows, and B is positive definite
    wherever the Hessian's eigenvalues exceed −λ. lr < 1 is the other damping, a shorter step
    along the same direction.

    All parameters form one vector θ, since the Hessian couples them: one parameter group only,
    as in torch's LBFGS. The closure returns the loss tensor with its graph and must not call
    backward() (which would free the graph this step differentiates); `.grad` is not read.
    state[first parameter] holds "step" and "hvps", the Hessian-vector products made so far.

    Defaults: lr=1, damping=0, max_cg=None (θ's number of coordinates), tol=1e-10.
    """

    def __init__(self, params, lr=1.0, damping=0.0, max_cg=None, tol=1e-10):
        super().__init__(params, dict(lr=lr, damping=damping, max_cg=max_cg, tol=tol))

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError(f"{self._name}: takes one parameter group (the Hessian couples "
                             "all parameters), as torch's LBFGS does")
        super().add_param_group(param_group)

    def _check_hyperparameters(self, group):
        check_range(self._name, "lr", group["lr"], 0.0)
        check_range(self._name, "damping", group["damping"], 0.0)
        check_range(self._name, "tol", group["tol"], 0.0)
        if group["max_cg"] is not None:
            check_range(self._name, "max_cg", group["max_cg"], 1)

    def step(self, closure=None):
        """One Newton-CG step; returns the loss the closure returned (before the step)."""
        if closure is None:
            raise TypeError(f"{self._name}.step needs a closure that re-evaluates the model and "
                            "returns the loss, without calling backward(), as torch's LBFGS")
        group = self.param_groups[0]
        params = group["params"]
        loss = closure()
        gradients = grad(loss, params, create_graph=True)
        shapes = [p.shape for p in params]

        def curvature(v):                                  # B v = H v + damping · v
            pieces = _unflatten(v, shapes)
            dot = sum((g * piece).sum() for g, piece in zip(gradients, pieces))
            return _flatten(grad(dot, params)) + group["damping"] * v

        g = _flatten([t.data for t in gradients])
        max_cg = group["max_cg"] if group["max_cg"] is not None else g.size
        direction, hvps = conjugate_gradient(curvature, g, max_cg, group["tol"])
        with no_grad():
            for p, piece in zip(params, _unflatten(group["lr"] * direction, shapes)):
                p.data += piece.astype(p.dtype, copy=False)
        state = self.state.setdefault(params[0], {"step": 0, "hvps": 0})
        state["step"] += 1
        state["hvps"] += hvps
        return loss


def conjugate_gradient(curvature, g, max_iterations, tol):
    """(p, products): p approximately solves B p = −g, where curvature(v) = B v, by conjugate
    gradient from p = 0, with the negative-curvature stop of NewtonCG's docstring; products is
    the number of times B was applied. g: a flat array."""
    p = np.zeros_like(g)
    r = g.copy()                        # the residual B p + g
    d = -r
    rr = r @ r
    stop = tol * np.sqrt(rr)
    for j in range(max_iterations):
        if np.sqrt(rr) <= stop:
            return p, j
        Bd = curvature(d)
        dBd = d @ Bd
        if dBd <= 0:
            return (-g if j == 0 else p), j + 1
        alpha = rr / dBd
        p = p + alpha * d
        r = r + alpha * Bd
        rr, rr_before = r @ r, rr
        d = -r + (rr / rr_before) * d
    return p, max_iterations


def _flatten(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


def _unflatten(v, shapes):
    pieces, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        pieces.append(v[start:start + size].reshape(shape))
        start += size
    return pieces
