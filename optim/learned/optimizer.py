"""The trained network used as an optimizer: theta_{t+1} = theta_t + g_t (paper, eq. 1).

Both ways of running a network, the plain optimizer here (no graph) and the meta-training
trajectory (optim/learned/meta.py, inside the meta-graph), take a step the same way: one
`CoordinateLayout` says which coordinates each network updates (a group of parameter tensors,
flattened and joined into one vector), and `propose` runs every network on its gradient vector.
"""
import hashlib
import os

import numpy as np

import minigrad as mg

from . import pretrained
from ..base import Optimizer
from .network import CoordinatewiseLSTM, load_networks


class CoordinateLayout:
    """Which network updates which coordinates.

    shapes: the shapes of the optimizee's parameter tensors, in order. names: the networks.
    assign: {parameter index: network name}; unlisted parameters go to `default` (the first
    name in sorted order if not given). Each network's parameters, in order, are flattened and
    joined into one vector: `join` makes those vectors, `split` cuts them back.
    """

    def __init__(self, shapes, names, assign=None, default=None):
        names = sorted(names)
        default = default or names[0]
        assign = assign or {}
        unknown = sorted(set(assign.values()) - set(names))
        if unknown:
            raise ValueError(f"assign names networks {unknown}, but only {names} exist")
        if default not in names:
            raise ValueError(f"default network {default!r} is not one of {names}")
        self.n_params = len(shapes)
        self.entries = {}         # name -> [(param index, offset, size, shape)]
        for i, shape in enumerate(shapes):
            entries = self.entries.setdefault(assign.get(i, default), [])
            offset = entries[-1][1] + entries[-1][2] if entries else 0
            entries.append((i, offset, int(np.prod(shape, dtype=np.int64)), tuple(shape)))

    @property
    def names(self):
        """The networks that update some coordinates, in the order of their first parameter."""
        return list(self.entries)

    def size(self, name):
        """The number of coordinates network `name` updates."""
        return sum(size for _, _, size, _ in self.entries[name])

    def initial_states(self, networks):
        """{name: zero LSTM state} for a fresh start of every network."""
        return {name: networks[name].initial_state(self.size(name)) for name in self.names}

    def join(self, arrays):
        """{network name: (n_name,) array} of the per-parameter `arrays`."""
        return {name: np.concatenate([np.reshape(arrays[i], -1) for i, *_ in entries])
                for name, entries in self.entries.items()}

    def split(self, vectors):
        """The per-parameter pieces, in parameter order and shapes, of {name: vector}; the
        vectors may be arrays or tensors (then the pieces are tensors in the same graph)."""
        pieces = [None] * self.n_params
        for name, entries in self.entries.items():
            vector = vectors[name]
            for i, offset, size, shape in entries:
                whole = offset == 0 and size == vector.size
                pieces[i] = (vector if whole else vector[offset:offset + size]).reshape(shape)
        return pieces


def propose(networks, grads, states):
    """One step of every network: its update g_t from its gradient vector (paper, eq. 3).

    grads: {name: (n_name,) array}, cast to the network's dtype, or, for the exact
    meta-gradient, a tensor in the meta-graph of the network's dtype (passed as it is);
    states: {name: its LSTM state}. Returns ({name: (n_name,) update tensor}, {name: new
    state}). In grad mode, within the meta-graph, the updates depend on the networks' weights;
    under no_grad they are constants.
    """
    updates, new_states = {}, {}
    for name, grad in grads.items():
        net = networks[name]
        if not isinstance(grad, mg.Tensor):
            grad = grad.astype(net.dtype, copy=False)
        updates[name], new_states[name] = net(grad, states[name])
    return updates, new_states


def resolve_networks(networks):
    """A dict name -> CoordinatewiseLSTM from a path to a saved file, the name of a shipped
    optimizer ("mnist", "mnist-paper", "quadratic": `pretrained.PRETRAINED`), one network, or
    a dict."""
    if isinstance(networks, (str, os.PathLike)):
        if os.path.isfile(networks):
            return load_networks(networks)
        if os.fspath(networks) not in pretrained.PRETRAINED:
            raise ValueError(f"{os.fspath(networks)!r} is neither a file nor the name of a "
                             f"shipped learned optimizer ({list(pretrained.PRETRAINED)}); give "
                             "one of those names or the path of a file written by "
                             "`learning-to-learn train`")
        return pretrained.load(os.fspath(networks))
    if isinstance(networks, CoordinatewiseLSTM):
        return {"all": networks}
    return networks


def fingerprint(network):
    """sha256 of a network's weights: what tells two networks of one configuration apart."""
    digest = hashlib.sha256()
    for name, array in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class LearnedOptimizer(Optimizer):
    """A trained coordinatewise network used as an optimizer, with torch.optim's surface:

        opt = LearnedOptimizer(model.parameters(), "mnist")
        loss.backward(); opt.step(); opt.zero_grad()

        theta_{t+1} = theta_t + g_t,   [g_t, h_{t+1}] = m(grad_t, h_t; phi)      (eq. 1, 3)

    Each step feeds every parameter's gradient, flattened and joined per network
    (`CoordinateLayout`), through that network (`propose`), and adds the proposed update to
    the parameter. There is no learning rate: the network's weights phi set the step. The
    network's state is carried from step to step, one row per coordinate: `state` is
    {network name: [(h, c) per layer, then (m, v, t) for a network with inputs "moments"]},
    each a (n_coords, .) tensor. A step builds no graph.

    `networks`: the name of a shipped optimizer ("mnist", "mnist-paper", "quadratic"; see
    `pretrained.PRETRAINED`), a path to a file written by `train`, a CoordinatewiseLSTM, or a
    dict of them by name. With several networks, `assign` maps parameter positions (counted
    across the groups, in order) to network names; the others go to `default`, or to the
    first name in sorted order.

    Parameter groups have no hyperparameters; `add_param_group` after construction starts the
    new coordinates at zero state. A parameter whose `.grad` is None is skipped, as in the
    classic optimizers: it does not move and its coordinates' LSTM state does not advance, so
    when it has a gradient again it goes on where it stopped. (Meta-training never meets one:
    there, a parameter the loss does not use gets a zero gradient, which the network answers
    with an update. In the paper's tasks every parameter has a gradient at every step.)

    `state_dict()` / `load_state_dict()` carry the LSTM state and the step count, so a run
    resumes bit-exactly; `reset_state()` starts a new optimisation.
    """

    def __init__(self, params, networks, assign=None, default=None):
        try:
            self.networks = resolve_networks(networks)
        except ValueError as error:
            raise ValueError(f"{self._name}: {error}") from None
        self.assign = dict(assign or {})
        self.default = default
        self.step_count = 0
        super().__init__(params, {})

    def add_param_group(self, param_group):
        """Add parameters (a dict with "params" and no other entry); their coordinates join
        their network's, after those it already updates, at zero LSTM state."""
        super().add_param_group(param_group)
        shapes = [p.shape for p in self._parameters()]
        try:
            self.layout = CoordinateLayout(shapes, self.networks, self.assign, self.default)
        except ValueError as error:
            raise ValueError(f"{self._name}: {error}") from None
        state = self.layout.initial_states(self.networks)
        for name, layers in self.state.items():       # the coordinates there keep their state
            state[name] = [tuple(mg.Tensor(np.pad(a.data, ((0, self.layout.size(name) - len(a)),
                                                           (0, 0))), dtype=a.dtype) for a in pair)
                           for pair in layers]
        self.state = state

    def _check_hyperparameters(self, group):
        extra = sorted(set(group) - {"params"})
        if extra:
            raise ValueError(f"{self._name}: a parameter group takes no hyperparameters (the "
                             f"network sets the step), got {extra}")

    def _parameters(self):
        return [p for group in self.param_groups for p in group["params"]]

    def reset_state(self):
        """Forget the LSTM state and the step count, as at the start of a new optimisation."""
        self.state = self.layout.initial_states(self.networks)
        self.step_count = 0

    def step(self, closure=None):
        """One step of every network on its parameters' gradients. `closure`, if given,
        re-evaluates the model and returns the loss (it runs before the update, in the
        caller's grad mode); its result is returned."""
        loss = closure() if closure is not None else None
        params = self._parameters()
        skipped = [p.grad is None for p in params]
        with mg.no_grad():
            grads = [np.zeros(p.shape, p.dtype) if skip else p.grad
                     for p, skip in zip(params, skipped)]
            updates, state = propose(self.networks, self.layout.join(grads), self.state)
            if any(skipped):
                state = self._keep_rows(state, self.layout.join(
                    [np.full(p.shape, skip) for p, skip in zip(params, skipped)]))
            self.state = state
            pieces = self.layout.split({name: update.data for name, update in updates.items()})
            for p, update, skip in zip(params, pieces, skipped):
                if not skip:
                    p.data += update.astype(p.dtype)
        self.step_count += 1
        return loss

    def _keep_rows(self, new_state, keep):
        """new_state with the rows that `keep` ({name: (n_name,) bool}) marks taken from the
        current state."""
        return {name: [tuple(mg.Tensor(np.where(keep[name][:, None], old.data, new.data),
                                       dtype=new.dtype) for old, new in zip(pair, new_pair))
                       for pair, new_pair in zip(self.state[name], layers)]
                for name, layers in new_state.items()}

    def state_dict(self):
        """The optimizer's state as plain Python and numpy data (copies), ready to be saved:

            {"step": steps taken since the start (or `reset_state`),
             "state": {network name: [(h, c) per layer, then (m, v, t) for inputs
                       "moments"]}, each an (n_name, .) array,
             "networks": {network name: {"config": NetworkConfig as JSON,
                                         "sha256": of its weights (`fingerprint`)}},
             "layout": {network name: [parameter index, ...]},
             "param_shapes": [shape of each parameter],
             "param_groups": [{"params": [parameter index, ...]}]}

        Parameters are named by their position across the groups, as in torch. All but
        "step" and "state" are there to refuse a state from other networks or parameters.
        """
        groups, start = [], 0
        for group in self.param_groups:
            groups.append({"params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {
            "step": self.step_count,
            "state": {name: [tuple(t.data.copy() for t in part) for part in layers]
                      for name, layers in self.state.items()},
            "networks": {name: {"config": net.config.to_json(), "sha256": fingerprint(net)}
                         for name, net in sorted(self.networks.items())},
            "layout": {name: [entry[0] for entry in entries]
                       for name, entries in self.layout.entries.items()},
            "param_shapes": [tuple(p.shape) for p in self._parameters()],
            "param_groups": groups,
        }

    def load_state_dict(self, state_dict):
        """Restore the LSTM state and step count saved by `state_dict` from an optimizer with
        the same networks (configuration and weights) on parameters of the same shapes, in the
        same groups and assignment to networks; ValueError naming what differs otherwise.
        The arrays are copied, so later steps continue exactly where the saved run was."""
        here = self.state_dict()
        where = f"{self._name}.load_state_dict"
        saved_networks, networks = state_dict["networks"], here["networks"]
        if sorted(saved_networks) != sorted(networks):
            raise ValueError(f"{where}: the saved state is for networks {sorted(saved_networks)}, "
                             f"this optimizer has {sorted(networks)}")
        for name in networks:
            for key, what in (("config", "configuration"), ("sha256", "weights")):
                if saved_networks[name][key] != networks[name][key]:
                    raise ValueError(f"{where}: network {name!r} has other {what} than the one "
                                     f"the state was saved from: {networks[name][key]} here, "
                                     f"{saved_networks[name][key]} saved")
        shapes = [tuple(shape) for shape in state_dict["param_shapes"]]
        if len(shapes) != len(here["param_shapes"]):
            raise ValueError(f"{where}: the saved state is for {len(shapes)} parameters, this "
                             f"optimizer has {len(here['param_shapes'])}")
        for i, (saved, shape) in enumerate(zip(shapes, here["param_shapes"])):
            if saved != shape:
                raise ValueError(f"{where}: parameter {i} has shape {shape}, the saved one had "
                                 f"shape {saved}")
        if state_dict["param_groups"] != here["param_groups"]:
            raise ValueError(f"{where}: the parameters are in groups of "
                             f"{[len(g['params']) for g in here['param_groups']]}, the saved "
                             f"ones were in groups of "
                             f"{[len(g['params']) for g in state_dict['param_groups']]}")
        if state_dict["layout"] != here["layout"]:
            raise ValueError(f"{where}: the networks update parameters {here['layout']}, in the "
                             f"saved state {state_dict['layout']}")
        new_state = {}
        for name, layers in here["state"].items():
            saved_layers = state_dict["state"][name]
            new_state[name] = []
            if len(saved_layers) != len(layers) or any(
                    len(pair) != len(saved) for pair, saved in zip(layers, saved_layers)):
                raise ValueError(f"{where}: the state of network {name!r} is made of "
                                 f"{[len(pair) for pair in layers]} arrays per part, the saved "
                                 f"one of {[len(pair) for pair in saved_layers]}")
            for k, (pair, saved_pair) in enumerate(zip(layers, saved_layers)):
                for array, saved in zip(pair, saved_pair):
                    if np.shape(saved) != array.shape:
                        raise ValueError(f"{where}: the state of network {name!r}, layer {k}, "
                                         f"has shape {np.shape(saved)}, expected {array.shape}")
                new_state[name].append(tuple(mg.Tensor(saved, dtype=array.dtype)
                                             for saved in saved_pair))
        self.state = new_state
        self.step_count = int(state_dict["step"])

    def __repr__(self):
        networks = [f"    {name}: {self.layout.size(name)} coordinates, {net.config}"
                    for name, net in sorted(self.networks.items()) if name in self.layout.entries]
        lines = super().__repr__().splitlines()
        return "\n".join(lines[:1] + [f"Step {self.step_count}", "Networks"] + networks
                         + lines[1:])


def learned_losses(networks, problem, theta0, steps, assign=None, after_step=None):
    """f(theta_0), ..., f(theta_steps) of the learned optimizer run on `problem`, as a float
    array, with no meta-graph: the trained networks used as a plain optimizer. Once the loss
    stops being finite, the rest is NaN. `after_step(t)`, if given, is called once theta_t
    is made (t = 1..steps), e.g. to read the networks' state (examples/what_it_learned.py)."""
    params = [mg.Tensor(p, requires_grad=True, dtype=p.dtype) for p in theta0]
    optimizer = LearnedOptimizer(params, networks, assign=assign)
    losses = np.empty(steps + 1)
    for step in range(steps + 1):
        loss = problem.loss(params, step)
        losses[step] = loss.item()
        if step == steps or not np.isfinite(losses[step]):
            losses[step + 1:] = np.nan
            break
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if after_step is not None:
            after_step(step + 1)
    return losses
