"""What an improved learned optimizer does, step by step, and which Adam it resembles.

    python examples/what_it_learned.py                  # the shipped "mnist", 2 problems, 3,000 steps
    python examples/what_it_learned.py --optimizer runs/lh-0/optimizer.npz --steps 1000
    python examples/what_it_learned.py --steps 10000 --zero-correction-from 1000   # without c

The improved optimizer's update of each coordinate is (docs/optimizers.md)

    delta theta = -lr (s d + c),   s = exp(lr_range tanh a),   c = tanh b,

d Adam's direction, (a, b) the network's output: s is the factor it puts on Adam's step (1/10
to 10) and c its own correction (-1 to 1). This runs the optimizer on MNIST validation problems
(the problems the baselines are tuned on, never test problems) and prints, at the --report
steps, the loss (mean over the 10 steps up to there, for minibatch noise), the median and the
10th and 90th percentiles of s over the coordinates, the median and 90th percentile of |c|, and
the mean of c. Then Adam on the same problems: at lr times the median s of the last reported
step (the Adam the optimizer has become, if s is about constant and c about zero) and at the
--adam-lrs, so the losses can be set side by side. --zero-correction-from T runs the same
network with c set to 0 from step T on, to show what the correction does.
"""
import os

# One BLAS thread, as the learning-to-learn command and the tests use (optim/learned/cli.py says
# why); set before numpy is imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from minigrad.cli import ArgumentParser, UsageError, integer, real, run_command  # noqa: E402
from optim.learned.evaluation import baseline_losses  # noqa: E402
from optim.learned.experiments import problem_source  # noqa: E402
from optim.learned.network import CoordinatewiseLSTM  # noqa: E402
from optim.learned.optimizer import learned_losses, resolve_networks  # noqa: E402
from optim.learned.problem_sets import ProblemRef  # noqa: E402


class Recorder(CoordinatewiseLSTM):
    """The network as it is, keeping the (s, c) of its last step as arrays in `terms`; with
    `zero_correction_from` = T, its correction c is set to 0 from the step that makes
    theta_{T+1} on (counting the steps since `restart`), to see what c does after T."""

    zero_correction_from = None

    def restart(self):
        self.steps = 0

    def forward(self, grad, state):
        out, moment_inputs, state = self.head(grad, state)
        if self.zero_correction_from is not None and self.steps >= self.zero_correction_from:
            out = out * np.array([1, 0], out.dtype)       # b = 0, so c = tanh b = 0
        self.steps += 1
        self.terms = tuple(term.data for term in self.adam_terms(out))
        return self.update_of(out, moment_inputs), state


def recorder(path):
    """A Recorder with the weights of the one network in the optimizer file or name `path`."""
    try:
        networks = resolve_networks(path)
    except (OSError, ValueError) as error:
        raise UsageError(f"--optimizer {path}: {error}") from None
    if len(networks) != 1:
        raise UsageError(f"--optimizer {path}: it holds the networks {sorted(networks)}; this "
                         f"reads an optimizer of one network (trained with --task mnist)")
    (network,) = networks.values()
    if network.config.output != "adam":
        raise UsageError(f"--optimizer {path}: its output is {network.config.output!r}; only "
                         f"the improved recipe's output 'adam' has a scale and a correction "
                         f"to read")
    copy = Recorder(network.config)
    copy.load_state_dict(network.state_dict())
    return copy


def smoothed(losses, step):
    """The mean loss over the 10 steps up to `step` (fewer at the start)."""
    return float(np.mean(losses[max(0, step - 9):step + 1]))


def run(network, problem, theta0, steps, report):
    """(losses f(theta_0..theta_steps), {t: (s, c) of the update made at step t - 1, which
    gives theta_t} for t in report): the learned optimizer's run, by `learned_losses`."""
    terms = {}

    def keep_terms(t):
        if t in report:
            terms[t] = network.terms

    network.restart()
    losses = learned_losses({"all": network}, problem, theta0, steps, after_step=keep_terms)
    return losses, terms


def describe(s, c):
    q10, q50, q90 = np.percentile(s, (10, 50, 90))
    return (f"s {q50:.3f} ({q10:.3f}-{q90:.3f})   |c| {np.median(np.abs(c)):.4f} "
            f"(90%: {np.percentile(np.abs(c), 90):.4f})   mean c {c.mean():+.4f}")


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="mnist", help="a shipped learned optimizer or "
                        "the path of one written by `learning-to-learn train --task mnist "
                        "--recipe improved` (default mnist)")
    parser.add_argument("--problems", type=integer(1), default=2,
                        help="MNIST validation problems to run (default 2)")
    parser.add_argument("--seed", type=integer(0), default=0,
                        help="which validation problems: those `compare --seed` tunes on "
                             "(default 0)")
    parser.add_argument("--steps", type=integer(1), default=3000, help="steps (default 3000)")
    parser.add_argument("--report", type=integer(1), nargs="+",
                        default=[10, 100, 300, 1000, 2000, 3000],
                        help="the steps to report at (those past --steps are left out)")
    parser.add_argument("--adam-lrs", type=real(0, low_open=True), nargs="*",
                        default=[0.0215, 0.00464], help="Adam's learning rates to run beside "
                        "it (default: 0.0215 and 0.00464, tuned for 100 and 10,000 steps on "
                        "seed 0's validation problems)")
    parser.add_argument("--zero-correction-from", type=integer(0), metavar="T",
                        help="set the correction c to 0 from step T on (0: throughout), to "
                             "see what it does (default: leave it)")
    args = parser.parse_args(argv)
    network = recorder(args.optimizer)
    network.zero_correction_from = args.zero_correction_from
    report = sorted({t for t in args.report if t <= args.steps})
    if not report:
        raise UsageError(f"--report: no step within --steps {args.steps}")
    config = network.config
    refs = ProblemRef.all(problem_source("mnist", "validation", args.problems, args.seed, "tune"))
    print(f"{args.optimizer}: update -lr (s d + c), lr {config.lr:g}, s in "
          f"[{np.exp(-config.lr_range):.3g}, {np.exp(config.lr_range):.3g}]"
          + ("" if args.zero_correction_from is None
             else f", c set to 0 from step {args.zero_correction_from}")
          + f"; {args.problems} "
          f"MNIST validation problems (seed {args.seed}), {args.steps} steps")
    learned, last_scale = [], []
    for i, ref in enumerate(refs):
        problem, theta0 = ref.pair()
        losses, terms = run(network, problem, theta0, args.steps, report)
        learned.append(losses)
        print(f"\nproblem {i}:")
        for t in report:
            if t in terms:
                print(f"  step {t:>6}: loss {smoothed(losses, t):.4f}   {describe(*terms[t])}")
            else:
                print(f"  step {t:>6}: loss not finite")
        if report[-1] in terms:
            last_scale.append(np.median(terms[report[-1]][0]))
    lrs = list(args.adam_lrs)
    if last_scale:
        lrs.insert(0, float(config.lr * np.mean(last_scale)))
    rows = {"learned": learned}
    for lr in lrs:
        rows[f"Adam lr {lr:.3g}"] = [baseline_losses("Adam", lr, *ref.pair(), args.steps)
                                     for ref in refs]
    print(f"\nloss (mean over the problems of the mean over the 10 steps up to t); Adam lr "
          f"{lrs[0]:.3g} is lr times the median s at step {report[-1]}" if last_scale else "")
    print("| optimizer | " + " | ".join(f"t={t}" for t in report) + " |")
    print("|---|" + "---|" * len(report))
    for name, runs in rows.items():
        cells = [np.mean([smoothed(losses, t) for losses in runs]) for t in report]
        print(f"| {name} | " + " | ".join(f"{x:.4g}" for x in cells) + " |")


if __name__ == "__main__":
    run_command(main)
