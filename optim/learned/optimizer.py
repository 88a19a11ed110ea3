"""The trained network used as an optimizer: theta_{t+1} = theta_t + g_t (paper, eq. 1).

Both ways of running a network, the plain optimizer here (no graph) and the meta-training
trajectory (optim/learned/meta.py, inside the meta-graph), take a step the same way: one
`CoordinateLayout` says which coordinates each network updates (a group of parameter tensors,
flattened and joined into one vector), and `propose` runs every network on its gradient vector.
"""
import os

import numpy as np

import minigrad as mg

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

    grads: {name: (n_name,) array}, cast to the network's dtype; states: {name: its LSTM state}.
    Returns ({name: (n_name,) update tensor}, {name: new state}). In grad mode, within the
    meta-graph, the updates depend on the networks' weights; under no_grad they are constants.
    """
    updates, new_states = {}, {}
    for name, grad in grads.items():
        net = networks[name]
        updates[name], new_states[name] = net(grad.astype(net.dtype, copy=False), states[name])
    return updates, new_states


def resolve_networks(networks):
    """A dict name -> CoordinatewiseLSTM from a path to a saved file, one network, or a dict."""
    if isinstance(networks, (str, os.PathLike)):
        return load_networks(networks)
    if isinstance(networks, CoordinatewiseLSTM):
        return {"all": networks}
    return networks


class LearnedOptimizer:
    """A trained coordinatewise network used as an optimizer, with the usual surface:

        opt = LearnedOptimizer(model.parameters(), "runs/mnist/optimizer.npz")
        loss.backward(); opt.step(); opt.zero_grad()

    Each step feeds every parameter's gradient, flattened and joined per network
    (`CoordinateLayout`), through that network (`propose`), and adds the proposed update to
    the parameter. The LSTM state is carried from step to step (`state`); a step builds no
    graph.

    `networks`: a path to a saved file, a CoordinatewiseLSTM, or a dict of them by name; with
    several networks, `assign` maps parameter positions to network names (others go to the
    first name in sorted order, or to `default`).
    """

    def __init__(self, params, networks, assign=None, default=None):
        self.networks = resolve_networks(networks)
        self.params = list(params)
        if not self.params:
            raise ValueError("LearnedOptimizer: got an empty parameter list")
        try:
            self.layout = CoordinateLayout([p.shape for p in self.params], self.networks,
                                           assign, default)
        except ValueError as error:
            raise ValueError(f"LearnedOptimizer: {error}") from None
        self.reset_state()

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def reset_state(self):
        """Forget the LSTM state, as at the start of a new optimisation."""
        self.state = self.layout.initial_states(self.networks)

    @mg.no_grad()
    def step(self):
        grads = [np.zeros(p.shape, p.dtype) if p.grad is None else p.grad for p in self.params]
        updates, self.state = propose(self.networks, self.layout.join(grads), self.state)
        pieces = self.layout.split({name: update.data for name, update in updates.items()})
        for p, update in zip(self.params, pieces):
            p.data += update.astype(p.dtype)


def learned_losses(networks, problem, theta0, steps, assign=None):
    """f(theta_0), ..., f(theta_steps) of the learned optimizer run on `problem`, as a float
    array, with no meta-graph: the trained networks used as a plain optimizer. Once the loss
    stops being finite, the rest is NaN."""
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
    return losses
