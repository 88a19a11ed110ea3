"""The paper's experiments (section 3) as functions: `train` meta-trains an optimizer on a task
(section 2) with one of its recipes, `compare` tests learned optimizers against the tuned
baselines, `reproduce` does both with the task's settings. The command line
(optim/learned/cli.py) is a thin front over these.
"""
import contextlib
import os
import time
from dataclasses import replace

import numpy as np

from minigrad.cli import UsageError, output_folder
from models.data import DatasetError
from models.problems import draw_problems

from . import pretrained
from .evaluation import (BASELINES, compare_optimizers, learning_rate_grid, start_at_end,
                         tune_learning_rates)
from .meta import MetaTrainer
from .network import CoordinatewiseLSTM, load_networks
from .parallel import Runner
from .problem_sets import ProblemRef, ProblemSet, clear_caches, family_of
from .report import build_report, write_report
from .runs import comparison_folder, training_folder
from .tasks import TASKS

PURPOSES = {"tune": 1, "test": 2}
TEST_SPLITS = ("test", "train")      # "validation" is what the baselines are tuned on
META_OVERRIDES = ("epochs", "meta_lr", "problems_per_update", "average", "objective",
                  "second_order", "validate_on", "validation_steps")


def problem_set(family, count, seed, purpose):
    """`count` (problem, theta_0) pairs from a stream of their own: the same seed and purpose
    ("tune" or "test") give the same problems; different purposes never share one."""
    return draw_problems(family, np.random.default_rng([seed, PURPOSES[purpose]]), count)


def problem_source(task, split, count, seed, purpose, data_dir=None):
    """The same problems as `problem_set(TASKS[task].make_family(split), ...)`, as a
    ProblemSet that workers can rebuild."""
    return ProblemSet(task, split, (seed, PURPOSES[purpose]), count, data_dir=data_dir)


@contextlib.contextmanager
def open_runner(workers=1, cluster=None, runner=None):
    """`runner` if one is given (left open), else a new parallel.Runner, closed at the end."""
    if runner is not None:
        yield runner
        return
    with Runner(workers, cluster) as new:
        try:
            new.connect()
        except (ImportError, OSError) as error:
            raise UsageError(f"--cluster {cluster}: cannot connect: {error}") from None
        yield new


def task_spec(task):
    """TASKS[task], or a UsageError naming the tasks there are."""
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r}; the tasks are {sorted(TASKS)}")
    return TASKS[task]


def check_count(name, value, least=1):
    """A UsageError unless `value` is an integer of at least `least`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise UsageError(f"{name} must be an integer of at least {least}, got {value!r}")


def recipe_settings(task, recipe=None, *, seed=0, preprocess=None, digits=None, **meta):
    """The network and meta-training settings `train` uses: the recipe's (default: the task's
    first), with these overrides. Returns (task trained on, Recipe as overridden).

    preprocess: True or False overrides the network's gradient preprocessing (appendix A);
    digits: the recipe's `digits`; meta: MetaConfig fields among META_OVERRIDES (None keeps the
    recipe's value).
    """
    unknown = sorted(set(meta) - set(META_OVERRIDES))
    if unknown:
        raise TypeError(f"train: unknown meta-training settings {unknown}; the ones a run can "
                        f"override are {list(META_OVERRIDES)}")
    spec = task_spec(task)
    trained_on = spec.trained_on or task
    try:
        chosen = spec.recipe(recipe)
    except ValueError as error:
        raise UsageError(f"train --task {task}: {error}") from None
    network = replace(chosen.network, seed=seed)
    if preprocess is not None:
        network = replace(network, preprocess=preprocess)
    config = replace(chosen.meta, seed=seed,
                     **{name: value for name, value in meta.items() if value is not None})
    try:
        config.check()
    except ValueError as error:
        raise UsageError(f"train: {error}") from None
    digits = chosen.digits if digits is None else digits
    if digits is not None and digits < 1:
        raise UsageError(f"train: digits must be at least 1, got {digits}")
    return trained_on, replace(chosen, network=network, meta=config, digits=digits)


def network_configs(trained_on, recipe, seed):
    """{network name: NetworkConfig} of the networks `train` builds for task `trained_on`
    with `recipe` (as `recipe_settings` returns it): network i of the task is seeded seed + i."""
    return {name: replace(recipe.network, seed=seed + i)
            for i, name in enumerate(TASKS[trained_on].networks)}


def training_refs(task, recipe, seed, data_dir=None):
    """epoch -> the ProblemRefs of that epoch's meta-training problems when the recipe runs
    several trajectories per meta-update (MetaConfig.trajectories_per_update), each set drawn
    from a stream of its own, (seed, 3, epoch), so that workers can rebuild it; None
    otherwise (one trajectory at a time, drawn in this process)."""
    count = recipe.meta.trajectories_per_update
    if count == 1:
        return None
    return lambda epoch: ProblemRef.all(ProblemSet(task, "train", (seed, 3, epoch), count,
                                                   data_dir=data_dir, subset=recipe.digits))


def describe(recipe):
    """One line saying how `recipe` meta-trains, naming every option beyond the paper it uses."""
    meta = recipe.meta
    length = "in stages" if meta.curriculum else f"of {meta.steps} steps"
    return (f"{meta.epochs} epochs {length}, unrolled {meta.unroll} at a time, "
            f"meta-Adam lr {meta.meta_lr}"
            + (f" decaying to {meta.final_meta_lr}" if meta.final_meta_lr else "")
            + (f", meta-gradient clipped at norm {meta.clip_norm}" if meta.clip_norm else "")
            + (f", {meta.problems_per_update} problems per trajectory"
               if meta.problems_per_update > 1 else "")
            + (f", {meta.trajectories_per_update} trajectories per meta-update"
               if meta.trajectories_per_update > 1 else "")
            + (f", meta-objective {meta.objective}" if meta.objective != "sum" else "")
            + (", the exact meta-gradient (second order)" if meta.second_order else "")
            + (f", optimizee randomly scaled by exp(U(-{meta.random_scale}, "
               f"{meta.random_scale}))" if meta.random_scale else "")
            + (", curriculum " + " -> ".join(f"{e} x {n} steps" for n, e in meta.curriculum)
               if meta.curriculum else "")
            + (f", each problem on its own {recipe.digits} digits" if recipe.digits else "")
            + (f", phi averaged (decay {meta.average})" if meta.average is not None else "")
            + f"; validation: {meta.validate_on} over "
              + ("the next stage's steps" if meta.curriculum
                 else f"{meta.validation_steps or meta.steps} steps")
            + f" on {meta.validation_problems} problems every {meta.validate_every} epochs"
            + f"; network {recipe.network}")


def train(task, out, *, recipe=None, seed=0, resume=False, force=False, preprocess=None,
          digits=None, data_dir=None, download=False, checkpoint_every=60.0, workers=1,
          cluster=None, runner=None, **meta):
    """Meta-train the optimizer of `task` (for a generalisation task: of the task it tests)
    with `recipe` (default: the task's first, "paper"); writes out/optimizer.npz (the best
    network by validation) and out/checkpoint.npz.

    Meta-training problems come from the task's "train" split, validation problems from its
    "validation" split. preprocess, digits and meta (epochs=, meta_lr=, problems_per_update=,
    average=, objective=, second_order=, validate_on=, validation_steps=) override the recipe:
    see `recipe_settings`.
    A folder that already holds a run needs `resume` (continue it; a finished run is left as
    it is) or `force` (start over): see `runs.training_folder`. The checkpoint is also written
    every `checkpoint_every` seconds, and on Ctrl-C (then `MetaTrainingInterrupted` is raised).
    Validation runs on `workers` processes or on the Dask cluster at `cluster` (see
    `parallel.Runner`; or on `runner`, one already open), with the same result. Every setting
    and the folder are checked before any work (UsageError). Returns the wall time in seconds.
    """
    trained_on, chosen = recipe_settings(task, recipe, seed=seed, preprocess=preprocess,
                                         digits=digits, **meta)
    if checkpoint_every < 0:
        raise UsageError(f"train: checkpoint_every is in seconds, at least 0; got "
                         f"{checkpoint_every}")
    state = training_folder(out, chosen.meta, resume=resume, force=force)
    if state == "finished":
        _, extra = load_networks(os.path.join(out, "optimizer.npz"), with_extra=True)
        print(f"{out}: this run is finished ({chosen.meta.epochs} epochs); its best network, "
              f"validation {chosen.meta.validate_on} {float(extra['validation']):.5g} at epoch "
              f"{int(extra['epoch'])}, is {os.path.join(out, 'optimizer.npz')}; nothing to do "
              f"(--force starts it over)")
        return 0.0
    if trained_on != task:
        print(f"{task}: the paper tests the optimizer trained on '{trained_on}'; "
              f"training on '{trained_on}'")
    spec = TASKS[trained_on]
    data = {"data_dir": data_dir, "download": download}
    try:
        family = spec.make_family("train", **data, subset=chosen.digits)
    except DatasetError:
        raise
    except ValueError as error:
        raise UsageError(f"train: {error}") from None
    clear_caches()
    validation_family = family_of(trained_on, "validation", data_dir, download=download)
    networks = {name: CoordinatewiseLSTM(config)
                for name, config in network_configs(trained_on, chosen, seed).items()}
    sample = family.sample(np.random.default_rng(0))
    with open_runner(workers, cluster, runner) as runner:
        trainer = MetaTrainer(networks, family, chosen.meta, out_dir=out,
                              assign=spec.assignment(sample), validation_family=validation_family,
                              checkpoint_every=checkpoint_every, runner=runner,
                              validation_refs=ProblemRef.all(ProblemSet(
                                  trained_on, "validation", (seed, 1),
                                  chosen.meta.validation_problems, data_dir=data_dir)),
                              training_refs=training_refs(trained_on, chosen, seed, data_dir))
        if state == "resume":
            trainer.load_checkpoint(trainer.checkpoint_path)
            print(f"resuming {trainer.checkpoint_path} at epoch {trainer.epoch} of "
                  f"{chosen.meta.epochs}")
        print(f"meta-training on {family!r}, validating on {validation_family!r}: "
              f"{describe(chosen)}")
        start = time.perf_counter()
        best = trainer.fit()
        elapsed = time.perf_counter() - start
    print(f"best validation {chosen.meta.validate_on} {best:.5g} at epoch {trainer.best[1]}; "
          f"{trainer.skipped} updates skipped; {elapsed:.0f} s")
    print(f"wrote {os.path.join(out, 'optimizer.npz')}")
    return elapsed


def optimizer_path(path):
    """`path`, or, if no file is there and it is a shipped optimizer's name ("mnist",
    "quadratic"), that optimizer's file."""
    if not os.path.exists(path) and path in pretrained.PRETRAINED:
        return pretrained.path(path)
    return path


def load_learned(paths, task):
    """{name: networks} of the optimizer files {name: path}, each checked to load and to have
    the networks `task` needs (a UsageError naming the file otherwise); a shipped optimizer's
    name works as a path (`optimizer_path`)."""
    spec = task_spec(task)
    clash = sorted(set(paths) & set(BASELINES))
    if clash:
        raise UsageError(f"compare: a learned optimizer cannot be called {clash[0]!r}, a "
                         f"baseline's name")
    learned = {}
    for name, path in paths.items():
        path = optimizer_path(path)
        try:
            learned[name] = load_networks(path)
        except FileNotFoundError:
            raise UsageError(f"optimizer file {path}: no such file (train writes "
                             f"OUT/optimizer.npz)") from None
        except (OSError, ValueError) as error:
            raise UsageError(str(error).replace("\n", " ")) from None
        if sorted(learned[name]) != sorted(spec.networks):
            raise UsageError(f"optimizer file {path}: it holds the networks "
                             f"{sorted(learned[name])}, the task {task} needs "
                             f"{sorted(spec.networks)} (an optimizer trained with train --task "
                             f"{spec.trained_on or task})")
    return learned


def comparison_settings(task, optimizers, *, steps, tests, seed, test_split, tune_problems=None):
    """The settings that define a comparison (runs.COMPARISON_SETTINGS), checked; returns
    ({name: path}, settings). tune_problems: the validation problems of each learning-rate
    search (default: the task's)."""
    paths = optimizers if isinstance(optimizers, dict) else {"LSTM": optimizers}
    paths = {name: optimizer_path(path) for name, path in paths.items()}
    spec = task_spec(task)
    check_count("steps", steps)
    check_count("tests", tests)
    check_count("seed", seed, least=0)
    tune_problems = spec.tune_problems if tune_problems is None else tune_problems
    check_count("tune_problems", tune_problems)
    if test_split not in TEST_SPLITS:
        raise UsageError(f"test_split must be one of {list(TEST_SPLITS)}, got {test_split!r}")
    return paths, {"task": task, "steps": steps, "tests": tests, "seed": seed,
                   "test_split": test_split, "tune_problems": tune_problems,
                   "learned": {name: os.path.abspath(path) for name, path in paths.items()}}


def compare(task, optimizers, out, *, steps=100, tests=100, seed=0, test_split="test",
            tune_problems=None, force=False, data_dir=None, download=False, workers=1,
            cluster=None, runner=None):
    """Tune each baseline's learning rate on the task's validation problems (`tune_problems`
    of them, default the task's: 8 for MNIST, 32 for the quadratic), run every
    optimizer on the same `tests` fresh test problems for `steps` steps, and write
    out/compare.json, compare.md and compare.png. Returns the report (as in compare.json).

    optimizers: a path to an optimizer.npz written by `train` (shown as "LSTM"), or a dict
    {name: path} of several, each shown under its name. test_split: the data the test
    problems draw their minibatches from, "test" (held out) or "train" (the meta-training
    digits, with fresh theta_0 and minibatch seeds). A folder that already holds a
    comparison needs `force`. The settings, the optimizer files and the folder are checked
    before any work (UsageError). The runs go to `workers` processes or to the Dask cluster
    at `cluster` (`parallel.Runner`; or to `runner`, one already open), with the same result.
    """
    paths, settings = comparison_settings(task, optimizers, steps=steps, tests=tests, seed=seed,
                                          test_split=test_split, tune_problems=tune_problems)
    learned = load_learned(paths, task)
    comparison_folder(out, settings, force=force)
    with open_runner(workers, cluster, runner) as runner:
        return _compare(task, learned, settings, out, data_dir=data_dir, download=download,
                        runner=runner)


def _compare(task, learned, settings, out, data_dir=None, download=False, runner=None):
    """The comparison of `compare`, once everything is checked."""
    spec = TASKS[task]
    steps, tests, seed = settings["steps"], settings["tests"], settings["seed"]
    test_split, tune_problems = settings["test_split"], settings["tune_problems"]
    clear_caches()
    for split in (test_split, "validation"):        # loaded (or downloaded) before any worker
        family_of(task, split, data_dir, download=download)
    tune_set = ProblemRef.all(problem_source(task, "validation", tune_problems, seed, "tune",
                                             data_dir))
    test_set = ProblemRef.all(problem_source(task, test_split, tests, seed, "test", data_dir))

    start = time.perf_counter()
    grid = learning_rate_grid()
    tuned = tune_learning_rates(list(BASELINES), tune_set, steps, grid, progress=True,
                                runner=runner)
    learning_rates = {name: lr for name, (lr, _) in tuned.items()}
    searches = {name: scores for name, (_, scores) in tuned.items()}
    for name in BASELINES:
        excluded = sum(score is None for score in searches[name].values())
        print(f"{name:8s} learning rate {learning_rates[name]:.3g} (grid of {len(grid)}, "
              f"{excluded} excluded as divergent; {tune_problems} validation problems, "
              f"{steps} steps)")
    results = compare_optimizers(learned, test_set, steps, learning_rates,
                                 spec.assignment(test_set[0].pair()[0]), runner=runner)
    elapsed = time.perf_counter() - start

    report = build_report(results, learning_rates, searches, task=task, steps=steps,
                          tests=tests, seed=seed, test_split=test_split,
                          optimizers=settings["learned"],
                          tune_problems=tune_problems,
                          starts=[start_at_end(*ref.pair(), steps) for ref in test_set])
    write_report(report, out)
    print(f"compare took {elapsed:.0f} s; wrote {out}/compare.json, compare.md, compare.png")
    return report


def reproduce(task, out, *, recipe=None, seed=0, optimizers=None, tests=None, steps=None,
              resume=False, force=False, preprocess=None, digits=None, test_split="test",
              data_dir=None, download=False, checkpoint_every=60.0, workers=1, cluster=None,
              **meta):
    """`train` into out/train with `recipe` (unless `optimizers` are given), then `compare`
    into out/compare-{steps} at each of the task's horizons (or `steps`, a sequence), on the
    task's number of test problems (or `tests`). preprocess, digits and meta override the
    recipe as in `train`.

    A folder that already holds results needs `resume` (training continues from its
    checkpoint, and a comparison already done with the same settings is kept) or `force`
    (everything is done again). Everything is checked before any work starts."""
    spec = task_spec(task)
    horizons = list(spec.horizons if steps is None else steps)
    if not horizons:
        raise UsageError("reproduce: steps names no horizon")
    tests = spec.tests if tests is None else tests
    output_folder(out)
    train_out = os.path.join(out, "train")
    training = optimizers is None
    if training:
        _, chosen = recipe_settings(spec.trained_on or task, recipe, seed=seed,
                                    preprocess=preprocess, digits=digits, **meta)
        training_folder(train_out, chosen.meta, resume=resume, force=force)
        optimizers = os.path.join(train_out, "optimizer.npz")
    else:
        learned = load_learned(optimizers if isinstance(optimizers, dict)
                               else {"LSTM": optimizers}, task)
    comparisons = {}
    for horizon in horizons:
        folder = os.path.join(out, f"compare-{horizon}")
        _, settings = comparison_settings(task, optimizers, steps=horizon, tests=tests,
                                          seed=seed, test_split=test_split)
        comparisons[folder] = (settings, comparison_folder(folder, settings, resume=resume,
                                                           force=force))
    start = time.perf_counter()
    data = {"data_dir": data_dir, "download": download}
    with open_runner(workers, cluster) as runner:
        if training:
            train(spec.trained_on or task, train_out, recipe=recipe, seed=seed, resume=resume,
                  force=force, preprocess=preprocess, digits=digits,
                  checkpoint_every=checkpoint_every, runner=runner, **data, **meta)
            learned = load_learned({"LSTM": optimizers}, task)
        for folder, (settings, state) in comparisons.items():
            if state == "finished":
                print(f"{folder}: this comparison is finished (compare.json, same settings); "
                      f"kept")
                continue
            _compare(task, learned, settings, folder, runner=runner, **data)
    print(f"reproduce --task {task}: {time.perf_counter() - start:.0f} s in all")
