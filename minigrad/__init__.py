"""minigrad: reverse-mode automatic differentiation on numpy.

    import minigrad as mg
    import minigrad.functional as F

    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == [2., 4.]
"""
from . import functional, nn
from .autograd import grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck
from .nn import manual_seed
from .tensor import Tensor

__all__ = ["Tensor", "grad", "no_grad", "is_grad_enabled", "gradcheck", "functional", "nn",
           "manual_seed"]
