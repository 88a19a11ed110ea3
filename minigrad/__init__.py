"""minigrad: reverse-mode automatic differentiation on numpy.

    import minigrad as mg
    import minigrad.functional as F

    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == [2., 4.]

A new op is a forward and its backward handed to `op_result` (docs/extending.md).
"""
from . import functional, nn
from .autograd import grad, hvp, is_grad_enabled, no_grad
from .gradcheck import gradcheck, gradgradcheck
from .nn import manual_seed
from .tensor import Tensor, op_result

__all__ = ["Tensor", "op_result", "grad", "hvp", "no_grad", "is_grad_enabled", "gradcheck",
           "gradgradcheck", "functional", "nn", "manual_seed"]
