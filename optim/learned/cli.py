"""Reproduce "Learning to learn by gradient descent by gradient descent" (Andrychowicz et al. 2016).

    learning-to-learn train --task quadratic --out runs/quadratic/train
    learning-to-learn compare --task quadratic --optimizer runs/quadratic/train/optimizer.npz \\
        --steps 100 --tests 100 --seed 0 --out runs/quadratic/compare-100
    learning-to-learn reproduce --task mnist --out runs/mnist
    learning-to-learn reproduce --task mnist --seed 1 --out runs/mnist-1
    learning-to-learn compare --task mnist --steps 200 --out runs/mnist/both-200 \\
        --optimizer seed0=runs/mnist/train/optimizer.npz seed1=runs/mnist-1/train/optimizer.npz

(`python examples/learning_to_learn.py ...` and `python -m optim.learned.cli ...` run the same
command.)

train      meta-trains the LSTM optimizer on the task's family with a recipe (default: paper);
           writes OUT/optimizer.npz (the best network by validation) and OUT/checkpoint.npz
           (at every validation, every minute, and on Ctrl-C; --resume continues from it).
compare    tunes the baselines' learning rates on validation problems, runs every optimizer (one
           or more learned ones, and the baselines) on the same fresh test problems, and writes
           OUT/compare.json, compare.md and compare.png.
reproduce  train into OUT/train, then compare into OUT/compare-STEPS for each horizon.

A folder that already holds a run is never overwritten: add --resume to continue it (a
finished run is kept as it is) or --force to start over. Every argument is checked before any
work starts; a mistake is reported on one line, with exit status 2. Ctrl-C exits with 130.

Tasks (the paper's section 3): quadratic, mnist, mnist-40, mnist-2layer, mnist-relu (the last
three test the optimizer trained on the base mnist net, as in the paper's figure 5), cifar (needs
CIFAR-10 on disk).
"""
import argparse
import os
import sys

from minigrad.cli import ArgumentParser, UsageError, command_line, integer, real, run_command
from models.data import DatasetError

from . import experiments
from .meta import OBJECTIVES, VALIDATION_FIGURES, MetaTrainingInterrupted
from .parallel import BLAS_THREAD_VARIABLES, default_workers
from .tasks import TASKS

# The optimizer network's matmuls are tall and thin ((coordinates, 40) @ (40, 80)): on the
# 2-core machine of benchmarks/README.md two BLAS threads made meta-training slower (+7% MNIST,
# +55% quadratic), and on a busy machine much slower. So each of these variables that the user
# has not set defaults to one thread. They must be set before numpy is imported, and importing
# this package imports numpy, so the command restarts itself once with them (`console_main`).
# (BLAS_THREAD_VARIABLES, from parallel.py, which gives its worker processes one thread too.)


# reproduce's options that only training uses (all default to None).
TRAINING_OPTIONS = ("preprocess", "digits", *experiments.META_OVERRIDES)


def build_parser():
    parser = ArgumentParser(prog="learning-to-learn", description=__doc__.splitlines()[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="\n".join(__doc__.splitlines()[1:]))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    recipes = sorted({name for task in TASKS.values() for name in task.recipes})

    train = commands.add_parser("train", help="meta-train the LSTM optimizer")
    compare = commands.add_parser("compare", help="compare against tuned SGD, RMSprop, Adam, NAG")
    reproduce = commands.add_parser("reproduce",
                                    help="train, then compare at the task's horizons")
    parser.commands = {"train": train, "compare": compare, "reproduce": reproduce}
    for p in (train, compare, reproduce):
        p.add_argument("--task", choices=sorted(TASKS), required=True,
                       help="the optimizee family (the paper's section 3)")
        p.add_argument("--out", required=True, metavar="OUT",
                       help="output folder, created if missing")
        p.add_argument("--seed", type=integer(0), default=0,
                       help="seeds the networks, the problems and the test problems (default 0)")
    for p in (train, reproduce):
        p.add_argument("--recipe", choices=recipes, default="paper",
                       help="how the optimizer is meta-trained (optim/learned/tasks.py defines "
                            "each); default: paper")
        again = p.add_mutually_exclusive_group()
        again.add_argument("--resume", action="store_true",
                           help="continue the run in OUT from its checkpoint.npz, with the "
                                "options it was started with (a finished run, or comparison, "
                                "is kept as it is)")
        again.add_argument("--force", action="store_true",
                           help="start over in an OUT that already holds a run, deleting it")
        p.add_argument("--checkpoint-every", type=real(0), default=60.0, metavar="SECONDS",
                       help="also write the checkpoint after the first epoch that ends this "
                            "long after the last one (default 60)")
        p.add_argument("--preprocess", choices=["on", "off"],
                       help="gradient preprocessing (appendix A); default: the recipe's")
        p.add_argument("--epochs", type=integer(1),
                       help="trajectories to train on (default: the recipe's)")
        p.add_argument("--meta-lr", type=real(0, low_open=True),
                       help="Adam's learning rate on the optimizer's weights (default: the recipe's)")
        p.add_argument("--problems-per-update", type=integer(1),
                       help="problems optimised side by side in each trajectory (default: the "
                            "recipe's; the paper: 1)")
        p.add_argument("--average", type=real(0, 1, high_open=True),
                       help="validate and save a running average of the weights with this decay "
                            "per meta-update (default: the recipe's; the paper: none)")
        p.add_argument("--objective", choices=sorted(OBJECTIVES),
                       help="the meta-objective: the sum of f over each unroll (sum, the "
                            "paper's), the sum of log f (log), of log f weighted t/T "
                            "(log-ramp), of log f over the last tenth of the trajectory "
                            "(log-last) or over the last tenth of every horizon of 100, 200, "
                            "500, 1000 ... steps it reaches (log-horizons); default: the "
                            "recipe's")
        p.add_argument("--second-order", action="store_true", default=None,
                       help="the exact meta-gradient: the optimizee's gradient stays in the "
                            "meta-graph, so its dependence on the optimizer's weights is "
                            "differentiated too (second derivatives of f), where the paper "
                            "drops it (first order, the default)")
        p.add_argument("--validate-on", choices=VALIDATION_FIGURES,
                       help="the validation figure: the meta-loss (the paper's), the mean loss "
                            "from the training horizon to --validation-steps (late), the mean "
                            "log loss (log), the mean log loss of the last tenth of the steps "
                            "(final) or of the last tenth of every horizon as for the "
                            "log-horizons objective (horizons); default: the recipe's")
        p.add_argument("--validation-steps", type=integer(1),
                       help="how far validation runs each problem (default: the training horizon)")
        p.add_argument("--digits", type=integer(1),
                       help="each meta-training problem draws its minibatches from its own DIGITS "
                            "random digits (default: the recipe's; the paper: all)")
    compare.add_argument("--force", action="store_true",
                         help="replace the comparison an OUT already holds")
    compare.add_argument("--optimizer", nargs="+", metavar="[NAME=]FILE", required=True,
                         help="optimizer.npz files written by train, or the names of shipped "
                              "ones (mnist, mnist-paper, quadratic), to compare side by side on "
                              "the same test problems; name each (paper=a.npz other=b.npz) when "
                              "there are several")
    reproduce.add_argument("--optimizer", nargs="+", metavar="[NAME=]FILE",
                           help="compare these optimizer.npz files instead of training one "
                                "(named as for compare)")
    for p in (compare, reproduce):
        p.add_argument("--tests", type=integer(1),
                       help="number of test problems (default: the task's, 100; cifar 20)")
        p.add_argument("--test-split", choices=["test", "train"], default="test",
                       help="the data the test problems draw their minibatches from: the held-out "
                            "split (default) or the meta-training split, with fresh θ_0 and "
                            "minibatch seeds")
    compare.add_argument("--steps", type=integer(1), default=100,
                         help="steps per test problem (default 100)")
    compare.add_argument("--tune-problems", type=integer(1),
                         help="validation problems on which each baseline's learning rate is "
                              "tuned (default: the task's, 8; quadratic 32)")
    reproduce.add_argument("--steps", type=integer(1), nargs="+",
                           help="horizons to compare at (default: the task's, 100; mnist: 100 200)")
    for p in (train, compare, reproduce):
        p.add_argument("--workers", type=integer(1), default=default_workers(),
                       help="processes for the independent runs (the baselines' tuning, the test "
                            "problems, validation); the figures do not depend on it (default: "
                            f"this machine's cores, {default_workers()})")
        p.add_argument("--cluster", metavar="ADDRESS",
                       help="run them on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                            "tcp://10.0.0.5:8786) instead; needs pip install -e '.[cluster]'")
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
    data = {"data_dir": args.data_dir, "download": args.download, "workers": args.workers,
            "cluster": args.cluster}
    if args.command in ("train", "reproduce"):
        training = dict(
            recipe=args.recipe, resume=args.resume, force=args.force, digits=args.digits,
            checkpoint_every=args.checkpoint_every,
            preprocess=None if args.preprocess is None else args.preprocess == "on",
            **{name: getattr(args, name) for name in experiments.META_OVERRIDES})
    if args.command == "train":
        return experiments.train(args.task, args.out, seed=args.seed, **training, **data)
    if args.command == "compare":
        return experiments.compare(args.task, args.optimizer, args.out, steps=args.steps,
                                   tests=args.tests or TASKS[args.task].tests, seed=args.seed,
                                   test_split=args.test_split, tune_problems=args.tune_problems,
                                   force=args.force, **data)
    return experiments.reproduce(args.task, args.out, seed=args.seed, optimizers=args.optimizer,
                                 tests=args.tests, steps=args.steps, test_split=args.test_split,
                                 **training, **data)


def parse(argv=None):
    """The parsed command line, --optimizer as {name: path}; a usage error exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = parser.commands[args.command]          # its errors name the subcommand
    if hasattr(args, "optimizer"):
        try:
            args.optimizer = learned_optimizers(args.optimizer)
        except ValueError as error:
            command.error(str(error))
    if args.command == "reproduce" and args.optimizer is not None:
        unused = [f"--{name.replace('_', '-')}" for name in TRAINING_OPTIONS
                  if getattr(args, name) is not None]
        if unused:
            command.error(f"{' '.join(unused)}: a training option, but --optimizer skips "
                          f"training")
    return args


def resume_hint(argv, interrupt):
    """What to tell the user after Ctrl-C: where the checkpoint is and the command that
    continues from it (the same command, with --resume instead of --force)."""
    if interrupt.checkpoint is None:
        return "nothing was written"
    return (f"checkpoint {interrupt.checkpoint} holds the run up to epoch {interrupt.epoch}; "
            f"continue with: {command_line(resumed(argv))}")


def resumed(argv):
    """The command line `argv` (default: this process's) with --resume instead of --force."""
    argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--force"]
    return argv if "--resume" in argv else [*argv, "--resume"]


def main(argv=None):
    """The command; a user's mistake exits with status 2 and one line on stderr, Ctrl-C with
    130 (after training writes its checkpoint, with the command that resumes it)."""
    def command(argv):
        args = parse(argv)
        try:
            run(args)
        except MetaTrainingInterrupted as interrupt:
            interrupt.hint = resume_hint(argv, interrupt)
            raise
        except KeyboardInterrupt as interrupt:
            if args.command == "compare":
                interrupt.hint = f"a comparison writes when it ends: nothing was written to {args.out}"
            else:
                interrupt.hint = (f"the comparisons finished are kept; continue with: "
                                  f"{command_line(resumed(argv))}")
            raise
    run_command(command, argv, prog="learning-to-learn", report=(UsageError, DatasetError))


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
