"""The paper's comparison protocol (section 3): the learned optimizer against SGD, RMSprop, Adam
and NAG, each baseline with its learning rate tuned by grid search on validation problems, then
every optimizer run on the same fresh test problems.

The baselines run the pure update rules of `optim.functional` on the problem's parameter
arrays; other hyperparameters stay at their common defaults (NAG: Nesterov momentum 0.9).
"""
from functools import partial

import numpy as np
from tqdm.auto import tqdm

from .. import functional as OF
from .optimizer import learned_losses

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


def tune_learning_rate(name, problems, steps, grid=None, progress=False):
    """The grid learning rate with the lowest mean final loss over `problems` (a list of
    (problem, theta0)), among those at which no run diverged (`diverged`: a loss not finite,
    or the final loss more than 1% above the initial one on the same data). Returns (best lr, {lr: mean
    final loss, or None where some run diverged}).
    """
    grid = learning_rate_grid() if grid is None else grid
    starts = [start_at_end(problem, theta0, steps) for problem, theta0 in problems]
    scores = {}
    for lr in tqdm(grid, desc=f"tuning {name}", leave=False, disable=not progress):
        runs = [baseline_losses(name, lr, problem, theta0, steps) for problem, theta0 in problems]
        scores[float(lr)] = (None if any(diverged(run, start) for run, start in zip(runs, starts))
                             else float(np.mean([run[-1] for run in runs])))
    kept = {lr: score for lr, score in scores.items() if score is not None}
    if not kept:
        raise RuntimeError(f"tuning {name}: every learning rate in the grid diverged on some "
                           f"of the {len(problems)} validation problems")
    return min(kept, key=kept.get), scores


def compare_optimizers(learned, test_problems, steps, learning_rates, assign=None,
                       progress=True):
    """Run each learned optimizer ({name: networks}) and every baseline (at its given learning
    rate) on the same test problems. Returns {name: array (n_tests, steps + 1)} of losses at
    theta_0 ... theta_steps, the learned optimizers first."""
    results = {}
    runs = [(name, None) for name in learned] + [(name, learning_rates[name]) for name in BASELINES]
    for name, lr in runs:
        rows = []
        for problem, theta0 in tqdm(test_problems, desc=f"testing {name}", leave=False,
                                    disable=not progress):
            if lr is None:
                rows.append(learned_losses(learned[name], problem, theta0, steps, assign))
            else:
                rows.append(baseline_losses(name, lr, problem, theta0, steps))
        results[name] = np.array(rows)
    return results


def summarize(losses):
    """Mean and standard error over test problems at each step (NaN where any run diverged)."""
    n = losses.shape[0]
    mean = losses.mean(axis=0)
    stderr = losses.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return mean, stderr
