"""The paper's comparison protocol (section 3): the learned optimizer against SGD, RMSprop, Adam
and NAG, each baseline with its learning rate tuned by grid search on validation problems, then
every optimizer run on the same fresh test problems.

The baselines run the pure update rules of `optim.functional` on the problem's parameter
arrays; other hyperparameters stay at their common defaults (NAG: Nesterov momentum 0.9).

Problems are given as (problem, theta_0) pairs, or as `problem_sets.ProblemRef`s, which a
`parallel.Runner` with several workers can send to them; every run is independent, so the
results are the same whatever runs them.
"""
from functools import partial

import numpy as np

from .. import functional as OF
from .optimizer import learned_losses
from .parallel import Runner

BASELINES = {         # name -> (learning rate -> update rule)
    "SGD": OF.sgd,
    "RMSprop": OF.rmsprop,
    "Adam": OF.adam,
    "NAG": partial(OF.sgd, momentum=0.9, nesterov=True),
}


def learning_rate_grid(low=1e-4, high=10.0, per_decade=3):
    """Log-spaced learning rates from `low` to `high`, `per_decade` points per factor of ten."""
    decades = np.log10(high) - np.log10(low)
    return 10.0 ** np.linspace(np.log10(low), np.log10(high), int(round(decades * per_decade)) + 1)


def baseline_losses(name, lr, problem, theta0, steps):
    """f(theta_0), ..., f(theta_steps) of baseline `name` at learning rate `lr`; once the loss
    stops being finite, the rest is NaN."""
    rule = BASELINES[name](lr)
    params = [p.copy() for p in theta0]
    states = [rule.init(p) for p in params]
    losses = np.full(steps + 1, np.nan)
    with np.errstate(all="ignore"):
        for step in range(steps + 1):
            loss, grads = problem.loss_and_grad(params, step)
            losses[step] = loss
            if step == steps or not np.isfinite(loss):
                break
            for i, (g, p, s) in enumerate(zip(grads, params, states)):
                params[i], states[i] = rule.update(g, p, s)
    return losses


def start_at_end(problem, theta0, steps):
    """f(theta_0) on the data of step `steps`: where a run of `steps` steps started, measured
    as its end is (on minibatch problems, the same minibatch)."""
    with np.errstate(all="ignore"):
        return problem.loss_and_grad([p.copy() for p in theta0], steps)[0]


DIVERGENCE_TOLERANCE = 0.01     # relative: minibatch noise on a plateau is not divergence


def diverged(losses, start=None):
    """Whether a run diverged: some loss is not finite, or the last is more than 1%
    (DIVERGENCE_TOLERANCE) above `start`, where it started on the data of the last step
    (`start_at_end`; default: the first loss)."""
    losses = np.asarray(losses)
    start = losses[0] if start is None else start
    return bool(not np.all(np.isfinite(losses))
                or losses[-1] > start + DIVERGENCE_TOLERANCE * abs(start))


def pair_of(problem):
    """(problem, theta_0) of a pair or a ProblemRef."""
    return problem if isinstance(problem, tuple) else problem.pair()


def run(job):
    """The losses f(theta_0..theta_steps) of one run: job = (problem, steps, optimizer), the
    problem a (problem, theta_0) pair or a ProblemRef, the optimizer ("baseline", name, lr) or
    ("learned", networks, assign)."""
    problem, steps, optimizer = job
    problem, theta0 = pair_of(problem)
    if optimizer[0] == "baseline":
        _, name, lr = optimizer
        return baseline_losses(name, lr, problem, theta0, steps)
    _, networks, assign = optimizer
    return learned_losses(networks, problem, theta0, steps, assign)


def tune_learning_rates(names, problems, steps, grid=None, progress=False, runner=None):
    """For each baseline in `names`, the grid learning rate with the lowest mean final loss over
    `problems`, among those at which no run diverged (`diverged`: a loss not finite, or the
    final loss more than 1% above the initial one on the same data). Returns {name: (best lr,
    {lr: mean final loss, or None where some run diverged})}. Every run goes to `runner` at
    once (default: this process)."""
    grid = learning_rate_grid() if grid is None else grid
    starts = [start_at_end(*pair_of(problem), steps) for problem in problems]
    keys = [(name, float(lr)) for name in names for lr in grid]
    jobs = [(problem, steps, ("baseline", name, lr)) for name, lr in keys for problem in problems]
    finals = iter((runner or Runner()).map(run, jobs, desc="tuning", progress=progress))
    tuned = {}
    for name, lr in keys:
        runs = [next(finals) for _ in problems]
        scores = tuned.setdefault(name, {})
        scores[lr] = (None if any(diverged(r, start) for r, start in zip(runs, starts))
                      else float(np.mean([r[-1] for r in runs])))
    result = {}
    for name, scores in tuned.items():
        kept = {lr: score for lr, score in scores.items() if score is not None}
        if not kept:
            raise RuntimeError(f"tuning {name}: every learning rate in the grid diverged on "
                               f"some of the {len(problems)} validation problems")
        result[name] = (min(kept, key=kept.get), scores)
    return result


def tune_learning_rate(name, problems, steps, grid=None, progress=False, runner=None):
    """`tune_learning_rates` for one baseline: (best lr, {lr: mean final loss or None})."""
    return tune_learning_rates([name], problems, steps, grid, progress, runner)[name]


def compare_optimizers(learned, test_problems, steps, learning_rates, assign=None,
                       progress=True, runner=None):
    """Run each learned optimizer ({name: networks}) and every baseline (at its given learning
    rate) on the same test problems (pairs or ProblemRefs). Returns {name: array (n_tests,
    steps + 1)} of losses at theta_0 ... theta_steps, the learned optimizers first."""
    optimizers = {name: ("learned", networks, assign) for name, networks in learned.items()}
    optimizers.update((name, ("baseline", name, learning_rates[name])) for name in BASELINES)
    jobs = [(problem, steps, optimizer) for optimizer in optimizers.values()
            for problem in test_problems]
    rows = (runner or Runner()).map(run, jobs, desc="testing", progress=progress)
    n = len(test_problems)
    return {name: np.array(rows[i * n:(i + 1) * n]) for i, name in enumerate(optimizers)}


def summarize(losses):
    """Mean and standard error over test problems at each step (NaN where any run diverged)."""
    n = losses.shape[0]
    mean = losses.mean(axis=0)
    stderr = losses.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return mean, stderr
