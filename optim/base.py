"""What every optimizer class shares: parameter groups, per-parameter state, `step`,
`zero_grad`, `state_dict` and the checks on parameters and hyperparameters.

A subclass names its hyperparameters (their defaults), checks them, and names its update
rule: the factory in `optim.functional` that binds a group's hyperparameters into a pure
init/update pair (how one parameter's state starts, and how one step changes it). The surface
is torch.optim's:

    opt = Adam(model.parameters(), lr=1e-3)
    loss.backward(); opt.step(); opt.zero_grad()
"""
import copy
import numbers

import numpy as np

from minigrad import Tensor, no_grad


class Optimizer:
    """Base class. `params` is an iterable of tensors, or of dicts (parameter groups), each
    with a "params" entry and any hyperparameters that override the defaults for that group.

    Attributes:
        param_groups: list of dicts, each {"params": [tensors], hyperparameter: value, ...}.
        state: dict from parameter tensor to its state dict (the `optim.functional` state),
            filled at the parameter's first step.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        if isinstance(params, Tensor):
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or of dicts, "
                            "got a single Tensor; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self):
        return type(self).__name__

    def add_param_group(self, param_group):
        """Add a group of parameters with its own hyperparameters (missing ones take the
        defaults given to the constructor)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a parameter group must be a dict, "
                            f"got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError(f"{self._name}: a parameter group needs a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{self._name}: got an empty parameter list")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: parameter {i} is a {type(p).__name__}, "
                                "not a Tensor")
            if p.dtype.kind != "f":
                raise ValueError(f"{self._name}: parameter {i} has dtype {p.dtype}; only "
                                 "floating-point parameters can be optimized")
            if id(p) in known:
                raise ValueError(f"{self._name}: parameter {i} (shape {p.shape}) appears more "
                                 "than once in the parameters; list each parameter once")
            known.add(id(p))
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    @staticmethod
    def rule(**hyperparameters):
        """The `optim.functional` factory: a group's hyperparameters -> its UpdateRule."""
        raise NotImplementedError

    def _check_hyperparameters(self, group):
        """Raise ValueError naming the hyperparameter and its value if one is out of range."""
        raise NotImplementedError

    def zero_grad(self):
        """Set every parameter's `.grad` to None (torch's default, `set_to_none=True`)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        """Update every parameter that has a gradient; those whose `.grad` is None are skipped.

        The update runs on raw arrays under `no_grad` and writes into `p.data` in place, so it
        records no graph and leaves `.grad` as it was. `closure`, if given, re-evaluates the
        model and returns the loss (it runs before the update, in the caller's grad mode);
        its result is returned.
        """
        loss = closure() if closure is not None else None
        with no_grad():
            for group in self.param_groups:
                rule = self.rule(**{name: group[name] for name in self.defaults})
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.get(p)
                    if state is None:
                        state = rule.init(p.data)
                    new_param, self.state[p] = rule.update(p.grad, p.data, state)
                    p.data[...] = new_param
        return loss

    def state_dict(self):
        """The optimizer's state as plain Python and numpy data (copies), ready to be saved.

        Parameters are named by their position across the groups, as in torch:
        {"state": {index: {"step": int, buffer name: array}},
         "param_groups": [{hyperparameter: value, ..., "params": [index, ...]}]}
        """
        index = {}
        groups = []
        for group in self.param_groups:
            saved = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            saved["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                saved["params"].append(index[id(p)])
            groups.append(saved)
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by `state_dict` from an optimizer built on
        parameters of the same shapes, in the same group structure. Arrays are copied and
        cast to each parameter's dtype, so later steps continue exactly where the saved run was."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}.load_state_dict: the saved state has "
                             f"{len(saved_groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        params = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(f"{self._name}.load_state_dict: parameter group {i} has "
                                 f"{len(group['params'])} parameters, the saved one has "
                                 f"{len(saved['params'])}")
            params.extend(group["params"])
        new_state = {}
        for index, saved_state in state_dict["state"].items():
            p = params[int(index)]
            new_state[p] = {}
            for key, value in saved_state.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.shape:
                        raise ValueError(f"{self._name}.load_state_dict: state[{key!r}] of "
                                         f"parameter {index} has shape {value.shape}, the "
                                         f"parameter has shape {p.shape}")
                    value = value.astype(p.dtype, copy=True)
                else:
                    value = copy.deepcopy(value)
                new_state[p][key] = value
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new_group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new_group["params"] = group["params"]
            self._check_hyperparameters(new_group)
            new_groups.append(new_group)
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self):
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join(lines + [")"])


def check_range(optimizer, name, value, low, high=None, *, high_inclusive=False):
    """Raise ValueError unless `low <= value` and `value < high` (or `<=` if high_inclusive).

    The message names the optimizer, the argument and its value: "Adam: invalid betas[1]=1.0,
    expected 0 <= betas[1] < 1".
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{optimizer}: invalid {name}={value!r}, expected a real number")
    upper = "" if high is None else f" {'<=' if high_inclusive else '<'} {high:g}"
    ok = low <= value and (high is None or (value <= high if high_inclusive else value < high))
    if not ok:
        raise ValueError(f"{optimizer}: invalid {name}={value!r}, expected "
                         f"{low:g} <= {name}{upper}")
