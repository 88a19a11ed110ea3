"""What the project's commands share, so that they behave alike and like the tools people trust
(pip, git): they check what they were given before they work, and a user's mistake gets one
line on stderr naming the argument or file and what was expected, and exit status 2, never a
traceback. A traceback means a bug in the program.

    parser = ArgumentParser(description="...")         # one-line usage errors, exit 2
    parser.add_argument("--steps", type=integer(1), help="...")
    parser.add_argument("--lr", type=real(0, low_open=True), help="...")
    ...
    run_command(main)                                   # UsageError -> one line, exit 2;
                                                        # Ctrl-C -> exit 130

`output_folder` checks that an --out folder can be created and written before any work starts.
"""
import argparse
import math
import os
import shlex
import sys

EXIT_USAGE = 2             # argparse's status for a usage error, and what the commands use
EXIT_INTERRUPTED = 130     # what a shell reports for a process stopped by SIGINT (128 + 2)


class UsageError(ValueError):
    """A mistake in what the user asked for (an argument, a file, a folder): the command
    prints the message on one line and exits with status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, with usage errors on one line: "prog: error: message (see prog
    --help)" and exit status 2. Subcommands' parsers are of this class too."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _bounds(low, high, low_open, high_open):
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts)


def _checked(kind, low, high, low_open, high_open):
    noun = "an integer" if kind is int else "a number"
    bounds = _bounds(low, high, low_open, high_open)
    expected = f"{noun} {bounds}".strip()

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected         # argparse names the type by it in some messages
    return parse


def integer(low=None, high=None):
    """An argparse type: an int with low <= value <= high (either bound may be None)."""
    return _checked(int, low, high, False, False)


def real(low=None, high=None, *, low_open=False, high_open=False):
    """An argparse type: a float within the bounds; `low_open`/`high_open` exclude them."""
    return _checked(float, low, high, low_open, high_open)


def output_folder(path, option="--out"):
    """Create the folder `path` if it is missing and check that a file can be written in it;
    raise UsageError naming `option` and the path if not. Returns the path."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a file, expected a folder (or a path to create)")
    probe = os.path.join(path, f".write-test-{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot write there ({error.strerror or error})") \
            from None
    return path


def command_line(argv=None):
    """How the user ran this command, as a string to show again: "learning-to-learn train
    ...", "python examples/x.py ..." or "python -m package.module ..."."""
    argv = sys.argv[1:] if argv is None else list(argv)
    program = sys.argv[0]
    if program.endswith(".py"):
        module = sys.modules.get("__main__")
        spec = getattr(module, "__spec__", None)
        program = (f"python -m {spec.name}" if spec is not None and spec.name != "__main__"
                   else f"python {shlex.quote(os.path.relpath(program))}")
    else:
        program = os.path.basename(program)
    return " ".join([program, *map(shlex.quote, argv)])


def run_command(main, argv=None, *, prog=None, report=(UsageError,)):
    """Run main(argv) as the command `prog` (default: the script's name): an exception of a
    type in `report` (UsageError by default) is printed as "prog: error: message" on stderr
    and exits with status 2; Ctrl-C exits with status 130 after printing "prog: interrupted"
    and, if the KeyboardInterrupt carries a `hint` attribute, that hint. Anything else is a
    bug and keeps its traceback."""
    prog = prog or os.path.basename(sys.argv[0])
    try:
        return main(argv)
    except report as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt as interrupt:
        hint = getattr(interrupt, "hint", None)
        print(f"{prog}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
