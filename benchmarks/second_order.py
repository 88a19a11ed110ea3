"""The exact meta-gradient against the paper's first-order one (MetaConfig.second_order): how
far apart they point along real trajectories, and what the exact one costs in time and memory.

For each task, the paper's recipe (optim/learned/tasks.py): the quadratic network on batches
of 128 10-dimensional quadratics (1,280 coordinates), or the paper's MNIST network on the
784-20-10 sigmoid MLP (15,910 coordinates); 100 steps unrolled 20 at a time, float32.

- Direction. For the initial network (the recipe's, seed 0) and the shipped trained one
  (`pretrained`: "quadratic", "mnist-paper"), along `--trajectories` trajectories on fresh
  meta-training problems: at each unroll, both meta-gradients from the same point (theta, the
  LSTM state, the gradient: `Trajectory(carry=...)`), their cosine similarity and the ratio
  of their norms; then the trajectory goes on from the end of the first-order unroll, the
  network frozen (no meta-update), as a trajectory of the plain optimizer would. Also the
  cosine of the trajectory's meta-gradients summed over its unrolls. The two meta-losses of
  each unroll are the same forward pass; their largest relative difference is printed.
- Time. `MetaTrainer.train_trajectory` (forward, meta-gradient, meta-Adam at every unroll)
  with each setting, from the same initial network, taking turns (`interleaved_times`):
  seconds per trajectory, medians, and their ratio.
- Memory. tracemalloc's peak during one trajectory of each (it sees numpy's allocations),
  and their ratio.
- Roughness. In float64, the shipped network on a trajectory of a float64 problem, from the
  start of unrolls `--check-unrolls` (counted from 0): the derivative of that unroll's
  meta-loss along a random unit direction of phi, exact and first order, and central
  differences of the meta-loss (nothing held constant) at steps of 1e-4 down to 1e-10. Where
  the differences settle on the exact figure only at the smallest steps, the meta-loss is
  smooth only at that scale.

    python benchmarks/second_order.py --task {quadratic,mnist} [--trajectories 3]
        [--timed 3] [--check-unrolls 0 2] [--threads 1]
"""
from _common import configure_threads

if __name__ == "__main__":
    configure_threads()       # before numpy is imported: the BLAS reads its thread count then

import argparse  # noqa: E402
import tracemalloc  # noqa: E402
from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402

from _common import describe_threads, interleaved_times, median  # noqa: E402
from models.problems import MNISTFamily, QuadraticFamily, draw_problems  # noqa: E402
from optim.learned import CoordinatewiseLSTM, MetaTrainer, pretrained  # noqa: E402
from optim.learned.meta import Trajectory, unroll  # noqa: E402
from optim.learned.tasks import TASKS  # noqa: E402

SHIPPED = {"quadratic": "quadratic", "mnist": "mnist-paper"}
STEP_SIZES = (1e-4, 1e-6, 1e-8, 1e-10)


def meta_gradient(net, problem, theta0, carry, second_order, length):
    """(meta-loss, meta-gradient as one flat array, carry at the unroll's end) of one unroll
    of `length` steps from `carry` (a trajectory from theta0), first order or exact."""
    trajectory = Trajectory(problem, {"all": net}, theta0, carry=carry,
                            second_order=second_order)
    meta_loss = unroll({"all": net}, trajectory, length)
    net.zero_grad()
    meta_loss.backward()
    gradient = np.concatenate([p.grad.reshape(-1) for p in net.parameters()]).astype(np.float64)
    trajectory.detach()
    return meta_loss.item(), gradient, trajectory.carry()


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def directions(net, problems, steps, length):
    """Along each problem's trajectory: per unroll (cosine, |exact| / |first order|), the
    cosine of the summed meta-gradients per trajectory, and the largest relative difference
    between the two meta-losses of an unroll."""
    per_unroll, per_trajectory, loss_difference = [], [], 0.0
    for problem, theta0 in problems:
        carry = Trajectory(problem, {"all": net}, theta0).carry()
        summed = {False: 0.0, True: 0.0}
        for _ in range(steps // length):
            value, first, next_carry = meta_gradient(net, problem, theta0, carry, False, length)
            exact_value, exact, _ = meta_gradient(net, problem, theta0, carry, True, length)
            loss_difference = max(loss_difference, abs(exact_value - value) / abs(value))
            per_unroll.append((cosine(first, exact), np.linalg.norm(exact) / np.linalg.norm(first)))
            summed[False] = summed[False] + first
            summed[True] = summed[True] + exact
            carry = next_carry
        per_trajectory.append(cosine(summed[False], summed[True]))
    return per_unroll, per_trajectory, loss_difference


def peak_memory(trainer, problem, theta0):
    """tracemalloc's peak (bytes) during one trajectory of `trainer`."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        trainer.train_trajectory(problem, theta0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def float64_twins(task, family, net):
    """The task's family and the network `net` in float64."""
    if task == "quadratic":
        twin_family = QuadraticFamily(dim=10, batch=128, dtype=np.float64)
    else:
        twin_family = MNISTFamily(data=(family.images, family.labels), dtype=np.float64)
    twin = CoordinatewiseLSTM(replace(net.config, dtype="float64"))
    twin.load_state_dict({k: v.astype(np.float64) for k, v in net.state_dict().items()})
    return twin_family, twin


def roughness(net, problem, theta0, start, length):
    """From the start of unroll `start` of the trajectory of `net` on `problem`: the
    derivatives of that unroll's meta-loss along a random unit direction of phi, exact and
    first order, and {step: central difference of the meta-loss at that step}."""
    trajectory = Trajectory(problem, {"all": net}, theta0)
    for _ in range(start):
        trajectory.coast({"all": net}, length)
    carry = trajectory.carry()
    rng = np.random.default_rng(5)
    direction = [rng.standard_normal(p.shape) for p in net.parameters()]
    norm = np.sqrt(sum(float((d * d).sum()) for d in direction))
    direction = np.concatenate([d.reshape(-1) for d in direction]) / norm
    derivatives = [meta_gradient(net, problem, theta0, carry, second_order, length)[1] @ direction
                   for second_order in (True, False)]
    original = [p.data.copy() for p in net.parameters()]

    def meta_loss(step):
        offset = 0
        for p, data in zip(net.parameters(), original):
            p.data = data + step * direction[offset:offset + data.size].reshape(data.shape)
            offset += data.size
        trajectory = Trajectory(problem, {"all": net}, theta0, carry=carry)
        return unroll({"all": net}, trajectory, length).item()

    differences = {step: (meta_loss(step) - meta_loss(-step)) / (2 * step) for step in STEP_SIZES}
    for p, data in zip(net.parameters(), original):
        p.data = data
    return derivatives, differences


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(SHIPPED), default="quadratic")
    parser.add_argument("--trajectories", type=int, default=3,
                        help="trajectories along which the directions are compared")
    parser.add_argument("--timed", type=int, default=3, help="timed trajectories per setting")
    parser.add_argument("--check-unrolls", type=int, nargs="*", default=[0, 2],
                        help="unrolls (from 0) where the float64 roughness check starts")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    recipe = TASKS[args.task].recipe("paper")
    config, meta = recipe.network, recipe.meta
    family = TASKS[args.task].make_family("train")
    problems = draw_problems(family, np.random.default_rng(0), args.trajectories)
    print(f"task {args.task}, recipe paper: {problems[0][0].n_coords} coordinates, {meta.steps} "
          f"steps unrolled {meta.unroll} at a time, network {config}")
    print(describe_threads(args.threads, None))

    networks = {"initial": CoordinatewiseLSTM(config),
                f"shipped {SHIPPED[args.task]}": pretrained.load(SHIPPED[args.task])["all"]}
    print(f"cosine(first-order, exact meta-gradient) along {args.trajectories} trajectories:")
    for name, net in networks.items():
        per_unroll, per_trajectory, loss_difference = directions(net, problems, meta.steps,
                                                                 meta.unroll)
        cosines, norms = np.array(per_unroll).T
        print(f"  {name}: per unroll mean {cosines.mean():.4f}, min {cosines.min():.4f}, max "
              f"{cosines.max():.4f} ({len(cosines)} unrolls); summed per trajectory "
              + ", ".join(f"{c:.4f}" for c in per_trajectory)
              + f"; |exact| / |first order| median {np.median(norms):.3f} (range "
              f"{norms.min():.3f}-{norms.max():.3f}); meta-losses differ by at most "
              f"{loss_difference:.1e} (relative)")

    trainers = {name: MetaTrainer({"all": CoordinatewiseLSTM(config)}, family,
                                  replace(meta, second_order=second_order), progress=False)
                for name, second_order in [("first order", False), ("exact", True)]}
    timed = draw_problems(family, np.random.default_rng(1), args.timed + 1)
    queues = {name: iter(timed) for name in trainers}
    times = interleaved_times({name: lambda name=name: trainer.train_trajectory(
        *next(queues[name])) for name, trainer in trainers.items()}, args.timed + 1)
    medians = {name: median(t[1:]) for name, t in times.items()}    # the first turn: warm-up
    print(f"seconds per meta-training trajectory, median of {args.timed} (taking turns, after "
          f"one untimed each):")
    for name, t in times.items():
        print(f"  {name:12s} {medians[name]:.3f}   (all: {' '.join(f'{s:.3f}' for s in t[1:])})")
    peaks = {name: peak_memory(trainer, *timed[0]) for name, trainer in trainers.items()}
    for name, peak in peaks.items():
        print(f"peak memory (tracemalloc) of one trajectory, {name}: {peak / 2**20:.1f} MiB")

    twin_family, twin = float64_twins(args.task, family, networks[f"shipped {SHIPPED[args.task]}"])
    (problem, theta0), = draw_problems(twin_family, np.random.default_rng(2), 1)
    for start in args.check_unrolls:
        (exact, first), differences = roughness(twin, problem, theta0, start, meta.unroll)
        print(f"float64, shipped network, unroll {start}: derivative along a random unit "
              f"direction of phi, exact {exact:.6g}, first order {first:.6g}; central "
              f"differences " + ", ".join(f"{d:.6g} at {step:g}"
                                          for step, d in differences.items()))
    print(f"time_ratio_exact_vs_first_order={medians['exact'] / medians['first order']:.3f}")
    print(f"memory_ratio_exact_vs_first_order={peaks['exact'] / peaks['first order']:.3f}")


if __name__ == "__main__":
    main()
