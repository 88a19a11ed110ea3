"""The shipped learned optimizers (optim/learned/pretrained/): each file is the one its record
describes, and it is still what its recipe trains today."""
import hashlib
import json
import pathlib
import shutil
import subprocess
import sys
import tomllib
from dataclasses import asdict

import pytest

from minigrad.io import write_checkpoint
from optim.learned import PRETRAINED, pretrained
from optim.learned.experiments import network_configs, recipe_settings
from optim.learned.meta import MetaConfig
from optim.learned.network import NetworkConfig

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_mnist_and_quadratic_optimizers_are_shipped_as_package_data():
    assert {"mnist", "quadratic"} <= set(PRETRAINED)
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["optim.learned.pretrained"]
    assert {"*.npz", "*.json"} <= set(package_data)


@pytest.mark.parametrize("name", PRETRAINED)
def test_shipped_file_has_the_sha256_of_its_record(name):
    digest = hashlib.sha256(pathlib.Path(pretrained.path(name)).read_bytes()).hexdigest()
    assert digest == pretrained.record(name)["sha256"]


@pytest.mark.parametrize("name", PRETRAINED)
def test_shipped_networks_load_and_are_the_kept_epoch_of_their_record(name):
    record = pretrained.record(name)
    networks, extra = pretrained.load(name, with_extra=True)
    assert record["name"] == name and record["command"] and record["commit"]
    assert int(extra["epoch"]) == record["epoch"]
    assert float(extra["validation"]) == record["validation"]
    assert {key: net.config for key, net in networks.items()} == {
        key: NetworkConfig.from_json(json.dumps(config)) for key, config in record["network"].items()}


@pytest.mark.parametrize("name", PRETRAINED)
def test_shipped_optimizer_is_what_its_recipe_trains_today(name):
    record = pretrained.record(name)
    trained_on, recipe = recipe_settings(record["task"], record["recipe"], seed=record["seed"])
    expected = {key: asdict(config) for key, config
                in network_configs(trained_on, recipe, record["seed"]).items()}
    networks = pretrained.load(name)
    stale = (f"the shipped optimizer {name!r} is stale: recipe {record['recipe']!r} of task "
             f"{record['task']!r} has changed since it was trained. Retrain it with the "
             f"recorded command, `{record['command']}`, and ship it again with "
             f"examples/ship_pretrained.py --name {name} --force (its docstring has the rest)")
    assert {key: asdict(net.config) for key, net in networks.items()} == expected, stale
    recorded_meta = asdict(MetaConfig(**record["meta"]))      # later options at their defaults
    assert json.loads(json.dumps(recorded_meta)) == json.loads(json.dumps(asdict(recipe.meta))), stale


def ship(*args):
    return subprocess.run([sys.executable, str(ROOT / "examples" / "ship_pretrained.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_ship_script_writes_a_shipped_file_and_its_record_and_refuses_to_overwrite(tmp_path):
    record = pretrained.record("quadratic")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(pretrained.path("quadratic"), run / "optimizer.npz")
    write_checkpoint(run / "checkpoint.npz", {"config": record["meta"]}, {})
    args = ["--name", "quadratic", "--task", "quadratic", "--run", str(run), "--into",
            str(tmp_path / "out"), "--command", record["command"], "--description",
            record["description"], "--commit", record["commit"]]
    result = ship(*args)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "out" / "quadratic.json").read_text())
    expected = {**record, "meta": json.loads(json.dumps(asdict(MetaConfig(**record["meta"])))),
                "network": {key: json.loads(json.dumps(asdict(NetworkConfig.from_json(
                    json.dumps(config))))) for key, config in record["network"].items()}}
    assert {k: v for k, v in written.items() if k != "machine"} == {
        k: v for k, v in expected.items() if k != "machine"}
    assert (tmp_path / "out" / "quadratic.npz").read_bytes() == (run / "optimizer.npz").read_bytes()

    again = ship(*args)
    assert again.returncode != 0 and "exists; give --force" in again.stderr
    assert ship(*args, "--force").returncode == 0

    write_checkpoint(run / "checkpoint.npz", {"config": {**record["meta"], "epochs": 60}}, {})
    other = ship(*args, "--force")
    assert other.returncode != 0 and "meta-training settings are not those of recipe" in other.stderr
