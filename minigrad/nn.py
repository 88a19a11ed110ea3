"""Modules and parameters: the small `nn` the models are built from.

A Module finds its parameters by looking at its own attributes: Parameters, Modules, and lists or
tuples of them. There is no registration step to forget.
"""
import numpy as np

from . import functional as F
from .tensor import Tensor

_default_rng = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the generator that layers use when they are not given `rng`."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)


def _rng(rng):
    if rng is None:
        return _default_rng
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


class Parameter(Tensor):
    """A leaf tensor that requires grad and that Modules collect as their parameters."""

    __slots__ = ()

    def __init__(self, data, dtype=None):
        super().__init__(data, requires_grad=True, dtype=dtype)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class: subclasses set Parameters and sub-Modules as attributes and define forward."""

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _children(self):
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Parameter, Module)):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs in attribute order; a shared parameter appears once."""
        seen = set()
        found = []
        for name, value in self._walk(prefix):
            if id(value) not in seen:
                seen.add(id(value))
                found.append((name, value))
        return found

    def _walk(self, prefix):
        for name, value in self._children():
            if isinstance(value, Parameter):
                yield prefix + name, value
            else:
                yield from value._walk(prefix + name + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def modules(self):
        yield self
        for _, value in self._children():
            if isinstance(value, Module):
                yield from value.modules()

    def zero_grad(self):
        """Forget accumulated gradients (set them to None, as torch does)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        """{name: copy of the parameter's array}."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters in place; names and shapes must match exactly."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: {type(self).__name__} state does not match: "
                           f"missing {missing}, unexpected {unexpected}")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"load_state_dict: {name} has shape {p.shape} but the state holds "
                                 f"shape {value.shape}")
        for name, p in params.items():
            p.data[...] = state[name]


class Linear(Module):
    """y = x @ W + b, W of shape (in_features, out_features), initialised U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        rng = _rng(rng)
        bound = 1 / np.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (in_features, out_features)), dtype=dtype)
        self.bias = Parameter(rng.uniform(-bound, bound, out_features), dtype=dtype) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class LSTMCell(Module):
    """One LSTM step (see functional.lstm_cell); state (h, c) defaults to zeros."""

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32):
        rng = _rng(rng)
        bound = 1 / np.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.weight = Parameter(rng.uniform(-bound, bound, (input_size + hidden_size, 4 * hidden_size)),
                                dtype=dtype)
        self.bias = Parameter(rng.uniform(-bound, bound, 4 * hidden_size), dtype=dtype)

    def forward(self, x, state=None):
        if state is None:
            zeros = Tensor(np.zeros((x.shape[0], self.hidden_size)), dtype=self.weight.dtype)
            state = (zeros, zeros)
        h, c = state
        return F.lstm_cell(x, h, c, self.weight, self.bias)


class Conv2d(Module):
    """2-D convolution layer (see functional.conv2d), initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 rng=None, dtype=np.float32):
        rng = _rng(rng)
        kh, kw = F._pair(kernel_size, "kernel_size", "Conv2d")
        bound = 1 / np.sqrt(in_channels * kh * kw)
        self.stride, self.padding = stride, padding
        self.weight = Parameter(rng.uniform(-bound, bound, (out_channels, in_channels, kh, kw)),
                                dtype=dtype)
        self.bias = Parameter(rng.uniform(-bound, bound, out_channels), dtype=dtype) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
