"""The paper's experiments (section 3) as functions: `train` meta-trains an optimizer on a task
(section 2), `compare` tests it against the tuned baselines, `reproduce` does both with the
task's settings. The command line (optim/learned/cli.py) is a thin front over these.
"""
import os
import time
from dataclasses import replace

import numpy as np

from models.problems import draw_problems

from .evaluation import BASELINES, compare_optimizers, learning_rate_grid, tune_learning_rate
from .meta import MetaTrainer
from .network import CoordinatewiseLSTM, load_networks
from .report import build_report, write_report
from .tasks import TASKS

PURPOSES = {"tune": 1, "test": 2}


def problem_set(family, count, seed, purpose):
    """`count` (problem, theta_0) pairs from a stream of their own: the same seed and purpose
    ("tune" or "test") give the same problems; different purposes never share one."""
    return draw_problems(family, np.random.default_rng([seed, PURPOSES[purpose]]), count)


def train(task, out, *, epochs=None, meta_lr=None, seed=0, resume=False, preprocess=None,
          data_dir=None, download=False):
    """Meta-train the optimizer of `task` (for a generalisation task: of the task it tests);
    writes out/optimizer.npz (the best network by validation) and out/checkpoint.npz.

    epochs, meta_lr: override the task's; preprocess: True or False overrides the network's
    gradient preprocessing (appendix A). Returns the wall time in seconds.
    """
    spec = TASKS[task]
    if spec.trained_on:
        print(f"{task}: the paper tests the optimizer trained on '{spec.trained_on}'; "
              f"training on '{spec.trained_on}'")
        spec = TASKS[spec.trained_on]
    meta = replace(spec.meta, seed=seed,
                   epochs=epochs if epochs is not None else spec.meta.epochs,
                   meta_lr=meta_lr if meta_lr is not None else spec.meta.meta_lr)
    data = {"data_dir": data_dir, "download": download}
    options = {}
    if spec.meta_subset:
        options["subset"] = len(spec.make_family("test", **data).labels)
    family = spec.make_family("train", **data, **options)
    network = replace(spec.network, seed=seed)
    if preprocess is not None:
        network = replace(network, preprocess=preprocess)
    networks = {name: CoordinatewiseLSTM(replace(network, seed=seed + i))
                for i, name in enumerate(spec.networks)}
    sample = family.sample(np.random.default_rng(0))
    trainer = MetaTrainer(networks, family, meta, out_dir=out, assign=spec.assignment(sample))
    print(f"meta-training on {family!r}: {meta.epochs} epochs of {meta.steps} steps, unrolled "
          f"{meta.unroll} at a time, meta-Adam lr {meta.meta_lr}"
          + (f" decaying to {meta.final_meta_lr}" if meta.final_meta_lr else "")
          + (f", {meta.problems_per_update} problems per trajectory"
             if meta.problems_per_update > 1 else "")
          + (f", phi averaged (decay {meta.average})" if meta.average is not None else "")
          + f"; validation: {meta.validate_on} over {meta.validation_steps or meta.steps} steps"
          + f"; network {network}")
    start = time.perf_counter()
    best = trainer.fit(resume=resume)
    elapsed = time.perf_counter() - start
    print(f"best validation {meta.validate_on} {best:.5g} at epoch {trainer.best[1]}; "
          f"{trainer.skipped} updates skipped; {elapsed:.0f} s")
    print(f"wrote {os.path.join(out, 'optimizer.npz')}")
    return elapsed


def compare(task, optimizer, out, *, steps=100, tests=100, seed=0, test_split="test",
            data_dir=None, download=False):
    """Tune each baseline's learning rate on the task's validation problems, run every
    optimizer on the same `tests` fresh test problems for `steps` steps, and write
    out/compare.json, compare.md and compare.png. Returns the report (as in compare.json).

    optimizer: a path to an optimizer.npz written by `train`. test_split: the data the test
    problems draw their minibatches from, "test" (held out) or "train" (the meta-training
    digits, with fresh theta_0 and minibatch seeds).
    """
    spec = TASKS[task]
    networks = load_networks(optimizer)
    data = {"data_dir": data_dir, "download": download}
    test_family = spec.make_family(test_split, **data)
    tune_family = spec.make_family("train", **data)
    tune_set = problem_set(tune_family, spec.tune_problems, seed, "tune")
    test_set = problem_set(test_family, tests, seed, "test")

    start = time.perf_counter()
    grid = learning_rate_grid()
    learning_rates, searches = {}, {}
    for name in BASELINES:
        learning_rates[name], searches[name] = tune_learning_rate(name, tune_set, steps, grid,
                                                                  progress=True)
        print(f"{name:8s} learning rate {learning_rates[name]:.3g} (grid of {len(grid)}, "
              f"{spec.tune_problems} validation problems, {steps} steps)")
    results = compare_optimizers(networks, test_set, steps, learning_rates,
                                 spec.assignment(test_set[0][0]))
    elapsed = time.perf_counter() - start

    report = build_report(results, learning_rates, searches, task=task, steps=steps,
                          tests=tests, seed=seed, test_split=test_split,
                          optimizer=os.path.abspath(optimizer))
    write_report(report, out)
    print(f"compare took {elapsed:.0f} s; wrote {out}/compare.json, compare.md, compare.png")
    return report


def reproduce(task, out, *, seed=0, optimizer=None, epochs=None, meta_lr=None, tests=None,
              steps=None, resume=False, preprocess=None, test_split="test", data_dir=None,
              download=False):
    """`train` into out/train (unless `optimizer` is given), then `compare` into
    out/compare-{steps} at each of the task's horizons (or `steps`, a sequence), on the task's
    number of test problems (or `tests`)."""
    spec = TASKS[task]
    start = time.perf_counter()
    data = {"data_dir": data_dir, "download": download}
    if optimizer is None:
        train_out = os.path.join(out, "train")
        train(spec.trained_on or task, train_out, epochs=epochs, meta_lr=meta_lr, seed=seed,
              resume=resume, preprocess=preprocess, **data)
        optimizer = os.path.join(train_out, "optimizer.npz")
    for horizon in steps or spec.horizons:
        compare(task, optimizer, os.path.join(out, f"compare-{horizon}"), steps=horizon,
                tests=tests or spec.tests, seed=seed, test_split=test_split, **data)
    print(f"reproduce --task {task}: {time.perf_counter() - start:.0f} s in all")
