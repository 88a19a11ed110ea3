"""Ship a finished meta-training run as a pretrained optimizer: copy its optimizer.npz, byte for
byte, to optim/learned/pretrained/NAME.npz and write NAME.json, the record of how it was made
(fields: optim/learned/pretrained/__init__.py).

    python examples/ship_pretrained.py --name mnist --task mnist --run runs/mnist/train \\
        --command "learning-to-learn train --task mnist --seed 0 --out runs/mnist/train" \\
        --description "..."

The run must be a recipe's as it stands today: its networks (optimizer.npz) and its
meta-training settings (checkpoint.npz) must be those `experiments.train` builds from
`recipe_settings(task, recipe, seed=SEED)`, SEED being the run's. tests/test_pretrained.py
checks the same thing against every shipped file, so when a recipe changes, the shipped
optimizer is retrained with the recorded command and shipped again with this script (--force).

Run it on the machine that trained: the record notes this machine's processor and numpy
version, on which the trained weights depend (README, "Results on this machine").
"""
import hashlib
import json
import os
import platform
import subprocess
from dataclasses import asdict

import numpy as np

from minigrad.cli import ArgumentParser, UsageError, run_command
from minigrad.io import atomic_write, read_checkpoint, write_text
from optim.learned import load_networks, pretrained
from optim.learned.experiments import network_configs, recipe_settings
from optim.learned.meta import MetaConfig
from optim.learned.tasks import TASKS


def recipe_configs(task, recipe, seed):
    """(networks {name: NetworkConfig dict}, MetaConfig dict) that `experiments.train` uses
    for this task, recipe and seed (`experiments.network_configs`)."""
    trained_on, chosen = recipe_settings(task, recipe, seed=seed)
    networks = {name: asdict(config)
                for name, config in network_configs(trained_on, chosen, seed).items()}
    return networks, asdict(chosen.meta)


def git_commit(folder):
    """HEAD of the git repository holding `folder`; exits if its tracked files have changes,
    since then the commit does not say which code ran."""
    def git(*args):
        return subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True)
    head = git("rev-parse", "HEAD")
    if head.returncode:
        raise UsageError(f"{folder} is not in a git repository; give --commit")
    if git("diff", "--quiet", "HEAD").returncode:
        raise UsageError(f"the repository holding {folder} has uncommitted changes, so its HEAD does "
                 "not say which code made the run; give --commit")
    return head.stdout.strip()


def machine():
    """This machine's processor and numpy version."""
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = models[0] if models else cpu
    return {"cpu": cpu, "numpy": np.__version__}


def build_record(args, data):
    """The record of the run in args.run, whose optimizer.npz holds the bytes `data`, checked
    against the recipe; exits if they differ."""
    networks, extra = load_networks(os.path.join(args.run, "optimizer.npz"), with_extra=True)
    _, checkpoint, _ = read_checkpoint(os.path.join(args.run, "checkpoint.npz"),
                                       "meta-training checkpoint")
    meta = asdict(MetaConfig(**checkpoint["config"]))     # options added since at their defaults
    recipe = args.recipe or next(iter(TASKS[args.task].recipes))
    network = {name: asdict(net.config) for name, net in networks.items()}
    expected_network, expected_meta = recipe_configs(args.task, recipe, meta["seed"])
    for what, found, expected in (("networks", network, expected_network),
                                  ("meta-training settings", meta, expected_meta)):
        if json.loads(json.dumps(found)) != json.loads(json.dumps(expected)):
            raise UsageError(f"{args.run}: the run's {what} are not those of recipe {recipe!r} of task "
                     f"{args.task!r} today:\n  run:    {found}\n  recipe: {expected}")
    return {
        "name": args.name, "description": args.description,
        "task": args.task, "recipe": recipe, "seed": meta["seed"],
        "command": args.command, "commit": args.commit or git_commit(args.run),
        "sha256": hashlib.sha256(data).hexdigest(),
        "epoch": int(extra["epoch"]), "validation": float(extra["validation"]),
        "network": network, "meta": meta,
        "machine": machine(),
    }


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the name it is loaded by: "
                        "LearnedOptimizer(params, NAME)")
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="the task trained on")
    parser.add_argument("--recipe", help="the recipe trained with (default: the task's first)")
    parser.add_argument("--run", required=True, help="the run folder, holding optimizer.npz and "
                        "checkpoint.npz")
    parser.add_argument("--command", required=True, help="the exact command that made the run")
    parser.add_argument("--description", required=True, help="what it is and why it is shipped")
    parser.add_argument("--commit", help="the commit the run ran at (default: HEAD of the "
                        "repository holding the run folder, which must have no changes)")
    parser.add_argument("--into", default=pretrained.FOLDER, help="where to write (default: "
                        "the package's pretrained folder)")
    parser.add_argument("--force", action="store_true", help="replace a shipped optimizer "
                        "of that name")
    args = parser.parse_args(argv)

    target = os.path.join(args.into, f"{args.name}.npz")
    record_path = os.path.join(args.into, f"{args.name}.json")
    existing = [p for p in (target, record_path) if os.path.exists(p)]
    if existing and not args.force:
        raise UsageError(f"{existing[0]} exists; give --force to replace the shipped optimizer "
                 f"{args.name!r}")
    with open(os.path.join(args.run, "optimizer.npz"), "rb") as f:
        data = f.read()
    record = build_record(args, data)
    with atomic_write(target) as f:
        f.write(data)
    write_text(record_path, json.dumps(record, indent=2))
    print(f"wrote {target} (sha256 {record['sha256']}) and {record_path}: epoch "
          f"{record['epoch']}, validation {record['validation']:.5g}")


if __name__ == "__main__":
    run_command(main)
