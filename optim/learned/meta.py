"""Meta-training: learning the optimizer's weights phi by gradient descent (paper, section 2,
and section 3's protocol: early stopping on validation problems).

One epoch is one trajectory: a fresh problem f from the family, theta_0 from the problem, zero
LSTM state, then `steps` optimizer steps taken `unroll` at a time (truncated backpropagation
through time). Within an unroll,

    grad_t = grad f(theta_t)            read with minigrad.grad: a constant, so no second
                                        derivatives are taken (first order, section 2; but
                                        see the exact meta-gradient below)
    g_t, state = m(grad_t, state; phi)
    theta_{t+1} = theta_t + g_t
    L(phi) = sum_t f(theta_{t+1})       w_t = 1 for every t (eq. 2)

and after it, one meta-update of phi (Adam) from dL/dphi. The meta-gradient flows from each
f(theta_t) back through theta_t to every earlier update g_s and through the LSTM state, within
the unroll; theta and the state are carried to the next unroll detached.

Summing f(theta_0) as well (the official code does) changes the reported value but not the
meta-gradient: theta_0 of an unroll never depends on phi once detached.

The exact meta-gradient (MetaConfig.second_order, not the paper's): grad_t is read with
minigrad.grad(..., create_graph=True) and fed to the network as a tensor, so the meta-gradient
also flows from grad_t back through theta_t (the Hessian of f times d theta_t / d phi); the
network then computes its inputs in Tensor ops (`features.preprocess_tensor`,
`Moments.step_tensor`). Within an unroll nothing is dropped; the truncation stays.

Options beyond the paper (MetaConfig): several problems side by side per trajectory, a running
average of phi for validation and saving, validation past the training horizon, the log
meta-objective, random scaling of the optimizee, and a curriculum over trajectory lengths.
"""
import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

import minigrad as mg
from minigrad.io import prefixed, read_checkpoint, unprefixed, write_checkpoint
from models.problems import JointProblem, draw_problems

from ..classic import Adam
from .network import CoordinatewiseLSTM, NetworkConfig, detach_state, save_networks
from .evaluation import pair_of, run
from .optimizer import CoordinateLayout, propose
from .parallel import Runner


class MetaTrainingError(RuntimeError):
    """Meta-training cannot go on (for instance: every update in a row was not finite)."""


class MetaTrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during `MetaTrainer.fit`, after the checkpoint of the last whole epoch was
    written: `checkpoint` (its path, or None without an out_dir) and `epoch` say where a
    resumed run starts."""

    def __init__(self, checkpoint, epoch):
        super().__init__(checkpoint, epoch)
        self.checkpoint, self.epoch = checkpoint, epoch


class Trajectory:
    """theta, the gradient at theta, and the LSTM state of one optimisation run in progress,
    inside the meta-graph.

    Each network updates its own parameters, flattened and joined into one vector by a
    `CoordinateLayout`, and steps by `propose`, as in the plain `LearnedOptimizer`:
    theta[name] is a (n_name,) tensor and state[name] the network's (h, c) per layer.
    `params()` gives the problem its parameter tensors back in its own order and shapes.
    grad[name] is an array, a constant, except with `second_order` after a step in the
    meta-graph (`advance`), where it is a tensor in the meta-graph (the exact meta-gradient).
    """

    def __init__(self, problem, networks, theta0, assign=None, default=None, carry=None,
                 second_order=False):
        self.problem = problem
        self.second_order = second_order
        if second_order:
            check_second_order(networks, theta0)
        self.layout = CoordinateLayout([p.shape for p in theta0], networks, assign, default)
        if carry is not None:                # go on where `carry()` left another copy
            self.step, theta, state, self.grad = carry
            self.theta = {name: mg.Tensor(a, requires_grad=True, dtype=a.dtype)
                          for name, a in theta.items()}
            self.state = {name: [tuple(mg.Tensor(a, dtype=a.dtype) for a in part)
                                 for part in parts] for name, parts in state.items()}
            self.loss = None
            return
        self.step = 0
        self.theta = {name: mg.Tensor(flat, requires_grad=True, dtype=theta0[0].dtype)
                      for name, flat in self.layout.join(theta0).items()}
        self.state = self.layout.initial_states(networks)
        self.loss, self.grad = self.evaluate()

    def carry(self):
        """(step, theta, state, gradient) as arrays: what a Trajectory built with `carry=` in
        another process needs to go on exactly as this one would (after `detach`)."""
        return (self.step, {name: t.data for name, t in self.theta.items()},
                {name: [tuple(t.data for t in part) for part in parts]
                 for name, parts in self.state.items()}, self.grad)

    def params(self):
        return self.layout.split(self.theta)

    def evaluate(self, in_graph=False):
        """f(theta) at the current step, and its gradient per network: constant arrays, or,
        `in_graph`, tensors that keep the graph of their computation from theta."""
        loss = self.problem.loss(self.params(), self.step)
        names = list(self.theta)
        grads = mg.grad(loss, [self.theta[n] for n in names], create_graph=in_graph)
        return loss, dict(zip(names, grads))

    def advance(self, networks):
        """One optimizer step: theta += m(grad f(theta)); returns f at the new theta (a tensor in
        the meta-graph). With second_order, the new gradient stays in the meta-graph."""
        updates, self.state = propose(networks, self.grad, self.state)
        self.theta = {name: theta + updates[name] for name, theta in self.theta.items()}
        self.step += 1
        self.loss, self.grad = self.evaluate(in_graph=self.second_order)
        return self.loss

    def coast(self, networks, length):
        """Advance `length` steps with the networks' weights as constants, building no
        meta-graph (for an unroll the meta-loss does not weigh); returns f at each new theta."""
        losses = []
        for _ in range(length):
            with mg.no_grad():
                updates, self.state = propose(networks, self.grad, self.state)
            self.theta = {name: mg.Tensor(theta.data + updates[name].data, requires_grad=True,
                                          dtype=theta.dtype)
                          for name, theta in self.theta.items()}
            self.step += 1
            self.loss, self.grad = self.evaluate()
            losses.append(self.loss.item())
        return losses

    def detach(self):
        """Cut the meta-graph here (the truncation of truncated BPTT)."""
        self.theta = {name: mg.Tensor(t.data, requires_grad=True, dtype=t.dtype)
                      for name, t in self.theta.items()}
        self.state = {name: detach_state(s) for name, s in self.state.items()}
        self.grad = {name: g.data if isinstance(g, mg.Tensor) else g
                     for name, g in self.grad.items()}


def check_second_order(networks, theta0):
    """Raise ValueError unless every network has the optimizee's dtype: the exact
    meta-gradient feeds the gradient to the networks inside the meta-graph, and the engine has
    no differentiable cast between dtypes."""
    dtypes = {np.dtype(a.dtype) for a in theta0}
    other = {name: str(net.dtype) for name, net in networks.items()
             if {net.dtype} != dtypes}
    if other:
        raise ValueError(f"MetaConfig.second_order: the optimizee's parameters are "
                         f"{sorted(map(str, dtypes))} and networks {other}; the exact "
                         f"meta-gradient needs the networks in the optimizee's dtype (the "
                         f"gradient enters them inside the meta-graph, where nothing casts it)")


_networks_here = {}      # network configurations (JSON) -> networks, built once per process


def unroll_job(job):
    """One unroll of one of the trajectories of a meta-update (MetaConfig.trajectories_per_update),
    in whatever process runs it. job = (weights {name: state dict}, configs {name: NetworkConfig
    JSON}, assign, problem (a ProblemRef or a (problem, theta_0) pair), scale (None, or (spread,
    seed) for `random_scales`), (length, trajectory length), objective, second_order, carry
    (None at the start)). Returns (meta-loss, meta-gradient arrays in the order of
    MetaTrainer.params, carry); (0.0, None, carry) for an unroll the objective does not weigh
    (run without a graph); (meta-loss, None, None) when the loss is no longer finite."""
    weights, configs, assign, problem, scale, (length, total), objective, second_order, carry = job
    key = json.dumps(configs, sort_keys=True)
    if key not in _networks_here:
        _networks_here[key] = {name: CoordinatewiseLSTM(NetworkConfig.from_json(config))
                               for name, config in configs.items()}
    networks = _networks_here[key]
    for name, net in networks.items():
        net.load_state_dict(weights[name])
    problem, theta0 = pair_of(problem)
    if scale is not None:
        problem = ScaledProblem(problem, random_scales(np.random.default_rng(scale[1]), theta0,
                                                       scale[0]))
        theta0 = problem.start(theta0)
    trajectory = Trajectory(problem, networks, theta0, assign, carry=carry,
                            second_order=second_order)
    if not weighs(objective, trajectory.step, length, total):
        losses = trajectory.coast(networks, length)
        if not np.all(np.isfinite(losses)):
            return float("nan"), None, None
        return 0.0, None, trajectory.carry()
    meta_loss = unroll(networks, trajectory, length, objective, total)
    value = meta_loss.item()
    if not np.isfinite(value):
        return value, None, None
    params = [p for name in sorted(networks) for p in networks[name].parameters()]
    for p in params:
        p.grad = None
    meta_loss.backward()
    grads = [p.grad if p.grad is not None else np.zeros_like(p.data) for p in params]
    trajectory.detach()
    return value, grads, trajectory.carry()


VALIDATION_FIGURES = ("meta-loss", "late", "log", "final", "horizons")
OBJECTIVES = {   # name -> (what of f(theta_t) is summed, its weight w_t at step t of T)
    "sum": (lambda loss: loss, lambda t, T: 1),            # the paper's (eq. 2, w_t = 1)
    "log": (lambda loss: loss.log(), lambda t, T: 1),      # Wichrowska et al. 2017
    "log-ramp": (lambda loss: loss.log(), lambda t, T: t / T),
    "log-last": (lambda loss: loss.log(), lambda t, T: float(10 * t > 9 * T)),
    "log-horizons": (lambda loss: loss.log(), lambda t, T: horizon_weight(t, T)),
}
HORIZONS = (100, 200, 500, 1000, 2000, 5000, 10000)


def horizon_weight(t, total):
    """The weight of step t in a trajectory of `total` steps under "log-horizons": 1 / (h / 10)
    if t is in the last tenth of a horizon h of HORIZONS (or of `total`) that the trajectory
    reaches, else 0; so each horizon's last tenth adds up to the mean log loss there."""
    horizons = [h for h in HORIZONS if h < total] + [total]
    return sum(10 / h for h in horizons if 10 * t > 9 * h and t <= h)


def weighs(objective, start, length, total):
    """Whether the meta-loss weighs any of steps start + 1 .. start + length of a trajectory of
    `total` steps (an unroll it does not weigh has no meta-gradient)."""
    weight = OBJECTIVES[objective][1]
    return any(weight(t, total) for t in range(start + 1, start + length + 1))


def unroll(networks, trajectory, length, objective="sum", total=None):
    """Advance `trajectory` by `length` steps; return the meta-loss (a tensor), sum_t w_t
    term(f(theta_t)) (`OBJECTIVES`; `total`, the trajectory's length T, defaults to where
    this unroll ends)."""
    term, weight = OBJECTIVES[objective]
    total = total or trajectory.step + length
    meta_loss = None
    for _ in range(length):
        loss = trajectory.advance(networks)
        w = weight(trajectory.step, total)
        value = term(loss) if w == 1 else term(loss) * w
        meta_loss = value if meta_loss is None else meta_loss + value
    return meta_loss


class ScaledProblem:
    """f(c * theta) for a fixed scale c per coordinate (Lv et al. 2017, "random scaling"):
    the same function seen through other units. The optimizer's gradients are c * grad f and
    the step that is right for it changes with c, so an optimizer meta-trained on such problems
    cannot rely on the gradient scales of one family. scales: one array per parameter."""

    def __init__(self, problem, scales):
        self.problem, self.scales = problem, scales
        self.param_shapes = problem.param_shapes
        self.name = f"{problem.name}, randomly scaled"

    def loss(self, params, step=0):
        return self.problem.loss([p * c for p, c in zip(params, self.scales)], step)

    def start(self, theta0):
        """theta_0 / c: the start of the original problem, in the scaled coordinates."""
        return [p / c for p, c in zip(theta0, self.scales)]


def random_scales(rng, theta0, spread):
    """c = exp(u), u ~ U(-spread, spread) per coordinate, one array per parameter of theta0."""
    return [np.exp(rng.uniform(-spread, spread, p.shape)).astype(p.dtype) for p in theta0]


def config_differences(saved, current):
    """"name: saved -> current" for every setting that differs between two MetaConfig dicts
    (a saved one read back from JSON, and the current one, compared as JSON: tuples are
    lists there), joined by "; ". A setting the saved dict lacks (one added since it was
    written) counts at its default."""
    saved = {**json.loads(json.dumps(asdict(MetaConfig()))), **saved}
    current = json.loads(json.dumps(current))
    names = sorted(set(saved) | set(current))
    return "; ".join(f"{name}: {saved.get(name)!r} in the checkpoint, {current.get(name)!r} now"
                     for name in names if saved.get(name) != current.get(name))


def global_norm(arrays):
    return math.sqrt(sum(float(np.vdot(a, a)) for a in arrays))


@dataclass
class MetaConfig:
    """Meta-training settings; the defaults are the paper's (100 steps unrolled 20 at a time).

    epochs: trajectories to train on, each on a fresh problem.
    meta_lr: Adam's learning rate on phi (the paper searched it; the official code: 1e-3).
    final_meta_lr: if set, the learning rate decays log-linearly from meta_lr at the first epoch
        to final_meta_lr at the last (not in the paper: with a budget of a few hundred epochs
        instead of the official 10,000, annealing reaches a better optimizer sooner).
    clip_norm: if set, rescale the meta-gradient to at most this global norm (not in the paper;
        Wichrowska et al. 2017 found it helps).
    problems_per_update: K problems optimised side by side in each trajectory as one, their
        losses averaged (JointProblem), so each meta-update draws on K fresh problems instead of
        one; each problem's gradient is then 1/K of what it would be alone.
    trajectories_per_update: K trajectories, each on its own problem, whose meta-gradients are
        averaged for each meta-update (`unroll_job`): the same as a JointProblem for the "sum"
        objective except that each network sees its own problem's gradient whole, and the K
        unrolls run on the trainer's runner, one per worker, with the same numbers whatever
        runs them. (problems_per_update must then be 1.)
    average: if set, Polyak averaging (not in the paper): validation and the saved network use an
        exponential moving average of phi with this decay per meta-update, which smooths out the
        meta-update noise.
    validate_every: epochs between validations on `validation_problems` held-out problems; the
        best network by the validation figure is the one kept (the paper's early stopping).
    validate_on: the validation figure, a mean over the validation problems of
        "meta-loss": sum_t f(theta_t) for t = 1..steps (the paper's), or
        "late": the mean of f(theta_t) for t = steps..validation_steps (how well the optimizer
        goes on after the horizon it was trained for).
    validation_steps: how far validation runs each problem (default: steps).
    validate_on "log": the mean over steps 1..validation_steps of log f(theta_t); "final": the
        mean of log f(theta_t) over the last tenth of them (where a run ends up).
    objective: the meta-loss of an unroll, "sum" of f(theta_t) (the paper's); "log", the sum
        of log f(theta_t) (Wichrowska et al. 2017): each step counts by its relative progress,
        so the large early losses do not drown the late ones, which long horizons need; or
        "log-ramp", the sum of (t / T) log f(theta_t) over a trajectory of T steps: the later a
        step, the more it counts, towards where the run ends.
    second_order: the exact meta-gradient (not the paper's): the optimizee's gradient grad_t
        stays in the meta-graph (minigrad.grad with create_graph), so the meta-gradient also
        flows through its dependence on phi, which the paper drops (d grad_t / d phi = 0,
        section 2). Costs second derivatives of f; the networks must have the optimizee's
        dtype. False (the paper's first order) by default.
    random_scale: if set, each meta-training problem is seen through random units
        (`ScaledProblem`): f(c * theta), c = exp(U(-random_scale, random_scale)) per coordinate.
    curriculum: if set, ((steps, epochs), ...): meta-training in stages of longer and longer
        trajectories (Chen et al. 2020). Stage k trains `epochs` trajectories of `steps` steps
        and validates on the next stage's length (the last stage on validation_steps, or its
        own); each stage starts by validating the network it was given and ends by restoring
        the best one it saw, which the next stage starts from. `steps` must be the first
        stage's length and `epochs` the sum of the stages'.
    max_failures: a run stops after this many non-finite meta-updates in a row.
    """

    steps: int = 100
    unroll: int = 20
    epochs: int = 100
    meta_lr: float = 1e-3
    final_meta_lr: float = None
    clip_norm: float = None
    problems_per_update: int = 1
    trajectories_per_update: int = 1
    average: float = None
    validate_every: int = 10
    validation_problems: int = 8
    validate_on: str = "meta-loss"
    validation_steps: int = None
    objective: str = "sum"
    second_order: bool = False
    random_scale: float = None
    curriculum: tuple = None
    max_failures: int = 10
    seed: int = 0

    def check(self):
        """Raise ValueError naming the first setting out of its range."""
        def require(ok, message):
            if not ok:
                raise ValueError(f"MetaConfig: {message}")

        for name in ("steps", "unroll", "epochs", "problems_per_update",
                     "trajectories_per_update", "validate_every", "validation_problems",
                     "max_failures"):
            value, least = getattr(self, name), 0 if name == "validation_problems" else 1
            require(isinstance(value, int), f"{name} must be an integer, got {value!r}")
            require(value >= least, f"{name} must be at least {least}, got {value!r}")
        require(self.problems_per_update == 1 or self.trajectories_per_update == 1,
                f"problems_per_update ({self.problems_per_update}) and trajectories_per_update "
                f"({self.trajectories_per_update}) cannot both be above 1")
        require(self.steps % self.unroll == 0,
                f"steps ({self.steps}) must be a multiple of unroll ({self.unroll})")
        for name in ("meta_lr", "final_meta_lr", "clip_norm"):
            value = getattr(self, name)
            require((value is None and name != "meta_lr") or (value is not None and value > 0),
                    f"{name} must be positive, got {value!r}")
        require(self.average is None or 0 <= self.average < 1,
                f"average is a decay in [0, 1), got {self.average}")
        require(self.validate_on in VALIDATION_FIGURES,
                f"validate_on must be one of {VALIDATION_FIGURES}, got {self.validate_on!r}")
        require(self.objective in OBJECTIVES,
                f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        require(isinstance(self.second_order, bool),
                f"second_order must be True or False, got {self.second_order!r}")
        require(self.random_scale is None or self.random_scale > 0,
                f"random_scale must be positive, got {self.random_scale!r}")
        if self.curriculum is not None:
            stages = self.curriculum
            require(len(stages) >= 1 and all(
                len(stage) == 2 and all(isinstance(n, int) and n >= 1 for n in stage)
                for stage in stages), f"curriculum must be ((steps, epochs), ...) of positive "
                                      f"integers, got {stages!r}")
            lengths = [steps for steps, _ in stages]
            require(lengths == sorted(set(lengths)),
                    f"the curriculum's lengths must increase, got {lengths}")
            require(all(n % self.unroll == 0 for n in lengths),
                    f"the curriculum's lengths {lengths} must be multiples of unroll "
                    f"({self.unroll})")
            require(self.steps == lengths[0] and self.epochs == sum(e for _, e in stages),
                    f"with a curriculum, steps must be its first length ({lengths[0]}) and "
                    f"epochs its total ({sum(e for _, e in stages)}); got steps {self.steps}, "
                    f"epochs {self.epochs}")
        last = self.curriculum[-1][0] if self.curriculum else self.steps
        require(self.validation_steps is None or self.validation_steps >= last,
                f"validation_steps ({self.validation_steps}) must be at least the training "
                f"length ({last})")
        require(isinstance(self.seed, int) and self.seed >= 0,
                f"seed must be a non-negative integer, got {self.seed!r}")

    def stages(self):
        """[(first epoch, last epoch, steps, validation steps)] of each stage: one without a
        curriculum."""
        if self.curriculum is None:
            return [(1, self.epochs, self.steps, self.validation_steps or self.steps)]
        result, first = [], 1
        lengths = [steps for steps, _ in self.curriculum]
        for k, (steps, epochs) in enumerate(self.curriculum):
            following = lengths[k + 1] if k + 1 < len(lengths) else (self.validation_steps
                                                                     or steps)
            result.append((first, first + epochs - 1, steps, following))
            first += epochs
        return result

    def stage(self, epoch):
        """(index, (first, last, steps, validation steps)) of the stage that trains `epoch`
        (counted from 1)."""
        for index, stage in enumerate(self.stages()):
            if epoch <= stage[1]:
                return index, stage
        return index, stage


class MetaTrainer:
    """Trains networks on a family of problems; checkpoints and resumes.

        trainer = MetaTrainer({"all": CoordinatewiseLSTM(config)}, family, MetaConfig(...),
                              out_dir="runs/quadratic")
        trainer.fit()          # writes out_dir/optimizer.npz (the best) and checkpoint.npz

    Validation runs its problems on `runner` (a parallel.Runner; default: in this process),
    sent to its workers as `validation_refs` (problem_sets.ProblemRefs to the same problems
    as validation_family draws) when it has several. So do the unrolls of several
    trajectories per meta-update (MetaConfig.trajectories_per_update), on the problems
    `training_refs(epoch)` (a list of ProblemRefs) names for each epoch.

    The checkpoint is written at every validation and, between them, after the first epoch
    that ends `checkpoint_every` seconds or more after the last write; on Ctrl-C, the state
    after the last whole epoch is written before `MetaTrainingInterrupted` is raised. So an
    interrupt loses at most the epoch in progress, and a kill about `checkpoint_every`
    seconds of work. A resumed run (`fit(resume=True)`) continues exactly as if it had not
    stopped.
    """

    def __init__(self, networks, family, config=MetaConfig(), out_dir=None, assign=None,
                 validation_family=None, progress=True, checkpoint_every=60.0, runner=None,
                 validation_refs=None, training_refs=None):
        config.check()
        self.networks = networks
        self.family = family
        self.validation_family = validation_family or family
        self.config = config
        self.out_dir = out_dir
        self.assign = assign
        self.progress = progress
        self.checkpoint_every = checkpoint_every
        self.runner = runner
        self.validation_refs = validation_refs
        self.training_refs = training_refs
        self.params = [p for name in sorted(networks) for p in networks[name].parameters()]
        self.meta_optimizer = Adam(self.params, lr=config.meta_lr)
        self.averaged = None if config.average is None else [p.data.copy() for p in self.params]
        self.rng = np.random.default_rng(config.seed)
        validation_rng = np.random.default_rng([config.seed, 1])
        self.validation_set = draw_problems(self.validation_family, validation_rng,
                                            config.validation_problems)
        self.epoch = 0
        self.failures = 0
        self.skipped = 0
        self.history = []         # (epoch, mean meta-loss per step of the epoch's trajectory)
        self.validation = []      # (epoch, validation figure)
        self.best = None          # (validation figure, epoch, state dicts), in this stage
        self.stage_index = None   # the curriculum's stage that has started (`best` is its)

    # ----- one trajectory -----
    def train_trajectory(self, problem, theta0, assign=None, steps=None):
        """Meta-train on one trajectory of `steps` steps (default: config.steps); returns the
        meta-loss of each unroll (floats)."""
        config = self.config
        trajectory = Trajectory(problem, self.networks, theta0,
                                self.assign if assign is None else assign,
                                second_order=config.second_order)
        unroll_losses = []
        total = steps or config.steps
        for _ in range(total // config.unroll):
            if not weighs(config.objective, trajectory.step, config.unroll, total):
                losses = trajectory.coast(self.networks, config.unroll)
                unroll_losses.append(0.0 if np.all(np.isfinite(losses)) else float("nan"))
                if not np.isfinite(unroll_losses[-1]):
                    self._skip("the loss is not finite")
                    break
                continue
            meta_loss = unroll(self.networks, trajectory, config.unroll, config.objective, total)
            value = meta_loss.item()
            unroll_losses.append(value)
            if not np.isfinite(value):
                self._skip(f"meta-loss is {value}")
                break          # theta is no longer finite: this trajectory is lost
            for p in self.params:
                p.grad = None
            meta_loss.backward()
            self._meta_step([p.grad if p.grad is not None else np.zeros_like(p.data)
                             for p in self.params])
            trajectory.detach()
        return unroll_losses

    def train_side_by_side(self, problems, steps=None):
        """Meta-train on len(problems) trajectories at once (MetaConfig.trajectories_per_update),
        one per problem (ProblemRefs, or (problem, theta_0) pairs when they run here), each
        meta-update from the mean of their meta-gradients. Each unroll of each trajectory is an
        `unroll_job` on the runner; the mean is taken in the order of `problems`, so the result
        does not depend on where they ran. A trajectory whose meta-loss stops being finite is
        dropped. Returns the mean meta-loss of each unroll (floats)."""
        config = self.config
        configs = {name: net.config.to_json() for name, net in self.networks.items()}
        scales = [None if config.random_scale is None
                  else (config.random_scale, [config.seed, 4, self.epoch, k])
                  for k in range(len(problems))]
        carries = [None] * len(problems)
        running = list(range(len(problems)))
        unroll_losses = []
        total = steps or config.steps
        for u in range(total // config.unroll):
            weighed = weighs(config.objective, u * config.unroll, config.unroll, total)
            weights = {name: net.state_dict() for name, net in self.networks.items()}
            jobs = [(weights, configs, self.assign, problems[k], scales[k],
                     (config.unroll, total), config.objective, config.second_order, carries[k])
                    for k in running]
            results = (self.runner or Runner()).map(unroll_job, jobs, progress=False)
            summed, values = None, []
            for k, (value, grads, carry) in zip(list(running), results):
                if carry is None:
                    running.remove(k)          # theta is no longer finite: this one is lost
                    continue
                carries[k] = carry
                if weighed:
                    values.append(value)
                    summed = grads if summed is None else [a + b for a, b in zip(summed, grads)]
            if not running:
                unroll_losses.append(float("nan"))
                self._skip("every trajectory's loss is no longer finite")
                break
            if not weighed:
                unroll_losses.append(0.0)
                continue
            unroll_losses.append(float(np.mean(values)))
            for p, g in zip(self.params, summed):
                p.grad = g / len(values)
            self._meta_step([p.grad for p in self.params])
        return unroll_losses

    def _meta_step(self, grads):
        """One meta-update of phi from the meta-gradient `grads` (the arrays in p.grad, where
        set): skipped if its norm is not finite, clipped to clip_norm, then Adam, then the
        running average."""
        config = self.config
        norm = global_norm(grads)
        if not np.isfinite(norm):
            self._skip(f"meta-gradient norm is {norm}")
            return
        if config.clip_norm is not None and norm > config.clip_norm:
            for g in grads:
                g *= config.clip_norm / norm
        self.meta_optimizer.step()
        if self.averaged is not None:
            for average, p in zip(self.averaged, self.params):
                average *= config.average
                average += (1 - config.average) * p.data
        self.failures = 0

    def _skip(self, reason):
        self.failures += 1
        self.skipped += 1
        for p in self.params:
            p.grad = None
        tqdm.write(f"epoch {self.epoch}: meta-update skipped: {reason}")
        if self.failures >= self.config.max_failures:
            raise MetaTrainingError(
                f"{self.failures} meta-updates in a row were not finite (last: {reason}); lower "
                "the meta learning rate or set a gradient clipping norm (clip_norm)")

    # ----- validation -----
    def validate(self):
        """The validation figure (MetaConfig.validate_on) of the current networks, frozen, a
        mean over the validation problems: by default of sum_t f(theta_t), t = 1..steps (the
        meta-loss of a whole trajectory); with a curriculum, steps is the current stage's
        validation length."""
        config = self.config
        _, _, steps, horizon = config.stages()[self.stage_index or 0]
        if config.curriculum is not None:
            steps = horizon
        problems = self.validation_set
        if self.runner is not None and self.runner.parallel and self.validation_refs:
            problems = self.validation_refs          # the same problems, sent by reference
        jobs = [(problem, horizon, ("learned", self.networks, self.assign))
                for problem in problems]
        figures = []
        for losses in (self.runner or Runner()).map(run, jobs, progress=False):
            if config.validate_on == "late":
                figures.append(losses[steps:].mean())
            elif config.validate_on == "log":
                figures.append(np.log(losses[1:]).mean())
            elif config.validate_on == "final":
                figures.append(np.log(losses[-max(1, horizon // 10):]).mean())
            elif config.validate_on == "horizons":
                figures.append(np.mean([np.log(losses[h - max(1, h // 10) + 1:h + 1]).mean()
                                        for h in [*(h for h in HORIZONS if h < horizon),
                                                  horizon]]))
            else:
                figures.append(losses[1:steps + 1].sum())
        return float(np.mean(figures)) if np.all(np.isfinite(figures)) else float("inf")

    @contextlib.contextmanager
    def _averaged_weights(self):
        """Inside, the networks hold the averaged weights (MetaConfig.average), if any."""
        if self.averaged is None:
            yield
            return
        current = [p.data for p in self.params]
        for p, average in zip(self.params, self.averaged):
            p.data = average.copy()
        try:
            yield
        finally:
            for p, data in zip(self.params, current):
                p.data = data

    def _set_meta_lr(self, epochs):
        config = self.config
        lr = config.meta_lr
        if config.final_meta_lr is not None and epochs > 1:
            lr *= (config.final_meta_lr / config.meta_lr) ** (self.epoch / (epochs - 1))
        for group in self.meta_optimizer.param_groups:
            group["lr"] = lr

    def _snapshot(self):
        return {name: net.state_dict() for name, net in self.networks.items()}

    # ----- the loop -----
    def fit(self, epochs=None, resume=False):
        """Meta-train for `epochs` (default: config.epochs) in all; with `resume`, continue from
        out_dir/checkpoint.npz if it exists. Returns the best validation figure."""
        epochs = self.config.epochs if epochs is None else epochs
        if resume and self.out_dir and os.path.exists(self.checkpoint_path):
            self.load_checkpoint(self.checkpoint_path)
        bar = tqdm(total=epochs, initial=self.epoch, desc="meta-training", unit="epoch",
                   disable=not self.progress, dynamic_ncols=True)
        last_write = time.monotonic()
        resume_point = self._checkpoint_contents() if self.out_dir else None
        try:
            while self.epoch < epochs:
                started = self._start_stage()
                if started and self.out_dir:
                    write_checkpoint(self.checkpoint_path, *self._checkpoint_contents())
                self._train_epoch(epochs)
                bar.update(1)
                _, (_, last, _, _) = self.config.stage(self.epoch)
                validated = (self.epoch % self.config.validate_every == 0
                             or self.epoch in (epochs, last))
                if validated:
                    self._validate_and_keep_best()
                if self.out_dir:
                    resume_point = self._checkpoint_contents()
                    if validated or time.monotonic() - last_write >= self.checkpoint_every:
                        write_checkpoint(self.checkpoint_path, *resume_point)
                        last_write = time.monotonic()
                bar.set_postfix(meta_loss=f"{self.history[-1][1]:.4g}",
                                val=f"{self.validation[-1][1]:.4g}" if self.validation else "-",
                                best=f"{self.best[0]:.4g}@{self.best[1]}" if self.best else "-")
        except KeyboardInterrupt:
            bar.close()
            if resume_point is None:
                raise MetaTrainingInterrupted(None, self.epoch) from None
            write_checkpoint(self.checkpoint_path, *resume_point)
            raise MetaTrainingInterrupted(self.checkpoint_path,
                                          resume_point[0]["epoch"]) from None
        bar.close()
        return self.best[0] if self.best else None

    def _start_stage(self):
        """With a curriculum, at the first epoch of a stage: restore the previous stage's best
        network, and validate it at this stage's validation length (the first figure of the
        stage). Returns whether a stage started."""
        config = self.config
        if config.curriculum is None:
            return False
        index, _ = config.stage(self.epoch + 1)
        if index == self.stage_index:
            return False
        if self.best is not None:
            for name, net in self.networks.items():
                net.load_state_dict(self.best[2][name])
            if self.averaged is not None:
                self.averaged = [p.data.copy() for p in self.params]
        self.stage_index, self.best = index, None
        self._validate_and_keep_best()
        return True

    def _train_epoch(self, epochs):
        """One trajectory on fresh problems, and its entry in the history."""
        config = self.config
        self._set_meta_lr(epochs)
        _, (_, _, steps, _) = config.stage(self.epoch + 1)
        if config.trajectories_per_update > 1:
            losses = self.train_side_by_side(self._side_by_side_problems(), steps)
            self.epoch += 1
            self.history.append((self.epoch, float(np.sum(losses)) / steps))
            return
        pairs = draw_problems(self.family, self.rng, config.problems_per_update)
        if config.random_scale is not None:
            pairs = [(ScaledProblem(problem, scales), ScaledProblem(problem, scales).start(theta0))
                     for problem, theta0 in pairs
                     for scales in [random_scales(self.rng, theta0, config.random_scale)]]
        if len(pairs) == 1:
            (problem, theta0), = pairs
            losses = self.train_trajectory(problem, theta0, steps=steps)
        else:
            problem = JointProblem([p for p, _ in pairs])
            theta0 = [array for _, arrays in pairs for array in arrays]
            losses = self.train_trajectory(problem, theta0, problem.assign(self.assign), steps)
        self.epoch += 1
        self.history.append((self.epoch, float(np.sum(losses)) / steps))

    def _side_by_side_problems(self):
        """This epoch's problems for `train_side_by_side`: `training_refs(epoch)` if the trainer
        was given it, else pairs drawn here from the family (these cannot go to workers)."""
        if self.training_refs is not None:
            return self.training_refs(self.epoch)
        if self.runner is not None and self.runner.parallel:
            raise ValueError("MetaTrainer: trajectories_per_update on several workers needs "
                             "training_refs (problems the workers can rebuild)")
        return draw_problems(self.family, self.rng, self.config.trajectories_per_update)

    def _validate_and_keep_best(self):
        with self._averaged_weights():
            figure = self.validate()
            snapshot = self._snapshot()
        self.validation.append((self.epoch, figure))
        if self.best is None or figure < self.best[0]:
            self.best = (figure, self.epoch, snapshot)
            if self.out_dir:
                self.save_best(os.path.join(self.out_dir, "optimizer.npz"))

    def best_networks(self):
        """Networks holding the best weights seen by validation (the current ones if none)."""
        if self.best is None:
            return self.networks
        networks = {name: CoordinatewiseLSTM(net.config) for name, net in self.networks.items()}
        for name, net in networks.items():
            net.load_state_dict(self.best[2][name])
        return networks

    def save_best(self, path):
        save_networks(path, self.best_networks(),
                      extra={"validation": self.best[0], "epoch": self.best[1]})

    # ----- checkpoints -----
    @property
    def checkpoint_path(self):
        return os.path.join(self.out_dir, "checkpoint.npz")

    def save_checkpoint(self, path):
        """Everything needed to resume exactly: weights, meta-Adam state, the problem stream's
        random state, the best weights so far and the history (`minigrad.io`'s checkpoint
        format). Written atomically."""
        write_checkpoint(path, *self._checkpoint_contents())

    def _checkpoint_contents(self):
        """(record, arrays, optimizer states) of the checkpoint as of now, as copies."""
        arrays = {}
        for name, net in self.networks.items():
            arrays.update(prefixed(f"net/{name}", net.state_dict()))
        if self.best is not None:
            for name, state in self.best[2].items():
                arrays.update(prefixed(f"best/{name}", state))
        arrays.update(prefixed("average", {i: a.copy() for i, a in enumerate(self.averaged or ())}))
        record = {
            "config": asdict(self.config),
            "epoch": self.epoch, "failures": self.failures, "skipped": self.skipped,
            "history": list(self.history), "validation": list(self.validation),
            "best": None if self.best is None else [self.best[0], self.best[1]],
            "stage": self.stage_index,
            "rng": self.rng.bit_generator.state,
            "networks": {name: net.config.to_json() for name, net in self.networks.items()},
        }
        return record, arrays, {"adam": self.meta_optimizer.state_dict()}

    def load_checkpoint(self, path):
        arrays, record, optimizers = read_checkpoint(path, "meta-training checkpoint", ["adam"])
        try:
            saved_networks = record["networks"]
            current = {name: net.config.to_json() for name, net in self.networks.items()}
            if saved_networks != current:
                raise ValueError(f"it holds networks {saved_networks}, this run has {current}")
            differences = config_differences(record["config"], asdict(self.config))
            if differences:
                raise ValueError(f"it was written with other settings ({differences})")
            for name, net in self.networks.items():
                net.load_state_dict(unprefixed(arrays, f"net/{name}"))
            self.meta_optimizer.load_state_dict(optimizers["adam"])
            self.epoch = record["epoch"]
            self.failures, self.skipped = record["failures"], record["skipped"]
            self.history = [tuple(h) for h in record["history"]]
            self.validation = [tuple(v) for v in record["validation"]]
            self.rng.bit_generator.state = record["rng"]
            if self.averaged is not None:
                average = unprefixed(arrays, "average")
                self.averaged = [np.array(average[str(i)], dtype=p.data.dtype)
                                 for i, p in enumerate(self.params)]
            self.stage_index = record.get("stage")
            if record["best"] is not None:
                snapshot = {name: unprefixed(arrays, f"best/{name}") for name in self.networks}
                self.best = (record["best"][0], record["best"][1], snapshot)
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: not a usable meta-training checkpoint for this run: {error}") from None

