"""Reproduce "Learning to learn by gradient descent by gradient descent" (Andrychowicz et al. 2016).

    learning-to-learn train --task quadratic --out runs/quadratic/train
    learning-to-learn compare --task quadratic --optimizer runs/quadratic/train/optimizer.npz \\
        --steps 100 --tests 100 --seed 0 --out runs/quadratic/compare-100
    learning-to-learn reproduce --task mnist --out runs/mnist

(`python examples/learning_to_learn.py ...` and `python -m optim.learned.cli ...` run the same
command.)

train      meta-trains the LSTM optimizer on the task's family; writes DIR/optimizer.npz (the best
           network by validation) and DIR/checkpoint.npz (run again with --resume to continue).
compare    tunes the baselines' learning rates on validation problems, runs every optimizer on the
           same fresh test problems, and writes DIR/compare.json, compare.md and compare.png.
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

    p = commands.add_parser("train", help="meta-train the LSTM optimizer")
    p.add_argument("--task", **task_choice)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, help="trajectories to train on (default: the task's)")
    p.add_argument("--meta-lr", type=float, help="Adam's learning rate on the optimizer's weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--preprocess", choices=["on", "off"],
                   help="gradient preprocessing (appendix A); default: the task's")

    p = commands.add_parser("compare", help="compare against tuned SGD, RMSprop, Adam, NAG")
    p.add_argument("--task", **task_choice)
    p.add_argument("--optimizer", required=True, help="an optimizer.npz written by train")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--tests", type=int, default=100, help="number of test problems")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = commands.add_parser("reproduce", help="train, then compare with the paper's settings")
    p.add_argument("--task", **task_choice)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--optimizer", help="skip training and test this optimizer.npz")
    p.add_argument("--epochs", type=int)
    p.add_argument("--meta-lr", type=float)
    p.add_argument("--tests", type=int)
    p.add_argument("--steps", type=int, nargs="+",
                   help="horizons to compare at (default: the task's, 100; mnist: 100 200)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--preprocess", choices=["on", "off"])

    for name in ("compare", "reproduce"):
        commands.choices[name].add_argument(
            "--test-split", choices=["test", "train"], default="test",
            help="the data the test problems draw their minibatches from: the held-out split "
                 "(default) or the meta-training split, with fresh θ_0 and minibatch seeds")
    for p in commands.choices.values():
        p.add_argument("--data-dir", help="where datasets are looked for (default: $MINIGRAD_DATA "
                                          "or ~/.cache/minigrad); MNIST falls back to the shipped "
                                          "5,000-digit subset")
        p.add_argument("--download", action="store_true",
                       help="download missing datasets (full MNIST, CIFAR-10) into the data dir")
    return parser


def run(args):
    """Call the experiment function that `args` (parsed by `build_parser`) names."""
    data = {"data_dir": args.data_dir, "download": args.download}
    preprocess = None if getattr(args, "preprocess", None) is None else args.preprocess == "on"
    if args.command == "train":
        return experiments.train(args.task, args.out, epochs=args.epochs, meta_lr=args.meta_lr,
                                 seed=args.seed, resume=args.resume, preprocess=preprocess,
                                 **data)
    if args.command == "compare":
        return experiments.compare(args.task, args.optimizer, args.out, steps=args.steps,
                                   tests=args.tests, seed=args.seed, test_split=args.test_split,
                                   **data)
    return experiments.reproduce(args.task, args.out, seed=args.seed, optimizer=args.optimizer,
                                 epochs=args.epochs, meta_lr=args.meta_lr, tests=args.tests,
                                 steps=args.steps, resume=args.resume, preprocess=preprocess,
                                 test_split=args.test_split, **data)


def main(argv=None):
    args = build_parser().parse_args(argv)
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
