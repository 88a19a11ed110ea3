"""The optimizer network m of the paper (section 2.1, "Coordinatewise LSTM optimizer"), and
its file.

One small network is applied to every coordinate of the optimizee, all coordinates as one batch
(rows = coordinates): its weights phi are shared, its LSTM state (h, c) is per coordinate. So a
network trained on 15,910 coordinates runs unchanged on any other number of them.
"""
import json
import os
from dataclasses import asdict, dataclass

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from minigrad.io import prefixed, read_npz, unprefixed, write_npz

from .features import preprocess_gradients

FORMAT_VERSION = 1


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
    """m(grad, state; phi): a stack of LSTM cells and a linear output, applied per coordinate
    (paper, eq. 3: [g_t, h_{t+1}] = m(grad_t, h_t, phi)).

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

    def extra_repr(self):
        config = self.config
        inputs = f"preprocess_p={config.preprocess_p}" if config.preprocess else "preprocess=False"
        forget_bias = f", forget_bias={config.forget_bias}" if config.forget_bias else ""
        return (f"{inputs}{forget_bias}, out_weight={self.out_weight.shape}, "
                f"output_scale={config.output_scale}")


def detach_state(state):
    """The LSTM state cut from the graph (the truncation of truncated BPTT)."""
    return [(h.detach(), c.detach()) for h, c in state]


def save_networks(path, networks, extra=None):
    """Write networks (a dict name -> CoordinatewiseLSTM), their configurations and `extra`
    values to one npz, atomically:

        format_version, names (JSON list), "{name}/config" (JSON), "{name}/{parameter}",
        "extra/{key}"
    """
    arrays = {"format_version": np.array(FORMAT_VERSION),
              "names": np.array(json.dumps(sorted(networks)))}
    for name, net in networks.items():
        arrays[f"{name}/config"] = np.array(net.config.to_json())
        arrays.update(prefixed(name, net.state_dict()))
    arrays.update(prefixed("extra", {k: np.asarray(v) for k, v in (extra or {}).items()}))
    write_npz(path, arrays)


def load_networks(path, with_extra=False):
    """Read what `save_networks` wrote; a file that is not such a file is reported, not half-read."""
    arrays = read_npz(path, "learned optimizer")
    if "format_version" not in arrays and "meta" in arrays:
        raise ValueError(f"{os.fspath(path)}: a meta-training checkpoint, not a learned "
                         f"optimizer file: the optimizer is optimizer.npz, in the same folder")
    try:
        if int(arrays["format_version"]) != FORMAT_VERSION:
            raise ValueError(f"format version {int(arrays['format_version'])}, expected "
                             f"{FORMAT_VERSION}")
        networks = {}
        for name in json.loads(str(arrays["names"])):
            net = CoordinatewiseLSTM(NetworkConfig.from_json(str(arrays[f"{name}/config"])))
            state = unprefixed(arrays, name)
            del state["config"]
            net.load_state_dict(state)
            networks[name] = net
    except KeyError as error:
        raise ValueError(f"{os.fspath(path)}: not a valid learned optimizer file: it has no "
                         f"entry {error}") from None
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{os.fspath(path)}: not a valid learned optimizer file: {error}") from None
    if with_extra:
        return networks, unprefixed(arrays, "extra")
    return networks
