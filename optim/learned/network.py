"""The optimizer network m of the paper (section 2.1, "Coordinatewise LSTM optimizer"), and
its file.

One small network is applied to every coordinate of the optimizee, all coordinates as one batch
(rows = coordinates): its weights phi are shared, its LSTM state (h, c) is per coordinate. So a
network trained on 15,910 coordinates runs unchanged on any other number of them.
"""
import json
import math
import os
from dataclasses import asdict, dataclass, fields

import numpy as np

import minigrad as mg
import minigrad.functional as F
from minigrad import nn
from minigrad.io import prefixed, read_npz, unprefixed, write_npz

from .features import Moments, preprocess_gradients, preprocess_tensor

FORMAT_VERSION = 1


INPUTS = ("gradient", "moments", "both")


@dataclass(frozen=True)
class NetworkConfig:
    """What defines a network; saved with its weights.

    The defaults are the paper's MNIST setup: two LSTM layers of 20 units, preprocessing with
    p = 10, output scale 0.1. For quadratics the paper uses no preprocessing and scale 1.0.
    The official code's variants: preprocess_p=5, output_scale=0.01, forget_bias=1.0.
    `layers=()` gives a plain linear network g = w * grad + b (the exact check of
    docs/paper.md), and `zero_init` starts every weight at zero. dtype float64 is for
    gradient checks.

    Beyond the paper (docs/optimizers.md, "The improved learned optimizer"):
    inputs: "gradient", the paper's (the gradient, preprocessed or not); "moments", the
        scale-free moments of `features.Moments` (first moments at `betas`, second at beta2);
        or "both", the moments and then the paper's preprocessed gradient, whose log-magnitude
        tells the network the scale the moments hide.
    output: "update", the paper's g = output_scale * (w h + b), or "adam", a nominal Adam step
        that the network rescales and corrects, both bounded:
            g = -lr * (exp(lr_range * tanh(a)) * d + tanh(b)),   (a, b) = W h + w0
        where d = m_hat / (sqrt(v_hat) + eps) is Adam's direction (the first moment at
        beta 0.9, which `betas` must hold). With zero output weights (the start) it is Adam
        at learning rate lr; the network can scale that step by exp(+-lr_range) per
        coordinate and add up to lr of its own. d needs the moments (with 0.9 among `betas`),
        which are then kept whatever the inputs.
    """

    layers: tuple = (20, 20)
    preprocess: bool = True
    preprocess_p: float = 10.0
    output_scale: float = 0.1
    forget_bias: float = 0.0
    zero_init: bool = False
    seed: int = 0
    dtype: str = "float32"
    inputs: str = "gradient"
    output: str = "update"
    betas: tuple = (0.5, 0.9, 0.99)
    beta2: float = 0.999
    lr: float = 0.01
    lr_range: float = math.log(10)

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"NetworkConfig: inputs must be one of {INPUTS}, got "
                             f"{self.inputs!r}")
        if self.output not in ("update", "adam"):
            raise ValueError(f"NetworkConfig: output must be 'update' or 'adam', got "
                             f"{self.output!r}")
        if self.output == "adam" and 0.9 not in self.betas:
            raise ValueError("NetworkConfig: output 'adam' needs 0.9 among the betas (Adam's "
                             f"direction), got betas {self.betas}")

    @property
    def moments(self):
        """The `features.Moments` the network keeps, for inputs "moments" or output "adam"
        (None for the paper's network)."""
        if self.inputs == "gradient" and self.output != "adam":
            return None
        return Moments(self.betas, self.beta2, dtype=self.dtype)

    @property
    def input_size(self):
        gradient = 2 if self.preprocess else 1
        return {"gradient": gradient, "moments": len(self.betas) + 1,
                "both": len(self.betas) + 1 + gradient}[self.inputs]

    @property
    def output_size(self):
        return 2 if self.output == "adam" else 1

    def to_json(self):
        """The configuration as JSON. The options beyond the paper are written only where they
        differ from their defaults, so a paper network's file is the same as before they
        existed."""
        values = asdict(self)
        for field in fields(self)[fields(self).index(_FIRST_OPTION):]:
            if values[field.name] == field.default:
                del values[field.name]
        return json.dumps(values)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        for name in ("layers", "betas"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


_FIRST_OPTION = next(f for f in fields(NetworkConfig) if f.name == "inputs")


class CoordinatewiseLSTM(nn.Module):
    """m(grad, state; phi): a stack of LSTM cells and a linear output, applied per coordinate
    (paper, eq. 3: [g_t, h_{t+1}] = m(grad_t, h_t, phi)).

    Parameters (phi): for each layer k, `cells[k].weight` (in_k + H_k, 4 H_k) and `.bias`
    (4 H_k,), gates ordered input, forget, cell, output; then `out_weight` (H_last, 1) and
    `out_bias` (1,) ((H_last, 2) and (2,) for output "adam"). With no layers, the output is
    linear in the (preprocessed) gradient.

    The state is a list of tuples of (n_coords, .) tensors: (h, c) for each layer, then, for
    inputs "moments" or output "adam", the moments (m, v, t) (they depend on the gradients
    only: constants, unless the gradients are tensors in the meta-graph).
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
        out_shape = (width, config.output_size)
        self.out_weight = nn.Parameter(rng.uniform(-0.1, 0.1, out_shape) / np.sqrt(width),
                                       dtype=self.dtype)
        self.out_bias = nn.Parameter(np.zeros(config.output_size), dtype=self.dtype)
        if config.output == "adam":           # start as Adam: the learned terms at zero
            self.out_weight.data[...] = 0
        if config.zero_init:
            for p in self.parameters():
                p.data[...] = 0
        self.moments = config.moments

    def initial_state(self, n_coords):
        """Zero (h, c) for each layer, pairs of (n_coords, H) tensors; then, if the network
        keeps moments, zero moments (m, v, t)."""
        state = [(mg.Tensor(np.zeros((n_coords, cell.hidden_size)), dtype=self.dtype),) * 2
                 for cell in self.cells]
        if self.moments is not None:
            state.append(tuple(mg.Tensor(a, dtype=self.dtype)
                               for a in self.moments.initial(n_coords)))
        return state

    def forward(self, grad, state):
        """grad: (n,) gradient coordinates, an array (a constant: first order, section 2) or a
        tensor of the network's dtype in the meta-graph (the exact meta-gradient,
        MetaConfig.second_order), whose inputs are then computed in Tensor ops so that the
        meta-gradient also flows through grad. state: from `initial_state` or the previous
        call. Returns (update (n,) tensor, state)."""
        out, moment_inputs, new_state = self.head(grad, state)
        return self.update_of(out, moment_inputs), new_state

    def head(self, grad, state):
        """The network up to its output layer: (out (n, output_size) tensor, the moment
        inputs (n, len(betas) + 1) (None without moments), the new state), for `forward`'s
        arguments. `update_of` turns out into the update; examples/what_it_learned.py reads
        out itself."""
        config = self.config
        new_state = []
        in_graph = isinstance(grad, mg.Tensor)
        if self.moments is not None and in_graph:
            moment_inputs, moments = self.moments.step_tensor(grad, state[-1])
            moments = [moments]
        elif self.moments is not None:
            moment_inputs, moments = self.moments.step(grad, [a.data for a in state[-1]])
            moments = [tuple(mg.Tensor(a, dtype=self.dtype) for a in moments)]
        if config.inputs == "moments":
            x = moment_inputs
        elif config.preprocess:
            preprocess = preprocess_tensor if in_graph else preprocess_gradients
            x = preprocess(grad, config.preprocess_p)
        else:
            x = grad.reshape(-1, 1)
        if config.inputs == "both":
            x = (F.concat if in_graph else np.concatenate)([moment_inputs, x], axis=1)
        if not in_graph:
            x = mg.Tensor(x, dtype=self.dtype)
        for cell, (h, c) in zip(self.cells, state):
            h, c = F.lstm_cell(x, h, c, cell.weight, cell.bias)
            new_state.append((h, c))
            x = h
        out = F.linear(x, self.out_weight, self.out_bias)
        if self.moments is not None:
            new_state += moments
        else:
            moment_inputs = None
        return out, moment_inputs, new_state

    def update_of(self, out, moment_inputs):
        """The update (n,) tensor that the output `out` of `head` proposes."""
        config = self.config
        if config.output == "adam":
            scale, correction = self.adam_terms(out)
            direction = moment_inputs[:, config.betas.index(0.9)]
            return (scale * direction + correction) * -config.lr
        return (out * config.output_scale).reshape(-1)

    def adam_terms(self, out):
        """For output "adam", the two terms of the update that the output `out` = (a, b) of
        `head` makes: the factor exp(lr_range tanh a) on Adam's step and the correction
        tanh b, both (n,) tensors."""
        if self.config.output != "adam":
            raise ValueError(f"adam_terms: the network's output is {self.config.output!r}; "
                             f"only output 'adam' has a scale and a correction")
        return (out[:, 0].tanh() * self.config.lr_range).exp(), out[:, 1].tanh()

    def extra_repr(self):
        config = self.config
        inputs = f"preprocess_p={config.preprocess_p}" if config.preprocess else "preprocess=False"
        forget_bias = f", forget_bias={config.forget_bias}" if config.forget_bias else ""
        if config.inputs != "gradient":
            moments = f"moments(betas={config.betas}, beta2={config.beta2})"
            inputs = moments if config.inputs == "moments" else f"{moments}, {inputs}"
        output = (f"adam(lr={config.lr}, lr_range={config.lr_range:.3g})"
                  if config.output == "adam" else f"output_scale={config.output_scale}")
        return f"{inputs}{forget_bias}, out_weight={self.out_weight.shape}, {output}"


def detach_state(state):
    """The network's state cut from the graph (the truncation of truncated BPTT)."""
    return [tuple(t.detach() for t in part) for part in state]


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
