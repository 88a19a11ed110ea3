"""Meta-training: learning the optimizer's weights phi by gradient descent (paper, section 2,
and section 3's protocol: early stopping on validation problems).

One epoch is one trajectory: a fresh problem f from the family, theta_0 from the problem, zero
LSTM state, then `steps` optimizer steps taken `unroll` at a time (truncated backpropagation
through time). Within an unroll,

    grad_t = grad f(theta_t)            read with minigrad.grad: a constant, so no second
                                        derivatives are ever taken (first order, section 2)
    g_t, state = m(grad_t, state; phi)
    theta_{t+1} = theta_t + g_t
    L(phi) = sum_t f(theta_{t+1})       w_t = 1 for every t (eq. 2)

and after it, one meta-update of phi (Adam) from dL/dphi. The meta-gradient flows from each
f(theta_t) back through theta_t to every earlier update g_s and through the LSTM state, within
the unroll; theta and the state are carried to the next unroll detached.

Summing f(theta_0) as well (the official code does) changes the reported value but not the
meta-gradient: theta_0 of an unroll never depends on phi once detached.

Options beyond the paper (MetaConfig): several problems side by side per trajectory, a running
average of phi for validation and saving, and validation past the training horizon.
"""
import contextlib
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
from .network import CoordinatewiseLSTM, detach_state, save_networks
from .evaluation import run
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
    """

    def __init__(self, problem, networks, theta0, assign=None, default=None):
        self.problem = problem
        self.step = 0
        self.layout = CoordinateLayout([p.shape for p in theta0], networks, assign, default)
        self.theta = {name: mg.Tensor(flat, requires_grad=True, dtype=theta0[0].dtype)
                      for name, flat in self.layout.join(theta0).items()}
        self.state = self.layout.initial_states(networks)
        self.loss, self.grad = self.evaluate()

    def params(self):
        return self.layout.split(self.theta)

    def evaluate(self):
        """f(theta) at the current step, and its gradient per network as constant arrays."""
        loss = self.problem.loss(self.params(), self.step)
        names = list(self.theta)
        grads = mg.grad(loss, [self.theta[n] for n in names])
        return loss, dict(zip(names, grads))

    def advance(self, networks):
        """One optimizer step: theta += m(grad f(theta)); returns f at the new theta (a tensor in
        the meta-graph)."""
        updates, self.state = propose(networks, self.grad, self.state)
        self.theta = {name: theta + updates[name] for name, theta in self.theta.items()}
        self.step += 1
        self.loss, self.grad = self.evaluate()
        return self.loss

    def detach(self):
        """Cut the meta-graph here (the truncation of truncated BPTT)."""
        self.theta = {name: mg.Tensor(t.data, requires_grad=True, dtype=t.dtype)
                      for name, t in self.theta.items()}
        self.state = {name: detach_state(s) for name, s in self.state.items()}


def unroll(networks, trajectory, length):
    """Advance `trajectory` by `length` steps; return the meta-loss sum_t f(theta_t) (a tensor)."""
    meta_loss = trajectory.advance(networks)
    for _ in range(length - 1):
        meta_loss = meta_loss + trajectory.advance(networks)
    return meta_loss


def config_differences(saved, current):
    """"name: saved -> current" for every setting that differs between two MetaConfig dicts
    (a saved one read back from JSON, and the current one), joined by "; "."""
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
    max_failures: a run stops after this many non-finite meta-updates in a row.
    """

    steps: int = 100
    unroll: int = 20
    epochs: int = 100
    meta_lr: float = 1e-3
    final_meta_lr: float = None
    clip_norm: float = None
    problems_per_update: int = 1
    average: float = None
    validate_every: int = 10
    validation_problems: int = 8
    validate_on: str = "meta-loss"
    validation_steps: int = None
    max_failures: int = 10
    seed: int = 0

    def check(self):
        """Raise ValueError naming the first setting out of its range."""
        def require(ok, message):
            if not ok:
                raise ValueError(f"MetaConfig: {message}")

        for name in ("steps", "unroll", "epochs", "problems_per_update", "validate_every",
                     "validation_problems", "max_failures"):
            value, least = getattr(self, name), 0 if name == "validation_problems" else 1
            require(isinstance(value, int), f"{name} must be an integer, got {value!r}")
            require(value >= least, f"{name} must be at least {least}, got {value!r}")
        require(self.steps % self.unroll == 0,
                f"steps ({self.steps}) must be a multiple of unroll ({self.unroll})")
        for name in ("meta_lr", "final_meta_lr", "clip_norm"):
            value = getattr(self, name)
            require((value is None and name != "meta_lr") or (value is not None and value > 0),
                    f"{name} must be positive, got {value!r}")
        require(self.average is None or 0 <= self.average < 1,
                f"average is a decay in [0, 1), got {self.average}")
        require(self.validate_on in ("meta-loss", "late"),
                f"validate_on must be 'meta-loss' or 'late', got {self.validate_on!r}")
        require(self.validation_steps is None or self.validation_steps >= self.steps,
                f"validation_steps ({self.validation_steps}) must be at least steps "
                f"({self.steps})")
        require(isinstance(self.seed, int) and self.seed >= 0,
                f"seed must be a non-negative integer, got {self.seed!r}")


class MetaTrainer:
    """Trains networks on a family of problems; checkpoints and resumes.

        trainer = MetaTrainer({"all": CoordinatewiseLSTM(config)}, family, MetaConfig(...),
                              out_dir="runs/quadratic")
        trainer.fit()          # writes out_dir/optimizer.npz (the best) and checkpoint.npz

    Validation runs its problems on `runner` (a parallel.Runner; default: in this process),
    sent to its workers as `validation_refs` (problem_sets.ProblemRefs to the same problems
    as validation_family draws) when it has several.

    The checkpoint is written at every validation and, between them, after the first epoch
    that ends `checkpoint_every` seconds or more after the last write; on Ctrl-C, the state
    after the last whole epoch is written before `MetaTrainingInterrupted` is raised. So an
    interrupt loses at most the epoch in progress, and a kill about `checkpoint_every`
    seconds of work. A resumed run (`fit(resume=True)`) continues exactly as if it had not
    stopped.
    """

    def __init__(self, networks, family, config=MetaConfig(), out_dir=None, assign=None,
                 validation_family=None, progress=True, checkpoint_every=60.0, runner=None,
                 validation_refs=None):
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
        self.best = None          # (validation figure, epoch, state dicts)

    # ----- one trajectory -----
    def train_trajectory(self, problem, theta0, assign=None):
        """Meta-train on one trajectory; returns the meta-loss of each unroll (floats)."""
        config = self.config
        trajectory = Trajectory(problem, self.networks, theta0,
                                self.assign if assign is None else assign)
        unroll_losses = []
        for _ in range(config.steps // config.unroll):
            meta_loss = unroll(self.networks, trajectory, config.unroll)
            value = meta_loss.item()
            unroll_losses.append(value)
            if not np.isfinite(value):
                self._skip(f"meta-loss is {value}")
                break          # theta is no longer finite: this trajectory is lost
            for p in self.params:
                p.grad = None
            meta_loss.backward()
            grads = [p.grad if p.grad is not None else np.zeros_like(p.data) for p in self.params]
            norm = global_norm(grads)
            if not np.isfinite(norm):
                self._skip(f"meta-gradient norm is {norm}")
                trajectory.detach()
                continue
            if config.clip_norm is not None and norm > config.clip_norm:
                for g in grads:
                    g *= config.clip_norm / norm
            self.meta_optimizer.step()
            if self.averaged is not None:
                for average, p in zip(self.averaged, self.params):
                    average *= config.average
                    average += (1 - config.average) * p.data
            self.failures = 0
            trajectory.detach()
        return unroll_losses

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
        """The validation figure (MetaConfig.validate_on) of the current networks, frozen: by
        default the mean over the validation problems of sum_t f(theta_t), t = 1..steps (the
        meta-loss of a whole trajectory)."""
        config = self.config
        horizon = config.validation_steps or config.steps
        problems = self.validation_set
        if self.runner is not None and self.runner.parallel and self.validation_refs:
            problems = self.validation_refs          # the same problems, sent by reference
        jobs = [(problem, horizon, ("learned", self.networks, self.assign))
                for problem in problems]
        figures = []
        for losses in (self.runner or Runner()).map(run, jobs, progress=False):
            if config.validate_on == "late":
                figures.append(losses[config.steps:].mean())
            else:
                figures.append(losses[1:config.steps + 1].sum())
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
                self._train_epoch(epochs)
                bar.update(1)
                validated = self.epoch % self.config.validate_every == 0 or self.epoch == epochs
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

    def _train_epoch(self, epochs):
        """One trajectory on fresh problems, and its entry in the history."""
        self._set_meta_lr(epochs)
        pairs = draw_problems(self.family, self.rng, self.config.problems_per_update)
        if len(pairs) == 1:
            (problem, theta0), = pairs
            losses = self.train_trajectory(problem, theta0)
        else:
            problem = JointProblem([p for p, _ in pairs])
            theta0 = [array for _, arrays in pairs for array in arrays]
            losses = self.train_trajectory(problem, theta0, problem.assign(self.assign))
        self.epoch += 1
        self.history.append((self.epoch, float(np.sum(losses)) / self.config.steps))

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
            if record["best"] is not None:
                snapshot = {name: unprefixed(arrays, f"best/{name}") for name in self.networks}
                self.best = (record["best"][0], record["best"][1], snapshot)
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: not a usable meta-training checkpoint for this run: {error}") from None

