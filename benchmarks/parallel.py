"""Speed-up from workers: `compare` and meta-training's validation with 1 worker and with N.

A comparison is the project's most parallel work: every baseline at each of 16 learning rates
on every validation problem, then every optimizer on every test problem, all independent. This
times `experiments.compare` (tuning, testing and the report, as the command runs it) on one
worker and on N, taking turns, and checks that both wrote the same compare.json. Then it times
one validation of meta-training (the current networks on the recipe's validation problems) the
same way. Meta-training itself stays serial: each meta-update needs the network the previous
one produced, and the paper's recipe has one problem per update.

    python benchmarks/parallel.py [--task quadratic] [--workers 2] [--tests 100] [--steps 100]
    python benchmarks/parallel.py --task mnist --tests 20

Prints the seconds of each and `speedup=X` (time with 1 worker / time with N), both from this
one run.
"""
from _common import configure_threads

if __name__ == "__main__":
    configure_threads()       # one BLAS thread per worker, as the command uses

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from minigrad.cli import integer  # noqa: E402
from optim.learned import CoordinatewiseLSTM, MetaTrainer, experiments, save_networks  # noqa: E402
from optim.learned.parallel import Runner, default_workers  # noqa: E402
from optim.learned.problem_sets import ProblemRef, ProblemSet, family_of  # noqa: E402
from optim.learned.tasks import TASKS  # noqa: E402


def time_compare(task, optimizer, folder, workers, args):
    """Seconds of one `compare` with `workers`, and the compare.json it wrote."""
    out = os.path.join(folder, f"compare-w{workers}-{time.perf_counter_ns()}")
    start = time.perf_counter()
    experiments.compare(task, optimizer, out, steps=args.steps, tests=args.tests, seed=0,
                        workers=workers)
    seconds = time.perf_counter() - start
    with open(os.path.join(out, "compare.json"), "rb") as f:
        return seconds, f.read()


def time_validation(task, workers):
    """Seconds of one validation of a fresh paper-recipe network on the recipe's validation
    problems, with `workers`, and its figure."""
    trained_on, recipe = experiments.recipe_settings(task)
    spec = TASKS[trained_on]
    networks = {name: CoordinatewiseLSTM(config)
                for name, config in experiments.network_configs(trained_on, recipe, 0).items()}
    validation = family_of(trained_on, "validation")
    refs = ProblemRef.all(ProblemSet(trained_on, "validation", (0, 1),
                                     recipe.meta.validation_problems))
    with Runner(workers) as runner:
        trainer = MetaTrainer(networks, validation, recipe.meta, progress=False, runner=runner,
                              assign=spec.assignment(refs[0].pair()[0]),
                              validation_family=validation, validation_refs=refs)
        trainer.validate()               # untimed: the workers start and load the data
        start = time.perf_counter()
        figure = trainer.validate()
        return time.perf_counter() - start, figure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="quadratic", choices=sorted(TASKS),
                        help="the task whose comparison is timed (default quadratic)")
    parser.add_argument("--workers", type=integer(2), default=max(2, default_workers()),
                        help="the workers to compare with one (default: the cores, at least 2)")
    parser.add_argument("--tests", type=integer(1), default=100,
                        help="test problems per comparison (default 100)")
    parser.add_argument("--steps", type=integer(1), default=100,
                        help="steps per problem (default 100)")
    parser.add_argument("--rounds", type=integer(1), default=1,
                        help="turns of 1 worker then N (default 1)")
    parser.add_argument("--threads", type=integer(1), default=1,
                        help="BLAS threads per process (default 1)")
    args = parser.parse_args()
    print(f"{args.task}: compare with {args.tests} test problems of {args.steps} steps, "
          f"1 worker against {args.workers}; {os.cpu_count()} cores")

    trained_on, recipe = experiments.recipe_settings(args.task)
    networks = {name: CoordinatewiseLSTM(config)
                for name, config in experiments.network_configs(trained_on, recipe, 0).items()}
    with tempfile.TemporaryDirectory() as folder:
        optimizer = os.path.join(folder, "optimizer.npz")
        save_networks(optimizer, networks)
        times = {1: [], args.workers: []}
        reports = set()
        for _ in range(args.rounds):
            for workers in times:
                seconds, report = time_compare(args.task, optimizer, folder, workers, args)
                times[workers].append(seconds)
                reports.add(report)
    serial, parallel = (float(np.median(times[w])) for w in times)
    print(f"compare: {serial:.1f} s with 1 worker, {parallel:.1f} s with {args.workers}; "
          f"speedup={serial / parallel:.2f}; compare.json "
          + ("identical" if len(reports) == 1 else "DIFFERENT"))

    (serial, one), (parallel, other) = (time_validation(args.task, w) for w in times)
    print(f"validation ({recipe.meta.validation_problems} problems of {recipe.meta.steps} "
          f"steps): {serial:.2f} s with 1 worker, {parallel:.2f} s with {args.workers}; "
          f"speedup={serial / parallel:.2f}; figure " + ("identical" if one == other
                                                       else f"DIFFERENT ({one} vs {other})"))


if __name__ == "__main__":
    main()
