"""Newton-CG beside SGD, momentum and Adam on the paper's quadratics, f(θ) = ||Wθ − y||².

    python examples/newton_quadratic.py [--problems 10] [--dim 10] [--steps 500]

Each problem is one quadratic of models.problems.QuadraticFamily (batch=1, float64), W and y
Gaussian, from its θ_0. Its Hessian 2WᵀW has `dim` eigenvalues, so conjugate gradient solves
the Newton system in at most `dim` Hessian-vector products, and one Newton step lands on the
minimum, f* = 0 (W is square and, almost surely, invertible). The first-order methods get the
learning rate, from a grid of half-decades 1e-4 ... 1, with the lowest median final f over
the problems. Prints, per optimizer, how many problems reached f ≤ TARGET within --steps, the
median steps to it (over those that did), and the medians over all problems of the gradients
and Hessian-vector products (HVPs) spent and of the final f.
"""
import time

import numpy as np

import minigrad as mg
import optim
from minigrad.cli import ArgumentParser, integer, run_command
from models.problems import QuadraticFamily

TARGET = 1e-8
LEARNING_RATES = [10.0 ** e for e in np.arange(-4, 0.01, 0.5)]
FIRST_ORDER = {
    "SGD": lambda ps, lr: optim.SGD(ps, lr=lr),
    "SGD momentum 0.9": lambda ps, lr: optim.SGD(ps, lr=lr, momentum=0.9),
    "Adam": lambda ps, lr: optim.Adam(ps, lr=lr),
}
NEWTON = {
    "Newton-CG": dict(damping=0.0),
    "Newton-CG damped, λ = 0.01": dict(damping=0.01),
    "Newton-CG damped, λ = 1": dict(damping=1.0),
}


def run(problem, theta0, make_optimizer, steps, newton):
    """f after each step (f(θ_0) first), stopping at TARGET, and the optimizer's gradient and
    HVP counts."""
    theta = mg.Tensor(theta0, requires_grad=True, dtype=theta0.dtype)
    optimizer = make_optimizer([theta])
    values = [problem.loss([theta]).item()]
    for _ in range(steps):
        if values[-1] <= TARGET:
            break
        if newton:
            optimizer.step(lambda: problem.loss([theta]))
        else:
            optimizer.zero_grad()
            problem.loss([theta]).backward()
            optimizer.step()
        values.append(problem.loss([theta]).item())
    hvps = optimizer.state[theta]["hvps"] if newton else 0
    return np.array(values), len(values) - 1, hvps


def summary(runs):
    """How many runs reached TARGET, and the medians over runs of: the steps to TARGET (over
    the runs that reached it), gradients, HVPs and the final f."""
    reached = [len(v) - 1 for v, _, _ in runs if v[-1] <= TARGET]
    return (len(reached), int(np.median(reached)) if reached else None,
            int(np.median([n for _, n, _ in runs])), int(np.median([h for _, _, h in runs])),
            float(np.median([v[-1] for v, _, _ in runs])))


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=integer(1), default=10, help="quadratics (default 10)")
    parser.add_argument("--dim", type=integer(1), default=10, help="θ's dimension (default 10)")
    parser.add_argument("--steps", type=integer(1), default=500,
                        help="most steps per run (default 500)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    family = QuadraticFamily(dim=args.dim, batch=1, dtype=np.float64)
    rng = np.random.default_rng(0)
    problems = [family.sample(rng) for _ in range(args.problems)]
    starts = [p.init_params(rng)[0] for p in problems]

    rows = []
    for name, make in FIRST_ORDER.items():
        best = None
        for lr in LEARNING_RATES:
            with np.errstate(all="ignore"):
                runs = [run(p, t, lambda ps: make(ps, lr), args.steps, False)
                        for p, t in zip(problems, starts)]
            result = summary(runs)
            if np.isfinite(result[-1]) and (best is None or result[-1] < best[1][-1]):
                best = (lr, result)
        rows.append((name, f"{best[0]:.3g}", *best[1]))
    for name, settings in NEWTON.items():
        runs = [run(p, t, lambda ps: optim.NewtonCG(ps, **settings), args.steps, True)
                for p, t in zip(problems, starts)]
        rows.append((name, "1", *summary(runs)))

    print(f"{args.problems} quadratics ||Wθ − y||², dim {args.dim}, W and y Gaussian, float64; "
          f"median over problems; target f ≤ {TARGET:g}, at most {args.steps} steps")
    print(f"| {'optimizer':27s} | {'lr':>6s} | {'reached':>7s} | {'steps to target':>15s} "
          f"| {'gradients':>9s} | {'HVPs':>5s} | {'final f':>9s} |")
    print(f"|{'-' * 29}|{'-' * 8}|{'-' * 9}|{'-' * 17}|{'-' * 11}|{'-' * 7}|{'-' * 11}|")
    for name, lr, n_reached, reached, gradients, hvps, final in rows:
        print(f"| {name:27s} | {lr:>6s} | {f'{n_reached}/{args.problems}':>7s} "
              f"| {'-' if reached is None else reached:>15} | {gradients:9d} | {hvps:5d} "
              f"| {final:9.3g} |")
    print(f"time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    run_command(main)
