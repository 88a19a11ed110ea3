"""Every classic optimizer on three 2-D test functions, from the same start.

    python examples/optimizers_2d.py [--steps 500] [--out runs/optimizers_2d]

The functions are built from minigrad Tensor ops and differentiated by `backward()`; the
optimizers are the torch.optim-style classes of `optim`. Prints, per function and optimizer,
the first step at which the function reached its target and the final value, and saves contour
plots with each optimizer's path (needs matplotlib).

- Rosenbrock (1 − x)² + 100 (y − x²)²: a curved, narrow valley; minimum 0 at (1, 1).
- Saddle x² − y², started just off the saddle point at the origin: how fast does each method
  leave along y, where the gradient starts almost at zero?
- Beale (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²: flat plateaus and steep
  walls; minimum 0 at (3, 0.5).
"""
import time
from pathlib import Path

import numpy as np

import minigrad as mg
import optim
from minigrad.cli import ArgumentParser, UsageError, integer, output_folder, run_command
from minigrad.io import write_figure

PLOT = "optimizers_2d.png"


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def saddle(x, y):
    return x ** 2 - y ** 2


def beale(x, y):
    return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
            + (2.625 - x + x * y ** 3) ** 2)


# Each problem: its function, start, target ("reached" when f <= target), plot window, and a
# learning rate per optimizer. The SGD family shares one rate per problem, so that the
# momentum variants are compared at equal lr (heavy ball and Nesterov then take steps about
# 1 / (1 - 0.9) = 10 times larger, EWMA momentum steps of SGD's size). On the two valleys it is
# just below plain SGD's stability limit 2 / (largest curvature) (about 2 / 1000 at
# Rosenbrock's minimum); the adaptive rates were picked from the grid 1e-4, 3e-4, ..., 1, 3
# as ones that reach the target and stay there. On the saddle every optimizer gets lr = 0.01.
PROBLEMS = {
    "rosenbrock": dict(
        function=rosenbrock, start=(-1.2, 1.0), target=1e-3, window=((-2.0, 2.0), (-1.0, 3.0)),
        minimum=(1.0, 1.0),
        lr=dict(sgd=1e-3, heavy_ball=1e-3, ewma=1e-3, nesterov=1e-3, adagrad=1.0, rmsprop=3e-3,
                adam=0.1, adamw=0.1)),
    "saddle": dict(
        function=saddle, start=(1.0, 1e-3), target=-1.0, window=((-1.5, 1.5), (-1.5, 1.5)),
        minimum=None,
        lr=dict(sgd=0.01, heavy_ball=0.01, ewma=0.01, nesterov=0.01, adagrad=0.01, rmsprop=0.01,
                adam=0.01, adamw=0.01)),
    "beale": dict(
        function=beale, start=(1.0, 1.5), target=1e-3, window=((-0.5, 4.0), (-1.0, 2.0)),
        minimum=(3.0, 0.5),
        lr=dict(sgd=1e-3, heavy_ball=1e-3, ewma=1e-3, nesterov=1e-3, adagrad=1.0, rmsprop=0.01,
                adam=0.1, adamw=0.1)),
}

# A run stops once the point is this far out (on the saddle it is escaping, not failing).
FAR = 1e6

OPTIMIZERS = {
    "sgd": ("SGD", lambda ps, lr: optim.SGD(ps, lr=lr)),
    "heavy_ball": ("SGD momentum 0.9 (heavy ball)", lambda ps, lr: optim.SGD(ps, lr, momentum=0.9)),
    "ewma": ("SGD momentum 0.9, dampening 0.9 (EWMA)",
             lambda ps, lr: optim.SGD(ps, lr, momentum=0.9, dampening=0.9)),
    "nesterov": ("SGD Nesterov 0.9", lambda ps, lr: optim.SGD(ps, lr, momentum=0.9, nesterov=True)),
    "adagrad": ("Adagrad", lambda ps, lr: optim.Adagrad(ps, lr=lr)),
    "rmsprop": ("RMSprop", lambda ps, lr: optim.RMSprop(ps, lr=lr)),
    "adam": ("Adam", lambda ps, lr: optim.Adam(ps, lr=lr)),
    "adamw": ("AdamW (weight_decay 0.01)", lambda ps, lr: optim.AdamW(ps, lr=lr)),
}


def minimise(function, start, make_optimizer, lr, steps):
    """Run one optimizer; the path of (x, y), shape (n + 1, 2), and f along it, where n is
    `steps`, or fewer if the point went further than FAR from the origin."""
    x = mg.Tensor(start[0], requires_grad=True, dtype=np.float64)
    y = mg.Tensor(start[1], requires_grad=True, dtype=np.float64)
    opt = make_optimizer([x, y], lr)
    path, values = [start], []
    for _ in range(steps):
        opt.zero_grad()
        loss = function(x, y)
        loss.backward()
        opt.step()
        values.append(loss.item())
        path.append((x.item(), y.item()))
        if max(abs(x.item()), abs(y.item())) > FAR:
            break
    values.append(function(x, y).item())
    return np.array(path), np.array(values)


def first_step_reaching(values, target):
    """The first step after which f <= target, or None."""
    reached = np.flatnonzero(values <= target)
    return int(reached[0]) if reached.size else None


def plot(results, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib, or "
              "pip install -e '.[plot]')")
        return None
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5.5))
    for ax, (name, runs) in zip(axes, results.items()):
        problem = PROBLEMS[name]
        (x0, x1), (y0, y1) = problem["window"]
        grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        z = problem["function"](grid_x, grid_y)
        if name == "saddle":
            ax.contour(grid_x, grid_y, z, levels=25, cmap="coolwarm", linewidths=0.6)
        else:
            levels = np.logspace(-3, np.log10(z.max()), 25)
            ax.contour(grid_x, grid_y, z, levels=levels, norm="log", cmap="viridis",
                       linewidths=0.6)
        for key, (path, _) in runs.items():
            ax.plot(path[:, 0], path[:, 1], lw=1.2, label=OPTIMIZERS[key][0])
        ax.plot(*problem["start"], "ko", ms=5)
        if problem["minimum"] is not None:
            ax.plot(*problem["minimum"], "k*", ms=12)
        ax.set(xlim=(x0, x1), ylim=(y0, y1), title=name, xlabel="x", ylabel="y")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path = out / PLOT
    write_figure(path, fig, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=integer(1), default=2000,
                        help="steps per optimizer and function (default 2000)")
    parser.add_argument("--out", type=Path, default=Path("runs/optimizers_2d"),
                        help="folder for the plot OUT/optimizers_2d.png")
    parser.add_argument("--force", action="store_true", help="replace a plot already in OUT")
    args = parser.parse_args(argv)
    output_folder(args.out)
    if (args.out / PLOT).exists() and not args.force:
        raise UsageError(f"{args.out / PLOT} exists: add --force to replace it, or choose "
                         f"another --out")

    started = time.perf_counter()
    results = {}
    for name, problem in PROBLEMS.items():
        results[name] = {}
        print(f"\n{name}: start {problem['start']}, target f <= {problem['target']:g}, "
              f"{args.steps} steps")
        print(f"| {'optimizer':40s} | {'lr':>7s} | {'steps to target':>15s} | {'final f':>11s} "
              f"| {'final (x, y)':>22s} |")
        print(f"|{'-' * 42}|{'-' * 9}|{'-' * 17}|{'-' * 13}|{'-' * 24}|")
        for key, (label, make_optimizer) in OPTIMIZERS.items():
            lr = problem["lr"][key]
            path, values = minimise(problem["function"], problem["start"], make_optimizer, lr,
                                    args.steps)
            results[name][key] = (path, values)
            reached = first_step_reaching(values, problem["target"])
            final = f"({path[-1, 0]:.3g}, {path[-1, 1]:.3g})"
            stopped = "*" if len(values) <= args.steps else " "
            print(f"| {label:40s} | {lr:7g} | {'-' if reached is None else reached:>15} "
                  f"| {values[-1]:10.4g}{stopped} | {final:>22s} |")
    print(f"\n* stopped early: the point went further than {FAR:g} from the origin")
    saved = plot(results, args.out)
    if saved is not None:
        print(f"\nplot: {saved}")
    print(f"time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    run_command(main)
