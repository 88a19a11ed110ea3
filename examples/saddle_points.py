"""Critical points of 2-D test functions, told apart by the Hessian, and how optimizers leave a
saddle.

    python examples/saddle_points.py [--out runs/saddle_points] [--force]

1. Critical points. From each point of a 12 x 12 grid over each function's window, Newton's
   method on the gradient, p ← p − H⁻¹ ∇f (the Hessian H by columns from minigrad.hvp),
   converges to a nearby point where ∇f = 0, whatever its kind: that is what makes it a tool
   to find them. Each point found is classified by the eigenvalues of H there: all positive,
   a minimum; all negative, a maximum; both signs, a saddle.
2. Leaving a saddle. From the first saddle point of each function plus an offset
   r·(0.6, 0.8), each optimizer runs until it is 0.5 away, for r = 1e-2, 1e-5, 1e-8 and 0.
   Near the saddle the gradient is H·offset, tiny: SGD and momentum grow the offset's
   component along the negative-curvature eigenvector by a constant factor per step, so their
   escape time grows like log(1/r). Adam divides by the gradient's own scale, so it moves at
   about lr per step however small the gradient, and escapes from r = 1e-8 nearly as soon as
   from 1e-2. r = 0 starts at the saddle point as Newton found it: on x² − y² exactly (0, 0),
   where the gradient is exactly zero and nothing moves (Adam's step is 0 / (0 + eps));
   elsewhere a gradient of rounding size is left, which SGD may or may not resolve. Newton's
   exact step jumps back onto the saddle; NewtonCG's negative-curvature stop turns it away.

Prints the critical points and the escape steps; saves OUT/saddle_points.png (matplotlib).
"""
import time
from pathlib import Path

import numpy as np

import minigrad as mg
import optim
from minigrad.cli import ArgumentParser, UsageError, output_folder, run_command
from minigrad.io import write_figure
from optimizers_2d import beale, rosenbrock, saddle

PLOT = "saddle_points.png"


def himmelblau(x, y):
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


FUNCTIONS = {               # function, window ((x0, x1), (y0, y1))
    "rosenbrock": (rosenbrock, ((-2.0, 2.0), (-1.0, 3.0))),
    "saddle": (saddle, ((-1.5, 1.5), (-1.5, 1.5))),
    "beale": (beale, ((-0.5, 4.0), (-1.0, 2.0))),
    "himmelblau": (himmelblau, ((-5.0, 5.0), (-5.0, 5.0))),
}
LR = 0.01
ESCAPE_RADIUS = 0.5
OFFSETS = [1e-2, 1e-5, 1e-8, 0.0]
DIRECTION = np.array([0.6, 0.8])
MAX_STEPS = 5000
OPTIMIZERS = {
    "SGD": lambda ps: optim.SGD(ps, lr=LR),
    "SGD momentum 0.9": lambda ps: optim.SGD(ps, lr=LR, momentum=0.9),
    "Adam": lambda ps: optim.Adam(ps, lr=LR),
    "NewtonCG": lambda ps: optim.NewtonCG(ps),
}


def value_gradient_hessian(function, point):
    """f, ∇f and the Hessian (its columns H e_1, H e_2) at `point`, by the engine."""
    p = mg.Tensor(point, requires_grad=True, dtype=np.float64)
    loss = function(p[0], p[1])
    hessian = np.stack([mg.hvp(lambda p: function(p[0], p[1]), [p], [e])[0]
                        for e in np.eye(2)], axis=1)
    return loss.item(), mg.grad(loss, p), hessian


def newton_on_the_gradient(function, start, iterations=50):
    """The critical point Newton's method p ← p − H⁻¹ ∇f reaches from `start`, or None."""
    p = np.array(start, dtype=np.float64)
    for _ in range(iterations):
        _, g, hessian = value_gradient_hessian(function, p)
        if np.linalg.norm(g) < 1e-10:
            return p
        try:
            p = p - np.linalg.solve(hessian, g)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(p)) or np.abs(p).max() > 1e3:
            return None
    return None


def classify(eigenvalues, tol=1e-8):
    if np.all(eigenvalues > tol):
        return "minimum"
    if np.all(eigenvalues < -tol):
        return "maximum"
    if eigenvalues.min() < -tol and eigenvalues.max() > tol:
        return "saddle"
    return "degenerate"


def critical_points(function, window, grid=12):
    """[(point, f, eigenvalues of H, kind)] of the distinct critical points Newton reaches from
    a grid over `window`, inside it."""
    (x0, x1), (y0, y1) = window
    found = []
    for start in [(x, y) for x in np.linspace(x0, x1, grid) for y in np.linspace(y0, y1, grid)]:
        p = newton_on_the_gradient(function, start)
        if p is None or not (x0 <= p[0] <= x1 and y0 <= p[1] <= y1):
            continue
        if any(np.linalg.norm(p - q) < 1e-6 for q, *_ in found):
            continue
        value, _, hessian = value_gradient_hessian(function, p)
        eigenvalues = np.linalg.eigvalsh(hessian)
        found.append((p, value, eigenvalues, classify(eigenvalues)))
    return sorted(found, key=lambda c: (c[3], tuple(np.round(c[0], 6))))


def escape(function, saddle_point, offset, make_optimizer):
    """(steps until the point is ESCAPE_RADIUS from the saddle, or None within MAX_STEPS; path)."""
    p = mg.Tensor(saddle_point + offset * DIRECTION, requires_grad=True, dtype=np.float64)
    optimizer = make_optimizer([p])
    path = [p.data.copy()]
    for step in range(1, MAX_STEPS + 1):
        if isinstance(optimizer, optim.NewtonCG):
            optimizer.step(lambda: function(p[0], p[1]))
        else:
            optimizer.zero_grad()
            function(p[0], p[1]).backward()
            optimizer.step()
        path.append(p.data.copy())
        if np.linalg.norm(p.data - saddle_point) > ESCAPE_RADIUS:
            return step, np.array(path)
    return None, np.array(path)


def exact_newton_escape(function, saddle_point, offset):
    """Steps until Newton's exact step p ← p − H⁻¹ ∇f leaves the saddle, or None: it lands
    on the saddle instead."""
    p = saddle_point + offset * DIRECTION
    for step in range(1, 51):
        _, g, hessian = value_gradient_hessian(function, p)
        if np.linalg.norm(g) == 0:
            return None
        p = p - np.linalg.solve(hessian, g)
        if np.linalg.norm(p - saddle_point) > ESCAPE_RADIUS:
            return step
    return None


def plot(points, paths, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[plot]')")
        return None
    markers = {"minimum": ("*", "green"), "maximum": ("^", "red"), "saddle": ("X", "black"),
               "degenerate": ("o", "grey")}
    fig, axes = plt.subplots(1, len(FUNCTIONS), figsize=(5.5 * len(FUNCTIONS), 5))
    for ax, (name, (function, ((x0, x1), (y0, y1)))) in zip(axes, FUNCTIONS.items()):
        grid_x, grid_y = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        z = function(grid_x, grid_y)
        ax.contour(grid_x, grid_y, np.sign(z) * np.log1p(np.abs(z)), levels=30,
                   cmap="viridis", linewidths=0.6)
        for key, path in paths.get(name, {}).items():
            ax.plot(path[:, 0], path[:, 1], lw=1.2, label=key)
        for p, _, _, kind in points[name]:
            marker, color = markers[kind]
            ax.plot(*p, marker, color=color, ms=11, label=kind)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper right")
        ax.set(xlim=(x0, x1), ylim=(y0, y1), title=name, xlabel="x", ylabel="y")
    fig.tight_layout()
    path = out / PLOT
    write_figure(path, fig, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/saddle_points"),
                        help="folder for the plot OUT/saddle_points.png")
    parser.add_argument("--force", action="store_true", help="replace a plot already in OUT")
    parser.add_argument("--no-plot", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    if not args.no_plot:
        output_folder(args.out)
        if (args.out / PLOT).exists() and not args.force:
            raise UsageError(f"{args.out / PLOT} exists: add --force to replace it, or choose "
                             f"another --out")
    started = time.perf_counter()

    points = {}
    print("Critical points (Newton's method on the gradient from a 12 x 12 grid)")
    print(f"| {'function':10s} | {'point (x, y)':>22s} | {'f':>10s} | {'eigenvalues of H':>22s} "
          f"| {'kind':10s} |")
    print(f"|{'-' * 12}|{'-' * 24}|{'-' * 12}|{'-' * 24}|{'-' * 12}|")
    for name, (function, window) in FUNCTIONS.items():
        points[name] = critical_points(function, window)
        for p, value, eigenvalues, kind in points[name]:
            where = f"({p[0]:.4f}, {p[1]:.4f})"
            spectrum = f"{eigenvalues[0]:.4g}, {eigenvalues[1]:.4g}"
            print(f"| {name:10s} | {where:>22s} | {value:10.4g} | {spectrum:>22s} | {kind:10s} |")

    paths = {}
    print(f"\nLeaving a saddle: steps until {ESCAPE_RADIUS} away, from the saddle plus "
          f"r·(0.6, 0.8); lr {LR} (NewtonCG lr 1); '-': not within {MAX_STEPS} steps")
    header = " | ".join(f"{f'r = {r:g}':>9s}" for r in OFFSETS)
    print(f"| {'saddle':29s} | {'optimizer':28s} | {header} |")
    print(f"|{'-' * 31}|{'-' * 30}|" + "|".join("-" * 11 for _ in OFFSETS) + "|")
    for name in FUNCTIONS:
        saddles = [c for c in points[name] if c[3] == "saddle"]
        if not saddles:
            continue
        saddle_point = saddles[0][0]
        where = f"{name} ({saddle_point[0]:.3f}, {saddle_point[1]:.3f})"
        paths[name] = {}
        for key, make in OPTIMIZERS.items():
            steps = []
            for r in OFFSETS:
                n, path = escape(FUNCTIONS[name][0], saddle_point, r, make)
                steps.append(n)
                if r == OFFSETS[1]:
                    paths[name][key] = path
            cells = " | ".join(f"{'-' if n is None else n:>9}" for n in steps)
            print(f"| {where:29s} | {key:28s} | {cells} |")
        cells = " | ".join(f"{'-' if n is None else n:>9}" for n in
                           [exact_newton_escape(FUNCTIONS[name][0], saddle_point, r)
                            for r in OFFSETS])
        print(f"| {where:29s} | {'Newton, exact step H⁻¹∇f':28s} | {cells} |")
    if not args.no_plot:
        saved = plot(points, paths, args.out)
        if saved is not None:
            print(f"\nplot: {saved} (escape paths from r = {OFFSETS[1]:g})")
    print(f"time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    run_command(main)
