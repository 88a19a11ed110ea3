"""Reproduce "Learning to learn by gradient descent by gradient descent" (Andrychowicz et al. 2016).

    learning-to-learn train --task quadratic --out runs/quadratic/train
    learning-to-learn compare --task quadratic --optimizer runs/quadratic/train/optimizer.npz \\
        --steps 100 --tests 100 --seed 0 --out runs/quadratic/compare-100
    learning-to-learn reproduce --task mnist --out runs/mnist
    learning-to-learn compare --task mnist --steps 200 --out runs/mnist/both-200 \\
        --optimizer seed0=runs/mnist/train/optimizer.npz seed1=runs/mnist-1/train/optimizer.npz

(`python examples/learning_to_learn.py ...` and `python -m optim.learned.cli ...` run the same
command.)

train      meta-trains the LSTM optimizer on the task's family with a recipe (default: paper);
           writes DIR/optimizer.npz (the best network by validation) and DIR/checkpoint.npz (run
           again with --resume to continue).
compare    tunes the baselines' learning rates on validation problems, runs every optimizer (one
           or more learned ones, and the baselines) on the same fresh test problems, and writes
           DIR/compare.json, compare.md and compare.png.
reproduce  train into DIR/train, then compare into DIR/compare-STEPS with the paper's settings.

Tasks (the paper's section 3): quadratic, mnist, mnist-40, mnist-2layer, mnist-relu (the last
three test the optimizer trained on the base mnist net, as in the paper's figure 5), cifar (needs
CIFAR-10 on disk).
"""
import argparse
import os
import sys

from models.data import DatasetError

from . import experiments
from .tasks import TASKS

# The optimizer network's matmuls are tall and thin ((coordinates, 40) @ (40, 80)): on the
# 2-core machine of benchmarks/README.md two BLAS threads made meta-training slower (+7% MNIST,
# +55% quadratic), and on a busy machine much slower. So each of these variables that the user
# has not set defaults to one thread. They must be set before numpy is imported, and importing
# this package imports numpy, so the command restarts itself once with them (`console_main`).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def build_parser():
    parser = argparse.ArgumentParser(prog="learning-to-learn", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    commands = parser.add_subparsers(dest="command", required=True)
    task_choice = dict(choices=sorted(TASKS), required=True, help="the optimizee family")
    recipes = sorted({name for task in TASKS.values() for name in task.recipes})

    train = commands.add_parser("train", help="meta-train the LSTM optimizer")
    compare = commands.add_parser("compare", help="compare against tuned SGD, RMSprop, Adam, NAG")
    reproduce = commands.add_parser("reproduce",
                                    help="train, then compare with the paper's settings")
    for p in (train, compare, reproduce):
        p.add_argument("--task", **task_choice)
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--seed", type=int, default=0,
                       help="seeds the networks, the problems and the test problems (default 0)")
    for p in (train, reproduce):
        p.add_argument("--recipe", choices=recipes, default="paper",
                       help="how the optimizer is meta-trained (optim/learned/tasks.py defines "
                            "each); default: paper")
        p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
        p.add_argument("--preprocess", choices=["on", "off"],
                       help="gradient preprocessing (appendix A); default: the recipe's")
        p.add_argument("--epochs", type=int, help="trajectories to train on (default: the recipe's)")
        p.add_argument("--meta-lr", type=float,
                       help="Adam's learning rate on the optimizer's weights (default: the recipe's)")
        p.add_argument("--problems-per-update", type=int,
                       help="problems optimised side by side in each trajectory (default: the "
                            "recipe's; the paper: 1)")
        p.add_argument("--average", type=float,
                       help="validate and save a running average of the weights with this decay "
                            "per meta-update (default: the recipe's; the paper: none)")
        p.add_argument("--validate-on", choices=["meta-loss", "late"],
                       help="the validation figure: the meta-loss (the paper's) or the mean loss "
                            "from the training horizon to --validation-steps")
        p.add_argument("--validation-steps", type=int,
                       help="how far validation runs each problem (default: the training horizon)")
        p.add_argument("--digits", type=int,
                       help="each meta-training problem draws its minibatches from its own DIGITS "
                            "random digits (default: the recipe's; the paper: all)")
    for p in (compare, reproduce):
        p.add_argument("--optimizer", nargs="+", metavar="[NAME=]FILE",
                       help="optimizer.npz files written by train, to compare side by side on the "
                            "same test problems; name each (paper=a.npz other=b.npz) when there "
                            "are several" + (" (required)" if p is compare else
                                             "; skips training"),
                       required=p is compare)
        p.add_argument("--tests", type=int, help="number of test problems (default: the task's, 100)")
        p.add_argument("--test-split", choices=["test", "train"], default="test",
                       help="the data the test problems draw their minibatches from: the held-out "
                            "split (default) or the meta-training split, with fresh θ_0 and "
                            "minibatch seeds")
    compare.add_argument("--steps", type=int, default=100, help="steps per test problem (default 100)")
    reproduce.add_argument("--steps", type=int, nargs="+",
                           help="horizons to compare at (default: the task's, 100; mnist: 100 200)")
    for p in (train, compare, reproduce):
        p.add_argument("--data-dir", help="where datasets are looked for (default: $MINIGRAD_DATA "
                                          "or ~/.cache/minigrad); MNIST falls back to the copy "
                                          "shipped with the project")
        p.add_argument("--download", action="store_true",
                       help="download missing datasets (MNIST, CIFAR-10) into the data dir")
    return parser


def learned_optimizers(values):
    """--optimizer's values as {name: path}: one unnamed file is "LSTM"; several need names."""
    if values is None:
        return None
    named = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or os.path.exists(value):
            name, path = None, value
        if name is None and len(values) > 1:
            raise ValueError(f"--optimizer: several files need a name each (NAME=FILE), as in "
                             f"paper=runs/a/optimizer.npz; got {value!r} without one")
        name = name or "LSTM"
        if name in named:
            raise ValueError(f"--optimizer: the name {name!r} is given twice")
        named[name] = path
    return named


def run(args):
    """Call the experiment function that `args` (parsed by `parse`) names."""
    data = {"data_dir": args.data_dir, "download": args.download}
    if args.command in ("train", "reproduce"):
        training = dict(
            recipe=args.recipe, resume=args.resume, digits=args.digits,
            preprocess=None if args.preprocess is None else args.preprocess == "on",
            **{name: getattr(args, name) for name in experiments.META_OVERRIDES})
    if args.command == "train":
        return experiments.train(args.task, args.out, seed=args.seed, **training, **data)
    if args.command == "compare":
        return experiments.compare(args.task, args.optimizer, args.out, steps=args.steps,
                                   tests=args.tests or TASKS[args.task].tests, seed=args.seed,
                                   test_split=args.test_split, **data)
    return experiments.reproduce(args.task, args.out, seed=args.seed, optimizers=args.optimizer,
                                 tests=args.tests, steps=args.steps, test_split=args.test_split,
                                 **training, **data)


def parse(argv=None):
    """The parsed command line, --optimizer as {name: path}; a usage error exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "optimizer"):
        try:
            args.optimizer = learned_optimizers(args.optimizer)
        except ValueError as error:
            parser.error(str(error))
    return args


def main(argv=None):
    args = parse(argv)
    try:
        run(args)
    except (FileNotFoundError, DatasetError) as error:
        sys.exit(f"error: {error}")


def console_main():
    """The command: `learning-to-learn`, examples/learning_to_learn.py and `python -m
    optim.learned.cli`. It is main() with one BLAS thread by default.

    A process missing one of BLAS_THREAD_VARIABLES sets it to "1" and replaces itself, once,
    with the same command line: same interpreter, same flags, same script or module. So it
    never returns to a caller in Python. On Windows, where a process cannot replace itself,
    and under a debugger or profiler, it runs main() as it is.
    """
    missing = [variable for variable in BLAS_THREAD_VARIABLES if variable not in os.environ]
    if (missing and os.name == "posix" and sys.executable
            and sys.gettrace() is None and sys.getprofile() is None):
        os.environ.update(dict.fromkeys(missing, "1"))
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    main()


if __name__ == "__main__":
    console_main()
