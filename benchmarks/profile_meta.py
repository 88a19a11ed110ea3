"""Where a meta-training trajectory's time goes: cProfile of `MetaTrainer.train_trajectory`,
grouped into the parts of the computation, for the two tasks of meta_trajectory.py.

Groups (disjoint; cProfile's per-call overhead inflates the many-small-call groups a little):
- lstm_cell forward / backward: the fused cell, both layers, every step;
- other ops' backward: every other op's backward closure (output layer, optimizee, sums);
- sweep: the reverse sweep's own work (ordering nodes, summing gradients of shared tensors);
- optimizee loss: the quadratic's or the MLP's forward, with its minibatch;
- optimizer glue: CoordinatewiseLSTM.forward outside the cells (preprocessing, output layer);
- meta-Adam: the Adam step on phi after each unroll;
- the rest: theta updates, mg.grad's setup, the meta-loss sums, Trajectory bookkeeping.
Then the three matmuls of each cell timed alone at the task's shapes, as a floor for the cell.

    python benchmarks/profile_meta.py --task {mnist,quadratic} [--trajectories 3] [--threads 1]
"""
from _common import configure_threads

if __name__ == "__main__":
    configure_threads()       # before numpy is imported: the BLAS reads its thread count then

import argparse  # noqa: E402
import cProfile  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import minigrad.functional as F  # noqa: E402
import models.problems as problems_module  # noqa: E402
from models.problems import draw_problems  # noqa: E402
from _common import median  # noqa: E402
from meta_trajectory import task_setup  # noqa: E402
from minigrad import autograd, tensor as tensor_module  # noqa: E402
from optim.base import Optimizer  # noqa: E402
from optim.learned import CoordinatewiseLSTM, MetaConfig, MetaTrainer  # noqa: E402


def _key(code):
    """cProfile's key for a function's code object."""
    return code.co_filename, code.co_firstlineno, code.co_name


def grouped(stats):
    """(total, {group: seconds}) from a pstats.Stats of train_trajectory calls."""
    entries = {key: ct for key, (_, _, _, ct, _) in stats.stats.items()}
    cell_backward_code = next(c for c in F.lstm_cell.__code__.co_consts
                              if getattr(c, "co_name", None) == "backward")
    op_files = {tensor_module.__file__, F.__file__}
    not_a_closure = _key(tensor_module.Tensor.backward.__code__)
    closures = sum(ct for (path, line, name), ct in entries.items()
                   if name.endswith("backward") and (path, line, name) != not_a_closure
                   and any(os.path.samefile(path, f) for f in op_files))
    loss = sum(ct for (path, _, name), ct in entries.items()
               if name == "loss" and os.path.samefile(path, problems_module.__file__))

    def inclusive(function):
        return entries.get(_key(function.__code__), 0.0)

    total = inclusive(MetaTrainer.train_trajectory)
    cell_forward = inclusive(F.lstm_cell)
    cell_backward = entries.get(_key(cell_backward_code), 0.0)
    groups = {
        "lstm_cell forward": cell_forward,
        "lstm_cell backward": cell_backward,
        "other ops' backward": closures - cell_backward,
        "sweep (order, sums)": inclusive(autograd._sweep) - closures,
        "optimizee loss": loss,
        "optimizer glue": inclusive(CoordinatewiseLSTM.forward) - cell_forward,
        "meta-Adam": inclusive(Optimizer.step),
    }
    groups["the rest"] = total - sum(groups.values())
    return total, groups


def matmul_floor(config, n_coords, steps):
    """Seconds per trajectory of the cells' matmuls alone (forward, weight gradient, input
    gradient of each layer at each step), hot in cache."""
    rng = np.random.default_rng(0)
    total, width = 0.0, config.input_size
    for hidden in config.layers:
        k = width + hidden + 1
        W = rng.standard_normal((k, 4 * hidden)).astype(np.float32)
        xh = rng.standard_normal((k, n_coords)).astype(np.float32)
        dz = rng.standard_normal((4 * hidden, n_coords)).astype(np.float32)
        calls = [lambda: W.T @ xh, lambda: dz @ xh.T, lambda: W[:-1] @ dz]
        for call in calls:
            times = []
            for _ in range(7):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            total += median(times)
        width = hidden
    return total * steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["mnist", "quadratic"], default="mnist")
    parser.add_argument("--trajectories", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    config, family = task_setup(args.task)
    problems = draw_problems(family, np.random.default_rng(0), args.trajectories + 1)
    trainer = MetaTrainer({"all": CoordinatewiseLSTM(config)}, family, MetaConfig(),
                          progress=False)
    trainer.train_trajectory(*problems[0])
    profiler = cProfile.Profile()
    profiler.enable()
    for problem, theta0 in problems[1:]:
        trainer.train_trajectory(problem, theta0)
    profiler.disable()
    total, groups = grouped(pstats.Stats(profiler))
    n = args.trajectories
    print(f"task {args.task}, {problems[0][0].n_coords} coordinates: cProfile of {n} "
          f"trajectories, {total / n * 1e3:.0f} ms per trajectory (profiled)")
    for name, seconds in groups.items():
        print(f"  {name:22s} {seconds / n * 1e3:8.1f} ms  {100 * seconds / total:5.1f}%")
    floor = matmul_floor(config, problems[0][0].n_coords, trainer.config.steps)
    print(f"the cells' matmuls alone: {floor * 1e3:.1f} ms per trajectory")


if __name__ == "__main__":
    main()
