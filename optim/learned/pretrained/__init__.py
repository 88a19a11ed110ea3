"""Trained optimizers shipped with the package: `LearnedOptimizer(params, "mnist")`.

Each shipped optimizer is two files in this folder: NAME.npz, the networks as `train` wrote
them (network.py's file format, copied byte for byte from the run), and NAME.json, its record:
how it was made and how to make it again.

    name, description     what it is, and why it is the one shipped
    task, recipe, seed    what `experiments.train` was given
    command, commit       the exact command, and the commit it ran at
    sha256                of NAME.npz
    epoch, validation     the epoch kept and its validation figure (the file's "extra")
    network               {network name: NetworkConfig as a dict}, as trained
    meta                  the MetaConfig (as a dict) it was meta-trained with
    machine               processor and numpy version of the run (the figures depend on the
                          processor's BLAS kernels: README, "Results on this machine")

examples/ship_pretrained.py writes both files from a finished run folder; tests/test_pretrained.py
checks every shipped file against its record and its recipe against today's, so a recipe that
changes fails there until the optimizer is retrained with the recorded command and re-shipped.
"""
import json
import os

from ..network import load_networks

FOLDER = os.path.dirname(os.path.abspath(__file__))
PRETRAINED = tuple(sorted(name[:-len(".json")] for name in os.listdir(FOLDER)
                          if name.endswith(".json")))


def check_name(name):
    """Raise ValueError, listing the shipped names, unless `name` is one of them."""
    if name not in PRETRAINED:
        raise ValueError(f"no shipped learned optimizer called {name!r}; the shipped ones are "
                         f"{list(PRETRAINED)}")


def path(name):
    """The shipped NAME.npz."""
    check_name(name)
    return os.path.join(FOLDER, f"{name}.npz")


def record(name):
    """The record NAME.json of a shipped optimizer, as a dict (the fields are listed above)."""
    check_name(name)
    with open(os.path.join(FOLDER, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def load(name, with_extra=False):
    """The networks of a shipped optimizer, as `load_networks` reads them."""
    return load_networks(path(name), with_extra=with_extra)
