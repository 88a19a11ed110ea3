"""The learned optimizer of Andrychowicz et al. (2016), "Learning to learn by gradient descent by
gradient descent": a coordinatewise LSTM m with weights phi proposes each step's update,

    theta_{t+1} = theta_t + g_t,    [g_t, h_{t+1}] = m(grad_t, h_t, phi)        (paper, eq. 1 and 3)

Coordinatewise (section 2.1): one small network is applied to every coordinate of every
parameter tensor, all coordinates as one batch (rows = coordinates); phi is shared, the LSTM state
(h, c) is per coordinate. So a network trained on 15,910 coordinates runs unchanged on any other
number of them.

This module holds the network (`CoordinatewiseLSTM`), the gradient preprocessing of appendix A,
saving and loading, and `LearnedOptimizer`, which uses trained networks like any optimizer in
`optim`. Meta-training (how phi is learned) is in `optim/meta.py`.
"""
import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import nn

FORMAT_VERSION = 1


def preprocess_gradients(grad, p=10.0):
    """Appendix A: map each gradient coordinate to two inputs of similar scale.

        grad -> (log|grad| / p, sign(grad))   if |grad| >= e^-p
        grad -> (-1, e^p * grad)              otherwise

    Gradients span many orders of magnitude across coordinates and over training; the first
    input carries the magnitude on a log scale, the second the sign. Below e^-p the log would
    blow up, so tiny gradients are passed (scaled) through the second input instead.

    grad: (n,) array; returns (n, 2) of grad's float dtype.
    """
    grad = np.asarray(grad)
    magnitude = np.abs(grad)
    big = magnitude >= np.exp(-p)
    out = np.empty(grad.shape + (2,), grad.dtype)
    with np.errstate(divide="ignore"):
        out[..., 0] = np.where(big, np.log(magnitude) / p, -1.0)
    out[..., 1] = np.where(big, np.sign(grad), np.exp(p) * grad)
    return out


@dataclass(frozen=True)
class NetworkConfig:
    """What defines a network; saved with its weights.

    The defaults are the paper's MNIST setup: two LSTM layers of 20 units, preprocessing with
    p = 10, output scale 0.1. For quadratics the paper uses no preprocessing and scale 1.0.
    The official code's variants: preprocess_p=5, output_scale=0.01, forget_bias=1.0.
    `layers=()` gives a plain linear network g = w * grad + b (the exact check of
    docs/paper.md), and `zero_init` starts every weight at zero. dtype float64 is for
    gradient checks.
    """

    layers: tuple = (20, 20)
    preprocess: bool = True
    preprocess_p: float = 10.0
    output_scale: float = 0.1
    forget_bias: float = 0.0
    zero_init: bool = False
    seed: int = 0
    dtype: str = "float32"

    @property
    def input_size(self):
        return 2 if self.preprocess else 1

    def to_json(self):
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        values["layers"] = tuple(values["layers"])
        return cls(**values)


class CoordinatewiseLSTM(nn.Module):
    """m(grad, state; phi): a stack of LSTM cells and a linear output, applied per coordinate.

    Parameters (phi): for each layer k, `cells[k].weight` (in_k + H_k, 4 H_k) and `.bias`
    (4 H_k,), gates ordered input, forget, cell, output; then `out_weight` (H_last, 1) and
    `out_bias` (1,). With no layers, the output is linear in the (preprocessed) gradient.
    """

    def __init__(self, config=NetworkConfig()):
        self.config = config
        self.dtype = np.dtype(config.dtype)
        rng = np.random.default_rng(config.seed)
        self.cells = []
        width = config.input_size
        for hidden in config.layers:
            cell = nn.LSTMCell(width, hidden, rng=rng, dtype=self.dtype)
            cell.bias.data[hidden:2 * hidden] += config.forget_bias
            self.cells.append(cell)
            width = hidden
        # A small output layer: the first updates are small, so early meta-training is stable.
        self.out_weight = nn.Parameter(rng.uniform(-0.1, 0.1, (width, 1)) / np.sqrt(width),
                                       dtype=self.dtype)
        self.out_bias = nn.Parameter(np.zeros(1), dtype=self.dtype)
        if config.zero_init:
            for p in self.parameters():
                p.data[...] = 0

    def initial_state(self, n_coords):
        """Zero (h, c) for each layer: a list of pairs of (n_coords, H) tensors."""
        return [(mg.Tensor(np.zeros((n_coords, cell.hidden_size)), dtype=self.dtype),) * 2
                for cell in self.cells]

    def forward(self, grad, state):
        """grad: (n,) array of gradient coordinates (a constant: first order, section 2).
        state: from `initial_state` or the previous call. Returns (update (n,) tensor, state)."""
        config = self.config
        if config.preprocess:
            x = preprocess_gradients(grad, config.preprocess_p)
        else:
            x = grad.reshape(-1, 1)
        x = mg.Tensor(x, dtype=self.dtype)
        new_state = []
        for cell, (h, c) in zip(self.cells, state):
            h, c = F.lstm_cell(x, h, c, cell.weight, cell.bias)
            new_state.append((h, c))
            x = h
        update = F.linear(x, self.out_weight, self.out_bias) * config.output_scale
        return update.reshape(-1), new_state


def detach_state(state):
    return [(h.detach(), c.detach()) for h, c in state]


# ----- files -----
def atomic_savez(path, arrays):
    """np.savez to a temporary file in the same folder, then rename: a crash never leaves a
    half-written file under `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_npz(path, what):
    """All arrays of an npz file, or a ValueError naming the file and what is wrong with it."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as error:
        raise ValueError(f"{path}: not a readable {what} (expected an .npz file written by "
                         f"minigrad): {error}") from None


def save_networks(path, networks, extra=None):
    """Write networks (a dict name -> CoordinatewiseLSTM) and their configurations to one npz."""
    arrays = {"format_version": np.array(FORMAT_VERSION)}
    arrays["names"] = np.array(json.dumps(sorted(networks)))
    for name, net in networks.items():
        arrays[f"{name}/config"] = np.array(net.config.to_json())
        for key, value in net.state_dict().items():
            arrays[f"{name}/{key}"] = value
    for key, value in (extra or {}).items():
        arrays[f"extra/{key}"] = np.asarray(value)
    atomic_savez(path, arrays)


def load_networks(path, with_extra=False):
    """Read what `save_networks` wrote; a file that is not such a file is reported, not half-read."""
    arrays = read_npz(path, "learned optimizer")
    try:
        if int(arrays["format_version"]) != FORMAT_VERSION:
            raise ValueError(f"format version {int(arrays['format_version'])}, expected {FORMAT_VERSION}")
        networks = {}
        for name in json.loads(str(arrays["names"])):
            net = CoordinatewiseLSTM(NetworkConfig.from_json(str(arrays[f"{name}/config"])))
            prefix = f"{name}/"
            net.load_state_dict({k[len(prefix):]: v for k, v in arrays.items()
                                 if k.startswith(prefix) and k != f"{name}/config"})
            networks[name] = net
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{os.fspath(path)}: not a valid learned optimizer file: {error}") from None
    if with_extra:
        extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
        return networks, extra
    return networks


class LearnedOptimizer:
    """A trained coordinatewise network used as an optimizer, with the usual surface:

        opt = LearnedOptimizer(model.parameters(), "runs/mnist/optimizer.npz")
        loss.backward(); opt.step(); opt.zero_grad()

    Each step feeds every parameter's gradient, flattened and concatenated per network, through
    that network, and adds the proposed update to the parameter. The LSTM state is carried from
    step to step (`state`); a step builds no graph.

    `networks`: a path to a saved file, a CoordinatewiseLSTM, or a dict of them by name; with
    several networks, `assign` maps parameter positions to network names (others go to the
    first name in sorted order, or to `default`).
    """

    def __init__(self, params, networks, assign=None, default=None):
        if isinstance(networks, (str, os.PathLike)):
            networks = load_networks(networks)
        if isinstance(networks, CoordinatewiseLSTM):
            networks = {"all": networks}
        self.params = list(params)
        if not self.params:
            raise ValueError("LearnedOptimizer: got an empty parameter list")
        self.networks = networks
        default = default or sorted(networks)[0]
        assign = assign or {}
        unknown = set(assign.values()) - set(networks)
        if unknown:
            raise ValueError(f"LearnedOptimizer: assign names networks {sorted(unknown)}, but only "
                             f"{sorted(networks)} exist")
        self.groups = {}
        for i, p in enumerate(self.params):
            self.groups.setdefault(assign.get(i, default), []).append(p)
        self.state = {name: None for name in self.groups}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def reset_state(self):
        """Forget the LSTM state, as at the start of a new optimisation."""
        self.state = {name: None for name in self.groups}

    @mg.no_grad()
    def step(self):
        for name, params in self.groups.items():
            net = self.networks[name]
            grads = [np.zeros(p.shape, p.dtype) if p.grad is None else p.grad for p in params]
            flat = np.concatenate([g.reshape(-1) for g in grads]).astype(net.dtype, copy=False)
            state = self.state[name] or net.initial_state(flat.size)
            update, self.state[name] = net(flat, state)
            offset = 0
            for p in params:
                p.data += update.data[offset:offset + p.size].reshape(p.shape).astype(p.dtype)
                offset += p.size
