"""The paper's MNIST experiments (section 3.2, figures 4 and 5) for several meta-training seeds,
and the table of their mean and spread over seeds beside the paper's figures.

    python examples/paper_mnist.py --seeds 0 1 2 --out runs/paper-mnist

For each seed S, into OUT/seed-S/, the same as these commands:

    learning-to-learn reproduce --task mnist --seed S --out OUT/seed-S
    learning-to-learn reproduce --task mnist-40 --seed S --optimizer OUT/seed-S/train/optimizer.npz --out OUT/seed-S/mnist-40
    (and likewise mnist-2layer, mnist-relu)

that is: meta-train with `--recipe paper` (or --recipe), compare at 100 and 200 steps, then test
the same optimizer on the 40-unit, 2-layer and ReLU nets at 100 steps. Every seed tunes its
baselines and draws its test problems with its own seed. A step whose results exist is not run
again (as with `reproduce --resume`: training resumes from its checkpoint, a comparison done
with the same settings is kept), so seeds can run in separate processes, an interrupted run
continues where it stopped, and a last call with all of them only writes the table:
OUT/seeds.md, also printed.
"""
import os

# One BLAS thread, as the learning-to-learn command uses (optim/learned/cli.py says why); set
# before numpy is imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from minigrad.cli import (ArgumentParser, UsageError, command_line, integer,  # noqa: E402
                          output_folder, run_command)
from minigrad.io import write_text  # noqa: E402
from models.data import DatasetError  # noqa: E402
from optim.learned import experiments, load_networks  # noqa: E402
from optim.learned.evaluation import BASELINES  # noqa: E402
from optim.learned.parallel import default_workers  # noqa: E402
from optim.learned.tasks import TASKS  # noqa: E402

GENERALISATION = ("mnist-40", "mnist-2layer", "mnist-relu")
# (label, folder under seed-S, horizon of that comparison, step read)
COLUMNS = [("step 20", "compare-100", 100, 20), ("step 100", "compare-100", 100, 100),
           ("step 200", "compare-200", 200, 200), ("40 units", "mnist-40/compare-100", 100, 100),
           ("2 layers", "mnist-2layer/compare-100", 100, 100),
           ("ReLU", "mnist-relu/compare-100", 100, 100)]
# The paper's figures 4 and 5, read off its plots (about ±10%; docs/paper.md).
PAPER = {"LSTM": (0.46, 0.26, 0.21, 0.19, 0.33, 2.6), "Adam": (1.5, 0.36, 0.30, 0.33, 0.71, 0.37),
         "RMSprop": (1.7, 0.36, 0.29, 0.33, 0.75, 0.40), "NAG": (1.5, 0.33, 0.26, 0.31, 0.77, 0.36),
         "SGD": (1.9, 0.47, 0.33, 0.45, 1.8, 0.45)}


def run_seed(seed, out, recipe, workers=1, cluster=None):
    """Train and compare for one seed, keeping what is already done (as `reproduce
    --resume`): training resumes from its checkpoint, a finished comparison is kept."""
    folder = os.path.join(out, f"seed-{seed}")
    optimizer = os.path.join(folder, "train", "optimizer.npz")
    start = time.perf_counter()
    where = {"workers": workers, "cluster": cluster}
    experiments.reproduce("mnist", folder, recipe=recipe, seed=seed, resume=True, **where)
    for task in GENERALISATION:
        experiments.reproduce(task, os.path.join(folder, task), seed=seed, optimizers=optimizer,
                              resume=True, **where)
    print(f"seed {seed}: {time.perf_counter() - start:.0f} s in all")


def read(out, seed, folder):
    with open(os.path.join(out, f"seed-{seed}", folder, "compare.json")) as file:
        return json.load(file)


def table(out, seeds):
    """Mean ± standard deviation over seeds of each optimizer's mean test loss, per column,
    with the paper's figure; then each seed's learned optimizer against the best baseline."""
    names = ["LSTM", *BASELINES]
    figures = {name: [] for name in names}            # name -> per column, the seeds' values
    for _, folder, _, step in COLUMNS:
        reports = [read(out, seed, folder) for seed in seeds]
        for name in names:
            values = [report["optimizers"][name]["mean"][step] for report in reports]
            figures[name].append([np.nan if v is None else v for v in values])
    head = "| optimizer | " + " | ".join(label for label, *_ in COLUMNS) + " |"
    lines = [f"Mean test loss ({reports[0]['tests']} test problems per seed), mean ± standard "
             f"deviation over seeds {', '.join(map(str, seeds))}; the paper's figure in brackets.",
             "",
             head, "|---|" + "---|" * len(COLUMNS)]
    for name in names:
        cells = [f"{np.mean(v):.4g} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.2g} (~{paper})"
                 for v, paper in zip(figures[name], PAPER[name])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed: the learned optimizer, and the best tuned baseline with its figure.",
              "", "| seed | " + " | ".join(label for label, *_ in COLUMNS) + " | kept epoch |",
              "|---|" + "---|" * (len(COLUMNS) + 1)]
    for i, seed in enumerate(seeds):
        cells = []
        for column in range(len(COLUMNS)):
            lstm = figures["LSTM"][column][i]
            best = min(BASELINES, key=lambda name: figures[name][column][i])
            mark = "**" if lstm < figures[best][column][i] else ""
            cells.append(f"{mark}{lstm:.4g}{mark} ({best} {figures[best][column][i]:.4g})")
        lines.append(f"| {seed} | " + " | ".join(cells) + f" | {kept_epoch(out, seed)} |")
    return "\n".join(lines)


def kept_epoch(out, seed):
    """The epoch of the network that training kept (the best by validation)."""
    _, extra = load_networks(os.path.join(out, f"seed-{seed}", "train", "optimizer.npz"),
                             with_extra=True)
    return int(extra["epoch"])


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=integer(0), nargs="+", default=[0, 1, 2],
                        help="meta-training seeds, each into OUT/seed-S (default 0 1 2)")
    parser.add_argument("--out", default="runs/paper-mnist",
                        help="output folder (default runs/paper-mnist)")
    parser.add_argument("--recipe", default="paper", choices=sorted(TASKS["mnist"].recipes),
                        help="the meta-training recipe (default paper)")
    parser.add_argument("--workers", type=integer(1), default=default_workers(),
                        help="processes for the independent runs, as learning-to-learn's "
                             f"(default: the cores, {default_workers()})")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run them on the Dask cluster at ADDRESS instead")
    args = parser.parse_args(argv)
    output_folder(args.out)
    try:
        for seed in args.seeds:
            run_seed(seed, args.out, args.recipe, args.workers, args.cluster)
    except KeyboardInterrupt as interrupt:
        interrupt.hint = f"what is finished is kept; continue with: {command_line(argv)}"
        raise
    text = table(args.out, args.seeds)
    write_text(os.path.join(args.out, "seeds.md"), text + "\n")
    print(text)


if __name__ == "__main__":
    run_command(main, report=(UsageError, DatasetError))
