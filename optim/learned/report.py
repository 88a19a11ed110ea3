"""What a comparison (paper, section 3) writes: compare.json (every figure), compare.md (the
table) and compare.png (the loss curves), all written atomically. compare.json is strict JSON,
which every parser reads: a value that is not finite (a diverged run's loss) is null."""
import json
import os

import numpy as np

from minigrad.io import write_figure, write_text

from .evaluation import diverged, summarize

STYLES = {"SGD": "C0", "RMSprop": "C1", "Adam": "C2", "NAG": "C4"}
LEARNED_STYLES = ("C3", "C5", "C6", "C8", "C9")      # learned optimizers, in the report's order


def _floats(array):
    return [None if not np.isfinite(v) else float(v) for v in array]


def build_report(results, learning_rates, searches, *, task, steps, tests, seed, test_split,
                 optimizers, tune_problems, starts=None):
    """The comparison as plain data, the content of compare.json: the settings (`optimizers`:
    the learned optimizers' files by name), then per optimizer its learning rate (None for a
    learned one), the mean and standard error of the loss at every step, the mean sum of
    losses at steps 1..steps, and the test problems (by index) on which it diverged; then each
    baseline's learning rate search ({lr: mean final loss, None where a validation run
    diverged}). starts: each test problem's f(theta_0) on the last step's data, what a run
    must end below not to count as diverged (default: its own first loss)."""
    starts = [None] * tests if starts is None else starts
    report = {"task": task, "steps": steps, "tests": tests, "seed": seed,
              "test_split": test_split, "tune_problems": tune_problems,
              "learned": optimizers, "optimizers": {},
              "lr_search": {name: {f"{lr:.6g}": s for lr, s in scores.items()}
                            for name, scores in searches.items()}}
    for name, losses in results.items():
        mean, stderr = summarize(losses)
        report["optimizers"][name] = {
            "lr": learning_rates.get(name), "mean": _floats(mean), "stderr": _floats(stderr),
            "sum_mean": _floats([losses[:, 1:].sum(axis=1).mean()])[0],
            "diverged": [i for i, (run, start) in enumerate(zip(losses, starts, strict=True))
                         if diverged(run, start)]}
    return report


def markdown_table(report):
    steps = report["steps"]
    marks = sorted({s for s in (20, 50, 100, 200, steps) if s <= steps})
    split = report["test_split"]
    pool = "" if split == "test" else f" (minibatches from the {split} split)"
    lines = [f"Task `{report['task']}`: mean loss (± standard error) over {report['tests']} test "
             f"problems{pool} at step t; sum = mean of the sum of the losses at steps 1..{steps}. "
             f"Baselines' learning rates tuned on {report['tune_problems']} validation problems "
             f"for {steps} steps.",
             "",
             "| optimizer | lr | " + " | ".join(f"t={s}" for s in marks) + " | sum |",
             "|---|---|" + "---|" * len(marks) + "---|"]
    for name, entry in report["optimizers"].items():
        cells = []
        for s in marks:
            mean, err = entry["mean"][s], entry["stderr"][s]
            cells.append("diverged" if mean is None else f"{mean:.4g} ± {err:.2g}")
        lr = "learned" if entry["lr"] is None else f"{entry['lr']:.3g}"
        total = "diverged" if entry["sum_mean"] is None else f"{entry['sum_mean']:.4g}"
        lines.append(f"| {name} | {lr} | " + " | ".join(cells) + f" | {total} |")
    lines += ["", divergence_note(report)]
    return "\n".join(lines)


def divergence_note(report):
    """The line of compare.md that says on which test problems any optimizer diverged."""
    rule = (f"a loss not finite, or the loss at step {report['steps']} more than 1% above that "
            f"of θ_0 on the same data")
    flagged = [(name, entry["diverged"]) for name, entry in report["optimizers"].items()
               if entry["diverged"]]
    if not flagged:
        return f"Diverged ({rule}): no optimizer on any test problem."
    listed = "; ".join(
        f"{name} on {len(problems)} of {report['tests']} (problem{'s' if len(problems) > 1 else ''} "
        f"{', '.join(map(str, problems[:10]))}{', ...' if len(problems) > 10 else ''})"
        for name, problems in flagged)
    return f"**Diverged** ({rule}): {listed}."


def plot(report, path):
    """The mean loss curves with their standard errors, log scale; returns False (and writes
    nothing) when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4.2))
    steps = np.arange(report["steps"] + 1)
    learned = iter(LEARNED_STYLES)
    for name, entry in report["optimizers"].items():
        mean = np.array([np.nan if v is None else v for v in entry["mean"]])
        err = np.array([np.nan if v is None else v for v in entry["stderr"]])
        is_learned = entry["lr"] is None
        color = next(learned, None) if is_learned else STYLES.get(name)
        label = name if is_learned else f"{name} (lr {entry['lr']:.2g})"
        ax.plot(steps, mean, color=color, label=label, lw=2 if is_learned else 1.2)
        ax.fill_between(steps, mean - err, mean + err, color=color, alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean over test problems)")
    ax.set_title(f"{report['task']}: {report['tests']} test problems")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    write_figure(path, fig, dpi=120)
    plt.close(fig)
    return True


def write_report(report, out):
    """Write out/compare.json and compare.md, print the table, then write compare.png."""
    table = markdown_table(report)
    write_text(os.path.join(out, "compare.json"), json.dumps(report, indent=1, allow_nan=False))
    write_text(os.path.join(out, "compare.md"), table)
    print(table)
    if not plot(report, os.path.join(out, "compare.png")):
        print("matplotlib is not installed (pip install -e '.[plot]'): no compare.png")
