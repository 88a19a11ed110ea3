"""The shipped learned optimizer against Adam on models the paper never trained it on.

    python examples/learned_vs_adam.py              # README's example: XOR, a 2-32-2 tanh MLP
    python examples/learned_vs_adam.py --optimizer mnist-paper --seeds 0 1 2 3 4 \\
        --lrs 0.01 0.03 0.1 0.3 1 3 --report 20 100 200 500 1000   # docs/optimizers.md's table
    python examples/learned_vs_adam.py --activation relu        # or sigmoid
    python examples/learned_vs_adam.py --task sine              # a regression
    python examples/learned_vs_adam.py --optimizer quadratic    # another shipped optimizer

The learned optimizer ("mnist", the improved recipe's; "mnist-paper", the paper's) was
meta-trained on trajectories of a 784-20-10 sigmoid MLP on MNIST minibatches (100 steps for
the paper's, 100 to 1,000 for the improved one). Here it trains an MLP, full batch, on one of
two synthetic problems:
- "xor": 256 points drawn from a 2-D standard normal, labelled by whether their coordinates
  have the same sign (not linearly separable), cross-entropy of a 2-H-2 MLP;
- "sine": y = sin(x) on 128 points of [-3, 3], mean squared error of a 1-H-1 MLP.

For each seed (the data and the MLP's initialisation) it prints each optimizer's training loss
at the --report steps (the loss before that step's update), and with several seeds the median
over them. With one seed and one learning rate, the code and its output are README's example.
"""
import os

# One BLAS thread, as the learning-to-learn command and the tests use (optim/learned/cli.py says
# why); set before numpy is imported. The thread count changes how numpy's matmuls round, and
# the learned optimizer's trajectory is sensitive enough for that to show after about 20 steps
# (docs/optimizers.md).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad.cli import ArgumentParser, UsageError, integer, real, run_command  # noqa: E402
from models import MLP  # noqa: E402
from optim import Adam  # noqa: E402
from optim.learned import LearnedOptimizer  # noqa: E402


def problem(task, seed):
    """(inputs, targets, MLP widths without the hidden layer, loss function)."""
    rng = np.random.default_rng(seed)
    if task == "xor":
        x = rng.normal(size=(256, 2)).astype(np.float32)
        y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
        return x, y, (2, 2), F.cross_entropy
    x = np.linspace(-3, 3, 128, dtype=np.float32).reshape(-1, 1)

    def mean_squared_error(prediction, target):
        error = prediction - mg.Tensor(target)
        return (error * error).mean()
    return x, np.sin(x), (1, 1), mean_squared_error


def train(make_optimizer, task, seed, steps, hidden, activation):
    """The training losses f(theta_0), ..., f(theta_{steps-1}) of a fresh MLP."""
    x, y, (n_in, n_out), loss_function = problem(task, seed)
    model = MLP((n_in, hidden, n_out), activation=activation, rng=seed)
    optimizer = make_optimizer(model.parameters())
    losses = []
    for _ in range(steps):
        loss = loss_function(model(mg.Tensor(x)), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        losses.append(loss.item())
    return losses


def describe(losses, report):
    return ", ".join(f"loss {losses[step - 1]:.4f} at step {step}" for step in report)


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("xor", "sine"), default="xor",
                        help="classify XOR of the signs, or fit sin(x) (default xor)")
    parser.add_argument("--activation", choices=("tanh", "sigmoid", "relu"), default="tanh",
                        help="the hidden layer's activation (default tanh)")
    parser.add_argument("--hidden", type=integer(1), default=32, help="hidden units (default 32)")
    parser.add_argument("--optimizer", default="mnist", help="a shipped learned optimizer or "
                        "the path of one written by `learning-to-learn train` (default mnist)")
    parser.add_argument("--lrs", type=real(0, low_open=True), nargs="+", default=[1.0],
                        help="Adam's learning rates (default: 1, the best of 0.01 to 3 for the "
                             "tanh XOR net at steps 100 and 500: docs/optimizers.md)")
    parser.add_argument("--seeds", type=integer(0), nargs="+", default=[0],
                        help="seeds of the data and the initialisation (default 0)")
    parser.add_argument("--report", type=integer(1), nargs="+", default=[20, 100, 500],
                        help="the steps to print the loss at; the run lasts to the last")
    args = parser.parse_args(argv)
    try:
        LearnedOptimizer([mg.Tensor(np.zeros(1), requires_grad=True)], args.optimizer)
    except ValueError as error:
        raise UsageError(f"--optimizer {args.optimizer}: {error}") from None

    optimizers = {"learned": lambda p: LearnedOptimizer(p, args.optimizer)}
    for lr in args.lrs:
        name = "Adam" if len(args.lrs) == 1 else f"Adam lr={lr:g}"
        optimizers[name] = lambda p, lr=lr: Adam(p, lr=lr)
    steps = max(args.report)
    results = {name: [] for name in optimizers}
    for seed in args.seeds:
        for name, make in optimizers.items():
            losses = train(make, args.task, seed, steps, args.hidden, args.activation)
            results[name].append(losses)
            label = name if len(args.seeds) == 1 else f"{name}, seed {seed}"
            print(f"{label}: {describe(losses, args.report)}")
    if len(args.seeds) > 1:
        print(f"median over seeds {args.seeds}:")
        for name, runs in results.items():
            print(f"{name}: {describe(np.median(runs, axis=0), args.report)}")


if __name__ == "__main__":
    run_command(main)
