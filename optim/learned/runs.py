"""What is already in a run's folder, checked before a command writes into it: a finished or
unfinished run is never overwritten unless the user asks to start over (`force`), and a run
resumes only with the settings it was started with (`resume`).

    state = training_folder("runs/mnist/train", config, resume=False, force=False)
    # "new", "resume" or "finished"; UsageError if the folder holds a run and neither is set

Both return before any work starts, so a mistake costs nothing.
"""
import json
import os
from dataclasses import asdict

from minigrad.cli import UsageError, output_folder
from minigrad.io import read_checkpoint

from .meta import config_differences

TRAINING_FILES = ("checkpoint.npz", "optimizer.npz")
COMPARISON_FILES = ("compare.json", "compare.md", "compare.png")
# What a comparison's settings are: a finished compare.json with the same ones is the same run.
COMPARISON_SETTINGS = ("task", "steps", "tests", "seed", "test_split", "tune_problems", "learned")


def _check_flags(resume, force):
    if resume and force:
        raise UsageError("--resume continues a run and --force starts it over: give one of them")


def training_folder(out, config, *, resume=False, force=False):
    """Check `out` for meta-training with MetaConfig `config`; returns "new" (nothing to
    resume: train from the start), "resume" (out/checkpoint.npz holds an unfinished run with
    these settings) or "finished" (it holds this run, finished).

    The folder is created if missing and must be writable. If it already holds a run,
    `resume` or `force` must be given: `force` deletes the old run's files (so the folder never
    mixes two runs) and returns "new". A checkpoint written with other settings, or one that
    cannot be read, is a UsageError naming the file.
    """
    _check_flags(resume, force)
    output_folder(out)
    present = [name for name in TRAINING_FILES if os.path.exists(os.path.join(out, name))]
    if not present:
        return "new"
    if force:
        for name in present:
            os.remove(os.path.join(out, name))
        print(f"--force: removed the earlier run's {' and '.join(present)} from {out}")
        return "new"
    if not resume:
        raise UsageError(f"{out} already holds a run ({', '.join(present)}): add --resume to "
                         f"continue it, or --force to start it over")
    checkpoint = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(checkpoint):
        raise UsageError(f"{out} holds an optimizer.npz but no checkpoint.npz to resume from: "
                         f"add --force to start the run over")
    try:
        _, record, _ = read_checkpoint(checkpoint, "meta-training checkpoint", ["adam"])
        differences = config_differences(record["config"], asdict(config))
        epoch = record["epoch"]
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{checkpoint}: cannot resume from it: {error}; add --force to "
                         f"start the run over") from None
    if differences:
        raise UsageError(f"{checkpoint} was written with other settings ({differences}): "
                         f"resume with the options it was started with, or add --force to "
                         f"start it over")
    return "finished" if epoch >= config.epochs else "resume"


def comparison_folder(out, settings, *, resume=False, force=False):
    """Check `out` for a comparison with `settings` (a dict with COMPARISON_SETTINGS, as in
    compare.json); returns "new" (run it) or "finished" (with `resume`: out/compare.json
    holds this comparison with the same settings, so it need not run again).

    The folder is created if missing and must be writable. A compare.json already there is
    overwritten only with `force`; with `resume` but other settings, it is a UsageError.
    """
    _check_flags(resume, force)
    output_folder(out)
    path = os.path.join(out, "compare.json")
    if not os.path.exists(path) or force:
        return "new"
    if not resume:
        raise UsageError(f"{out} already holds a comparison (compare.json): add --force to "
                         f"replace it, or choose another --out")
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        differences = [name for name in COMPARISON_SETTINGS if saved[name] != settings[name]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path}: not a readable comparison ({error}); add --force to run it "
                         f"again") from None
    if differences:
        raise UsageError(f"{path} was run with other settings ("
                         + "; ".join(f"{name}: {saved[name]!r} there, {settings[name]!r} now"
                                     for name in differences)
                         + "): add --force to replace it, or choose another --out")
    return "finished"
