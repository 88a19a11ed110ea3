"""A multilayer perceptron: the optimizee of the paper's MNIST experiments (section 3.2).

Two faces of one computation:
- `mlp_logits(params, x, activation)`: the forward pass as a pure function of a parameter list
  [W1, b1, W2, b2, ...] (W of shape (in, out)). The optimizee families use it, since the
  learned optimizer hands them the tensors θ_t it computed, not a module's parameters.
- `MLP(sizes)`: the same network as an `nn.Module` that owns its parameters, for ordinary
  training with `optim`. Its `parameters()` come in the order `mlp_logits` expects.
"""
import numpy as np

import minigrad.functional as F
from minigrad import nn

ACTIVATIONS = {"sigmoid": F.sigmoid, "relu": F.relu, "tanh": F.tanh}


def activation_function(name):
    """The elementwise function called `name`; ValueError listing the choices otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{sorted(ACTIVATIONS)}") from None


def mlp_shapes(sizes):
    """Parameter shapes [(in, out), (out,), ...] of the MLP with layer widths `sizes`."""
    shapes = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        shapes += [(n_in, n_out), (n_out,)]
    return shapes


def mlp_logits(params, x, activation="sigmoid"):
    """Logits (N, n_out) of the MLP with parameters [W1, b1, ..., WL, bL] on inputs x (N, n_in).

    Every layer but the last is followed by the activation; the last one is linear.
    """
    act = activation if callable(activation) else activation_function(activation)
    if len(params) % 2 or not params:
        raise ValueError(f"mlp_logits: expected a list [W1, b1, W2, b2, ...], got {len(params)} "
                         "tensors")
    n_layers = len(params) // 2
    for layer in range(n_layers):
        x = F.linear(x, params[2 * layer], params[2 * layer + 1])
        if layer < n_layers - 1:
            x = act(x)
    return x


class MLP(nn.Module):
    """Fully connected network with layer widths `sizes`, e.g. (784, 20, 10); returns logits.

    Weights use `nn.Linear`'s initialisation, U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, sizes, activation="sigmoid", rng=None, dtype=np.float32):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes needs an input and an output width, got {sizes}")
        self.activation = activation
        self._act = activation_function(activation)
        self.sizes = sizes
        rng = nn.generator(rng)
        self.layers = [nn.Linear(n_in, n_out, rng=rng, dtype=dtype)
                       for n_in, n_out in zip(sizes[:-1], sizes[1:])]

    def forward(self, x):
        return self.forward_with(self.parameters(), x)

    def forward_with(self, params, x):
        """The network on x (N, sizes[0]) with `params` (ordered as `parameters()`) in place of
        its own."""
        return mlp_logits(params, x, self._act)

    def extra_repr(self):
        return f"activation={self.activation!r}"
