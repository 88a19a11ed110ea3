"""Modules and parameters: the small `nn` the models are built from.

A Module finds its parameters by looking at its own attributes: Parameters, Modules, and lists or
tuples of them. There is no registration step to forget. Buffers, the state a module keeps but
does not train (batch norm's running statistics), are numpy arrays found the same way, among the
attributes its class names in `buffer_names`; `state_dict` carries parameters and buffers alike.
"""
import numpy as np

from . import functional as F
from .tensor import Tensor

_default_rng = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the generator that layers use when they are not given `rng`."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)


def generator(rng):
    """The random generator a layer initialises from: `rng` if it is one, a new one seeded with
    it if it is a seed, the default that `manual_seed` reseeds if it is None."""
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


class Module:
    """Base class: subclasses set Parameters and sub-Modules as attributes and define forward.

    A subclass with buffers names the attributes that hold them in `buffer_names`; an attribute
    set to None there is no buffer (BatchNorm2d without running statistics).
    """

    training = True
    buffer_names = ()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        """What the module prints inside its parentheses besides its sub-modules: its sizes and
        settings, such as `in_features=784, out_features=20, bias=True` (torch's hook)."""
        return ""

    def __repr__(self):
        """torch's layout: the class name, then, indented one per line, the lines of extra_repr
        and each sub-module as `(name): ...`; a list of sub-modules prints as `(name): [` and
        its items as `(0): ...`. A module without sub-modules fits on one line:
        `Linear(in_features=3, out_features=2, bias=True)`."""
        extra = self.extra_repr()
        children = []
        for name, value in vars(self).items():
            if isinstance(value, Module):
                children.append(f"({name}): {value!r}")
            elif isinstance(value, (list, tuple)) and any(isinstance(v, Module) for v in value):
                opening, closing = "[]" if isinstance(value, list) else "()"
                items = "".join(f"\n  ({i}): {_indent(repr(item))}"
                                for i, item in enumerate(value) if isinstance(item, Module))
                children.append(f"({name}): {opening}{items}\n{closing}")
        if not children and "\n" not in extra:
            return f"{type(self).__name__}({extra})"
        lines = (extra.split("\n") if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(map(_indent, lines)) + "\n)"

    def _children(self):
        """(attribute name, value) of this module's Parameters, buffers and sub-Modules, in
        attribute order; an item of a list or tuple is named `attribute.index`."""
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif name in self.buffer_names:
                if value is not None:
                    yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Parameter, Module)):
                        yield f"{name}.{i}", item

    def _walk(self, prefix):
        """(dotted name, Parameter or buffer) of this module and, depth first, its sub-Modules."""
        for name, value in self._children():
            if isinstance(value, Module):
                yield from value._walk(prefix + name + ".")
            else:
                yield prefix + name, value

    def _named(self, prefix, kind):
        """The (name, value) pairs of `_walk` whose value is a `kind` (Parameter, or np.ndarray
        for buffers), each value once, though modules may share it."""
        seen = set()
        found = []
        for name, value in self._walk(prefix):
            if isinstance(value, kind) and id(value) not in seen:
                seen.add(id(value))
                found.append((name, value))
        return found

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs in attribute order; a shared parameter appears once."""
        return self._named(prefix, Parameter)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """(dotted name, array) pairs in attribute order, such as ("blocks.0.norm.running_mean",
        (C,) array); a shared buffer appears once."""
        return self._named(prefix, np.ndarray)

    def buffers(self):
        return [b for _, b in self.named_buffers()]

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
        """{dotted name: copy of the array} of every parameter, then of every buffer."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update((name, b.copy()) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy arrays into the parameters and buffers in place; names and shapes must match
        exactly, and nothing is changed unless they all do."""
        arrays = {name: p.data for name, p in self.named_parameters()}
        arrays.update(self.named_buffers())
        missing = sorted(set(arrays) - set(state))
        unexpected = sorted(set(state) - set(arrays))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: {type(self).__name__} state does not match: "
                           f"missing {missing}, unexpected {unexpected}")
        for name, array in arrays.items():
            value = np.asarray(state[name])
            if value.shape != array.shape:
                raise ValueError(f"load_state_dict: {name} has shape {array.shape} but the state "
                                 f"holds shape {value.shape}")
        for name, array in arrays.items():
            array[...] = state[name]


def _indent(text):
    """text with every line after the first indented by two spaces."""
    return text.replace("\n", "\n  ")


class Linear(Module):
    """y = x @ W + b, W of shape (in_features, out_features), initialised U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        rng = generator(rng)
        bound = 1 / np.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (in_features, out_features)), dtype=dtype)
        self.bias = Parameter(rng.uniform(-bound, bound, out_features), dtype=dtype) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        n_in, n_out = self.weight.shape
        return f"in_features={n_in}, out_features={n_out}, bias={self.bias is not None}"


class LSTMCell(Module):
    """One LSTM step (see functional.lstm_cell); state (h, c) defaults to zeros."""

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float32):
        rng = generator(rng)
        bound = 1 / np.sqrt(hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight = Parameter(rng.uniform(-bound, bound, (input_size + hidden_size, 4 * hidden_size)),
                                dtype=dtype)
        self.bias = Parameter(rng.uniform(-bound, bound, 4 * hidden_size), dtype=dtype)

    def forward(self, x, state=None):
        if state is None:
            zeros = Tensor(np.zeros((x.shape[0], self.hidden_size)), dtype=self.weight.dtype)
            state = (zeros, zeros)
        h, c = state
        return F.lstm_cell(x, h, c, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class Conv2d(Module):
    """2-D convolution layer (see functional.conv2d), initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 rng=None, dtype=np.float32):
        rng = generator(rng)
        kh, kw = F._pair(kernel_size, "kernel_size", "Conv2d")
        bound = 1 / np.sqrt(in_channels * kh * kw)
        self.stride, self.padding = stride, padding
        self.weight = Parameter(rng.uniform(-bound, bound, (out_channels, in_channels, kh, kw)),
                                dtype=dtype)
        self.bias = Parameter(rng.uniform(-bound, bound, out_channels), dtype=dtype) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        out_channels, in_channels, kh, kw = self.weight.shape
        bias = "" if self.bias is not None else ", bias=False"
        return (f"{in_channels}, {out_channels}, kernel_size={(kh, kw)}, stride={self.stride}, "
                f"padding={self.padding}{bias}")


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) for each channel of an (N, C, H, W) input
    (Ioffe and Szegedy 2015), composed from engine primitives:

        y = (x − μ) / sqrt(σ² + eps) · γ + β         γ (C,) starts at 1, β (C,) at 0

    In training mode μ and σ² are the batch's mean and (biased) variance per channel, and the
    running averages move towards them: r ← (1 − momentum) r + momentum · batch statistic (the
    variance's unbiased form, n / (n − 1) σ², as in torch). In eval mode the running averages
    are used instead. With track_running_stats=False there are no running averages and the
    batch statistics are used in both modes.

    The running averages, running_mean and running_var (C,), are buffers: `state_dict` carries
    them.
    """

    buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, track_running_stats=True,
                 dtype=np.float32):
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.track_running_stats = track_running_stats
        self.weight = Parameter(np.ones(num_features), dtype=dtype)
        self.bias = Parameter(np.zeros(num_features), dtype=dtype)
        self.running_mean = np.zeros(num_features, dtype) if track_running_stats else None
        self.running_var = np.ones(num_features, dtype) if track_running_stats else None

    def forward(self, x):
        return self.forward_with([self.weight, self.bias], x)

    def forward_with(self, params, x):
        """Normalise x (N, C, H, W) with scale and shift params = [γ (C,), β (C,)]."""
        weight, bias = params
        channels = self.num_features
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"BatchNorm2d: expected input (N, {channels}, H, W), got {x.shape}")
        per_channel = (1, channels, 1, 1)
        if self.training or not self.track_running_stats:
            mean = x.mean(axis=(0, 2, 3), keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=(0, 2, 3), keepdims=True)
            if self.training and self.track_running_stats:
                n = x.size // channels
                batch_mean = mean.data.reshape(channels)
                self.running_mean += self.momentum * (batch_mean - self.running_mean)
                unbiased = var.data.reshape(channels) * (n / max(n - 1, 1))
                self.running_var += self.momentum * (unbiased - self.running_var)
        else:
            centered = x - Tensor(self.running_mean.reshape(per_channel), dtype=x.dtype)
            var = Tensor(self.running_var.reshape(per_channel), dtype=x.dtype)
        normalised = centered / (var + self.eps).sqrt()
        return normalised * weight.reshape(per_channel) + bias.reshape(per_channel)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"track_running_stats={self.track_running_stats}")
