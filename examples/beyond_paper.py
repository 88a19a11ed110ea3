"""Beyond the paper: the improved learned optimizer (`--recipe improved`) against the paper's
and the tuned baselines, from 100 to 10,000 steps and on the generalisation nets, for several
meta-training seeds; the README's "Beyond the paper" tables and figures.

    python examples/beyond_paper.py --seeds 0 1 2 --out runs/beyond
    python examples/beyond_paper.py --seeds 0 1 2 --out runs/beyond --long 10000 5

For each seed S, into OUT/seed-S/:

    learning-to-learn train --task mnist --recipe improved --seed S --out OUT/seed-S/improved
    learning-to-learn train --task mnist --recipe paper --seed S --out OUT/seed-S/paper
    learning-to-learn compare --task mnist --steps H --tests N --seed S --out OUT/seed-S/compare-H \\
        --optimizer paper=OUT/seed-S/paper/optimizer.npz improved=OUT/seed-S/improved/optimizer.npz
        (for each horizon H of --horizons, N of --tests: 100, 200 and 1000 steps on 100, 100
        and 20 test problems by default, the baselines tuned for each horizon)
    learning-to-learn compare --task T --steps 100 --seed S --out OUT/seed-S/T --optimizer ...
        (T = mnist-40, mnist-2layer, mnist-relu: the optimizers trained on the base net)

`--long STEPS TESTS` (after that) runs the longest comparison once rather than once per seed:
on the first seed's test problems, with the baselines tuned for STEPS steps on its validation
problems, every seed's improved optimizer (improved-S) and paper optimizer (paper-S) side by
side, in OUT/long-STEPS; tuning the baselines for 10,000 steps is most of its cost.

`--ablations` runs the ablation instead: for each seed, the improved recipe with each of its
ingredients taken out in turn (`optim.learned.tasks.ABLATIONS`), trained into
OUT/seed-S/ablations/without-X, and compared with the improved optimizer of the seed (trained
as above) at 100 steps (100 test problems), 1,000 steps (20) and on the ReLU net (100 steps), in
OUT/seed-S/ablations/{mnist-100, mnist-1000, mnist-relu-100}. `--ablations X Y` takes out only
the ingredients named, one at a time (the comparisons then hold only those; in the same OUT, a
later call with other ingredients stops with an error at its first comparison, which would
replace one already run).

`--paper S=FILE` takes seed S's paper optimizer from FILE instead of training it (e.g.
`--paper 0=mnist-paper`, the shipped one, which is that run), and `--improved S=FILE` likewise
the improved one (`--improved 0=mnist`, shipped, is seed 0's); `--without-paper` leaves the
paper's out for the seeds not named there (the comparisons then hold the improved one and the
baselines). What is finished is kept, as with `--resume`: training resumes from its
checkpoint, a comparison with the same settings is not run again. So an interrupted run
continues where it stopped, seeds can run in separate processes, and a last call with all of
them writes the tables (OUT/beyond.md, also printed) and the figures (OUT/horizons.png: the
long comparison if it has been run, else the first seed's longest; OUT/relu.png) from whatever
has been run.
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
from minigrad.io import write_figure, write_text  # noqa: E402
from models.data import DatasetError  # noqa: E402
from optim.learned import experiments  # noqa: E402
from optim.learned.evaluation import BASELINES  # noqa: E402
from optim.learned.parallel import default_workers  # noqa: E402
from optim.learned.runs import comparison_folder  # noqa: E402
from optim.learned.tasks import ABLATIONS  # noqa: E402

HORIZONS = (100, 200, 1000)
TESTS = (100, 100, 20)
LONG = (10000, 5)           # --long's steps and test problems in the README's command
GENERALISATION = ("mnist-40", "mnist-2layer", "mnist-relu")
LEARNED = ("paper", "improved")
ABLATION_COMPARISONS = (("step 100", "mnist", 100, 100), ("step 1000", "mnist", 1000, 20),
                        ("ReLU net, step 100", "mnist-relu", 100, 100))


def compare_once(task, optimizers, folder, *, steps, tests, seed, runner, tune_problems=None):
    """experiments.compare into `folder`, unless it already holds this comparison."""
    paths, settings = experiments.comparison_settings(task, optimizers, steps=steps, tests=tests,
                                                      seed=seed, test_split="test",
                                                      tune_problems=tune_problems)
    if comparison_folder(folder, settings, resume=True) == "finished":
        print(f"{folder}: finished, kept")
        return
    experiments.compare(task, paths, folder, steps=steps, tests=tests, seed=seed,
                        tune_problems=tune_problems, force=True, runner=runner)


def run_seed(seed, out, paper, horizons, tests, runner, without_paper=False, improved=None):
    """Train (or resume) both optimizers of one seed, except one given as a file (`paper`,
    `improved`), and the paper's if `paper` is None and `without_paper`; then every comparison
    not yet done."""
    folder = os.path.join(out, f"seed-{seed}")
    start = time.perf_counter()
    optimizers = {"paper": paper, "improved": improved}
    if improved is None:
        optimizers["improved"] = train_improved(seed, folder, runner)
    if paper is None and without_paper:
        del optimizers["paper"]
    elif paper is None:
        experiments.train("mnist", os.path.join(folder, "paper"), recipe="paper", seed=seed,
                          resume=True, runner=runner)
        optimizers["paper"] = os.path.join(folder, "paper", "optimizer.npz")
    for steps, count in zip(horizons, tests):
        compare_once("mnist", optimizers, os.path.join(folder, f"compare-{steps}"), steps=steps,
                     tests=count, seed=seed, runner=runner)
    for task in GENERALISATION:
        compare_once(task, optimizers, os.path.join(folder, task), steps=100, tests=100,
                     seed=seed, runner=runner)
    print(f"seed {seed}: {time.perf_counter() - start:.0f} s in all")


def long_optimizers(out, seeds, paper, improved):
    """{improved-S: file, paper-S: file} of the seeds whose optimizers are given or trained."""
    found = {}
    for seed in seeds:
        trained = os.path.join(out, f"seed-{seed}", "improved", "optimizer.npz")
        if improved.get(seed) or os.path.exists(trained):
            found[f"improved-{seed}"] = improved.get(seed) or trained
        trained = os.path.join(out, f"seed-{seed}", "paper", "optimizer.npz")
        if paper.get(seed) or os.path.exists(trained):
            found[f"paper-{seed}"] = paper.get(seed) or trained
    return found


def run_long(out, seeds, optimizers, steps, tests, runner, tune_problems=None):
    """The comparison at `steps` of every optimizer in `optimizers` on seeds[0]'s test problems,
    the baselines tuned on `tune_problems` validation problems (default the task's), into
    OUT/long-STEPS."""
    if not any(name.startswith("improved-") for name in optimizers):
        raise UsageError(f"--long: no improved optimizer of seeds {seeds} is trained yet "
                         f"(OUT/seed-S/improved/optimizer.npz) or given (--improved)")
    start = time.perf_counter()
    compare_once("mnist", optimizers, os.path.join(out, f"long-{steps}"), steps=steps,
                 tests=tests, seed=seeds[0], runner=runner, tune_problems=tune_problems)
    print(f"{steps} steps: {time.perf_counter() - start:.0f} s in all")


def long_table(out, steps):
    """The long comparison: each learned optimizer's mean test loss at `steps` per seed and
    their mean ± standard error over seeds; each baseline's mean ± standard error over the test
    problems; and the highest mean loss along the way (a divergence shows there)."""
    report = read_report(os.path.join(out, f"long-{steps}"))
    title = f"Mean test loss at step {steps} (baselines tuned for it)"
    if report is None:
        return f"{title}: not run (--long)."
    entries = report["optimizers"]
    lines = [f"{title}, on seed {report['seed']}'s {report['tests']} test problems; the baselines "
             f"tuned on {report['tune_problems']} validation problems", "",
             f"| optimizer | step {steps} | highest mean loss on the way |", "|---|---|---|"]

    def highest(name):
        mean = np.array([np.nan if v is None else v for v in entries[name]["mean"]])
        return "diverged" if np.isnan(mean).any() else f"{mean.max():.4g}"

    for learned in LEARNED:
        names = sorted(name for name in entries if name.startswith(f"{learned}-"))
        for name in names:
            lines.append(f"| {name} | {cell([final(report, name, steps)])} | {highest(name)} |")
        if len(names) > 1:
            lines.append(f"| {learned}, mean over seeds | "
                         f"{cell([final(report, name, steps) for name in names])} | |")
    for name in BASELINES:
        error = entries[name]["stderr"][steps]
        lines.append(f"| {name} (lr {entries[name]['lr']:.2g}) | {final(report, name, steps):.4g}"
                     f" ± {error:.2g} | {highest(name)} |")
    lines += ["", "(± over the seeds for the mean of the learned ones, over the test problems for "
              "the baselines)"]
    return "\n".join(lines)


def train_improved(seed, folder, runner):
    """Train (or resume) the improved recipe of `seed` into folder/improved; its optimizer."""
    experiments.train("mnist", os.path.join(folder, "improved"), recipe="improved", seed=seed,
                      resume=True, runner=runner)
    return os.path.join(folder, "improved", "optimizer.npz")


def run_ablation(seed, out, runner, improved=None, ingredients=None):
    """Train (or resume) the improved recipe (unless `improved` gives its file) and each
    ablation of it for one seed (those of `ingredients`, default all of ABLATIONS), then every
    comparison of ABLATION_COMPARISONS not yet done (all of them side by side, so the baselines
    are tuned once per comparison)."""
    folder = os.path.join(out, f"seed-{seed}")
    start = time.perf_counter()
    optimizers = {"improved": improved or train_improved(seed, folder, runner)}
    for ingredient in ingredients or ABLATIONS:
        name = f"without-{ingredient}"
        experiments.train("mnist", os.path.join(folder, "ablations", name),
                          recipe=f"improved-{name}", seed=seed, resume=True, runner=runner)
        optimizers[name] = os.path.join(folder, "ablations", name, "optimizer.npz")
    for _, task, steps, count in ABLATION_COMPARISONS:
        compare_once(task, optimizers, os.path.join(folder, "ablations", f"{task}-{steps}"),
                     steps=steps, tests=count, seed=seed, runner=runner)
    print(f"seed {seed}, ablation: {time.perf_counter() - start:.0f} s in all")


def ablation_table(out, seeds):
    """One row per optimizer of the ablation (and the lowest tuned baseline of each seed), a
    column per comparison: the mean over seeds of each seed's mean test loss, ± standard error."""
    found = [(label, steps, reports(out, seeds, os.path.join("ablations", f"{task}-{steps}")))
             for label, task, steps, _ in ABLATION_COMPARISONS]
    found = [(label, steps, runs) for label, steps, runs in found if runs]
    title = ("The improved recipe with each ingredient taken out (mean test loss; the lowest "
             "tuned baseline is that of each seed)")
    if not found:
        return f"{title}: nothing run yet."
    lines = [title, "", "| optimizer | " + " | ".join(
        f"{label} (seeds {', '.join(map(str, sorted(runs)))})" for label, _, runs in found) + " |",
             "|---|" + "---|" * len(found)]
    ablated = [ingredient for ingredient in ABLATIONS
               if any(f"without-{ingredient}" in report["optimizers"]
                      for _, _, runs in found for report in runs.values())]
    for name in ("improved", *(f"without-{ingredient}" for ingredient in ablated)):
        lines.append(f"| {name} | " + " | ".join(
            cell([final(report, name, steps) for report in runs.values()])
            for _, steps, runs in found) + " |")
    lines.append("| lowest tuned baseline | " + " | ".join(
        cell([min(final(report, name, steps) for name in BASELINES) for report in runs.values()])
        + " (" + ", ".join(sorted({min(BASELINES, key=lambda name: final(report, name, steps))
                                   for report in runs.values()})) + ")"
        for _, steps, runs in found) + " |")
    lines += ["", "What each ablation takes out:", ""]
    lines += [f"- without-{ingredient}: {ABLATIONS[ingredient]}" for ingredient in ablated]
    return "\n".join(lines)


def read_report(folder):
    """The content of folder/compare.json, or None if it has none."""
    path = os.path.join(folder, "compare.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def reports(out, seeds, folder):
    """{seed: compare.json of OUT/seed-S/folder} for the seeds that have it."""
    found = {seed: read_report(os.path.join(out, f"seed-{seed}", folder)) for seed in seeds}
    return {seed: report for seed, report in found.items() if report is not None}


def final(report, name, step):
    if name not in report["optimizers"]:
        return None
    value = report["optimizers"][name]["mean"][step]
    return np.nan if value is None else value


def cell(values):
    """mean ± standard error over seeds (the value alone for one seed)."""
    values = [v for v in values if v is not None]      # None: not in that comparison
    if not values:
        return ""
    values = np.array(values, dtype=float)
    if np.isnan(values).any():
        return "diverged"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{values.mean():.4g} ± {values.std(ddof=1) / np.sqrt(len(values)):.2g}"


def table(out, seeds, columns, title):
    """One row per optimizer, a column per (label, folder, step): the mean over seeds of each
    seed's mean test loss, ± standard error over seeds; then, per seed, which optimizer is
    lowest."""
    found = [(label, step, reports(out, seeds, folder)) for label, folder, step in columns]
    found = [(label, step, runs) for label, step, runs in found if runs]
    if not found:
        return f"{title}: nothing run yet."
    lines = [title, "", "| optimizer | " + " | ".join(
        f"{label} (seeds {', '.join(map(str, sorted(runs)))})" for label, _, runs in found) + " |",
             "|---|" + "---|" * len(found)]
    for name in (*LEARNED, *BASELINES):
        lines.append(f"| {name} | " + " | ".join(
            cell([final(report, name, step) for report in runs.values()])
            for _, step, runs in found) + " |")
    lines += ["", "Per seed, the improved optimizer's figure and the lowest tuned baseline's "
              "(bold where the improved one is lower):", "",
              "| seed | " + " | ".join(label for label, *_ in found) + " |",
              "|---|" + "---|" * len(found)]
    for seed in seeds:
        cells = []
        for _, step, runs in found:
            if seed not in runs:
                cells.append("")
                continue
            report = runs[seed]
            mine = final(report, "improved", step)
            best = min(BASELINES, key=lambda name: final(report, name, step))
            mark = "**" if mine < final(report, best, step) else ""
            cells.append(f"{mark}{mine:.4g}{mark} ({best} {final(report, best, step):.4g})")
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(report, path, title):
    """Loss against step on log-log axes, every optimizer of one comparison (a compare.json's
    content); False if there is none, or no matplotlib."""
    if report is None:
        return False
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {"paper": "C3", "improved": "C5", "SGD": "C0", "RMSprop": "C1", "Adam": "C2",
              "NAG": "C4"}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, entry in report["optimizers"].items():
        mean = np.array([np.nan if v is None else v for v in entry["mean"]])
        steps = np.arange(len(mean))
        kind, _, seed = name.partition("-")      # improved-1: the improved one of seed 1
        style = ["-", "--", ":", "-."][int(seed) % 4] if seed.isdigit() else "-"
        label = (name if entry["lr"] is None
                 else f"{name} (lr {entry['lr']:.2g}, tuned for {report['steps']})")
        ax.plot(steps[1:], mean[1:], color=colors.get(kind), ls=style, label=label,
                lw=2 if entry["lr"] is None else 1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean over test problems)")
    ax.set_title(f"{title}, seed {report['seed']}'s {report['tests']} test problems")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    write_figure(path, fig, dpi=120)
    plt.close(fig)
    return True


def longest(out, seed, folders):
    """The compare.json of the longest comparison among OUT/seed-S/folder that has been run,
    or None."""
    runs = [r for r in (reports(out, [seed], folder).get(seed) for folder in folders) if r]
    return max(runs, key=lambda r: r["steps"]) if runs else None


def given_optimizers(option, values, example):
    """The S=FILE values of `option` (--paper, --improved) as {seed: FILE}."""
    chosen = {}
    for value in values or ():
        seed, sep, path = value.partition("=")
        if not sep or not seed.isdigit() or not path:
            raise UsageError(f"{option} {value}: expected SEED=FILE, e.g. {example}")
        chosen[int(seed)] = experiments.optimizer_path(path)
    return chosen


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=integer(0), nargs="+", default=[0, 1, 2],
                        help="meta-training seeds, each into OUT/seed-S (default 0 1 2)")
    parser.add_argument("--out", default="runs/beyond", help="output folder (default runs/beyond)")
    parser.add_argument("--paper", nargs="+", metavar="S=FILE",
                        help="seed S's paper optimizer from FILE (or a shipped name) instead of "
                             "training it")
    parser.add_argument("--improved", nargs="+", metavar="S=FILE",
                        help="seed S's improved optimizer from FILE (or a shipped name) instead "
                             "of training it")
    parser.add_argument("--without-paper", action="store_true",
                        help="compare only the improved optimizer for the seeds that --paper "
                             "does not name, instead of training the paper's")
    parser.add_argument("--horizons", type=integer(1), nargs="+", default=list(HORIZONS),
                        help=f"the comparisons' lengths (default {' '.join(map(str, HORIZONS))})")
    parser.add_argument("--tests", type=integer(1), nargs="+", default=list(TESTS),
                        help="test problems at each horizon (default "
                             f"{' '.join(map(str, TESTS))})")
    parser.add_argument("--ablations", nargs="*", metavar="INGREDIENT",
                        help="run the ablation of the improved recipe for each seed instead of "
                             "the comparisons at --horizons and on the generalisation nets: "
                             "every ingredient, or those named (of "
                             f"{', '.join(ABLATIONS)})")
    parser.add_argument("--long", type=integer(1), nargs=2, metavar=("STEPS", "TESTS"),
                        help="run one comparison at STEPS steps on TESTS test problems of the "
                             "first seed, every seed's optimizers side by side, into "
                             "OUT/long-STEPS, instead of the comparisons per seed (e.g. 10000 5)")
    parser.add_argument("--long-tune-problems", type=integer(1), metavar="N",
                        help="validation problems for the baselines' tuning in the --long "
                             "comparison (default: the task's, 8)")
    parser.add_argument("--report-only", action="store_true",
                        help="only write the tables and figures of what has been run")
    parser.add_argument("--workers", type=integer(1), default=default_workers(),
                        help="processes for the independent runs and the side-by-side "
                             f"trajectories (default: the cores, {default_workers()})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.ablations or () if name not in ABLATIONS]
    if unknown:
        raise UsageError(f"--ablations {' '.join(unknown)}: the improved recipe's ingredients "
                         f"are {', '.join(ABLATIONS)}")
    if args.long and args.ablations is not None:
        raise UsageError("--long and --ablations are two different runs: give one of them")
    if len(args.tests) != len(args.horizons):
        raise UsageError(f"--tests gives {len(args.tests)} counts for {len(args.horizons)} "
                         f"--horizons")
    paper = given_optimizers("--paper", args.paper, "0=mnist-paper")
    improved = given_optimizers("--improved", args.improved, "0=mnist")
    output_folder(args.out)
    if not args.report_only:
        try:
            with experiments.open_runner(args.workers) as runner:
                for seed in ([] if args.long else args.seeds):
                    if args.ablations is not None:
                        run_ablation(seed, args.out, runner, improved.get(seed), args.ablations)
                    else:
                        run_seed(seed, args.out, paper.get(seed), args.horizons, args.tests,
                                 runner, args.without_paper, improved.get(seed))
                if args.long:
                    run_long(args.out, args.seeds,
                             long_optimizers(args.out, args.seeds, paper, improved),
                             *args.long, runner, args.long_tune_problems)
        except KeyboardInterrupt as interrupt:
            interrupt.hint = f"what is finished is kept; continue with: {command_line(argv)}"
            raise
    horizons = table(args.out, args.seeds,
                     [(f"step {h}", f"compare-{h}", h) for h in args.horizons],
                     "Mean test loss at the end of each horizon (baselines tuned for it)")
    generalisation = table(args.out, args.seeds,
                           [(task, task, 100) for task in GENERALISATION],
                           "Mean test loss at step 100 on the nets of the paper's figure 5")
    long = long_table(args.out, args.long[0] if args.long else LONG[0])
    text = "\n\n".join([horizons, long, generalisation, ablation_table(args.out, args.seeds)])
    write_text(os.path.join(args.out, "beyond.md"), text + "\n")
    print(text)
    seed = args.seeds[0]
    long = read_report(os.path.join(args.out, f"long-{args.long[0] if args.long else LONG[0]}"))
    plot_curves(long or longest(args.out, seed, [f"compare-{h}" for h in args.horizons]),
                os.path.join(args.out, "horizons.png"), "MNIST")
    plot_curves(longest(args.out, seed, ["mnist-relu"]), os.path.join(args.out, "relu.png"),
                "ReLU net")


if __name__ == "__main__":
    run_command(main, report=(UsageError, DatasetError))
