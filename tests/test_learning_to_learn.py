"""The paper's command line: train, compare and their files (tiny settings)."""
import importlib.metadata
import json
import pathlib
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from optim.learned import cli, experiments, tasks
from optim.learned.evaluation import baseline_losses, learning_rate_grid, tune_learning_rate


def test_learning_rate_grid_spans_1e_4_to_10_at_three_points_per_decade():
    grid = learning_rate_grid()
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(10.0)
    assert len(grid) == 16
    np.testing.assert_allclose(np.diff(np.log10(grid)), 1 / 3)


class Quadratic1D:
    """f(x) = x^2 / 2 on one coordinate: gradient descent with lr 1 solves it in one step."""

    def loss_and_grad(self, params, step):
        x = params[0]
        return float((x * x).sum() / 2), [x.copy()]


def test_baseline_losses_follow_the_update_rule():
    losses = baseline_losses("SGD", 0.5, Quadratic1D(), [np.array([2.0])], steps=3)
    np.testing.assert_allclose(losses, [2.0, 0.5, 0.125, 0.03125])
    diverged = baseline_losses("SGD", 5.0, Quadratic1D(), [np.array([2.0])], steps=400)
    assert not np.isfinite(diverged[-1])


def test_tuning_picks_the_best_learning_rate_and_skips_divergent_ones():
    best, scores = tune_learning_rate("SGD", [(Quadratic1D(), [np.array([1.0])])], steps=1,
                                      grid=[0.1, 1.0, 10.0])
    assert best == 1.0 and scores[1.0] == 0.0
    assert scores[10.0] > scores[0.1]


def test_train_then_compare_writes_the_optimizer_and_the_comparison(tmp_path):
    cli.main(["train", "--task", "quadratic", "--out", str(tmp_path), "--epochs", "1"])
    assert (tmp_path / "optimizer.npz").exists() and (tmp_path / "checkpoint.npz").exists()
    cli.main(["compare", "--task", "quadratic", "--optimizer", str(tmp_path / "optimizer.npz"),
              "--steps", "5", "--tests", "3", "--seed", "1", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "compare.json").read_text())
    assert (report["task"], report["steps"], report["tests"]) == ("quadratic", 5, 3)
    assert set(report["optimizers"]) == {"LSTM", "SGD", "RMSprop", "Adam", "NAG"}
    for name, entry in report["optimizers"].items():
        assert len(entry["mean"]) == len(entry["stderr"]) == 6
        assert (entry["lr"] is None) == (name == "LSTM")
    table = (tmp_path / "compare.md").read_text()
    assert "| LSTM | learned |" in table and "t=5" in table


def test_compare_with_a_missing_optimizer_file_says_so(tmp_path):
    with pytest.raises(SystemExit, match="nothing.npz"):
        cli.main(["compare", "--task", "quadratic", "--optimizer", str(tmp_path / "nothing.npz"),
                  "--steps", "2", "--tests", "1", "--out", str(tmp_path)])


def test_compare_can_draw_the_test_problems_from_the_training_digits(tmp_path, monkeypatch):
    from optim.learned import CoordinatewiseLSTM, NetworkConfig, save_networks
    save_networks(tmp_path / "optimizer.npz", {"all": CoordinatewiseLSTM(NetworkConfig())})
    rng = np.random.default_rng(0)
    asked = []

    def fake_mnist(split, data_dir=None, download=False):
        asked.append(split)
        return rng.random((50, 784)).astype(np.float32), rng.integers(0, 10, 50)
    monkeypatch.setattr(tasks, "load_mnist", fake_mnist)
    for split in ("test", "train"):
        asked.clear()
        out = tmp_path / split
        cli.main(["compare", "--task", "mnist", "--optimizer", str(tmp_path / "optimizer.npz"),
                  "--steps", "2", "--tests", "1", "--test-split", split, "--out", str(out)])
        assert sorted(asked) == sorted(["train", split])      # tuning always uses "train"
        assert json.loads((out / "compare.json").read_text())["test_split"] == split
    assert "minibatches from the train split" in (tmp_path / "train" / "compare.md").read_text()


def test_mnist_meta_trains_on_problems_with_as_many_digits_as_a_test_problem(tmp_path,
                                                                             monkeypatch):
    rng = np.random.default_rng(0)
    sizes = {"train": 60, "test": 20}

    def fake_mnist(split, data_dir=None, download=False):
        n = sizes[split]
        return rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n)
    monkeypatch.setattr(tasks, "load_mnist", fake_mnist)
    task = tasks.TASKS["mnist"]
    tiny = replace(task.meta, steps=2, unroll=1, validation_problems=1, validation_steps=3)
    monkeypatch.setitem(tasks.TASKS, "mnist", replace(task, meta=tiny))
    families = []

    class Recording(experiments.MetaTrainer):
        def __init__(self, networks, family, *args, **kwargs):
            families.append(family)
            super().__init__(networks, family, *args, **kwargs)
    monkeypatch.setattr(experiments, "MetaTrainer", Recording)
    cli.main(["train", "--task", "mnist", "--out", str(tmp_path), "--epochs", "1"])
    family, = families
    assert family.subset == 20 and len(family.labels) == 60
    assert (tmp_path / "optimizer.npz").exists()


def test_the_installed_console_script_and_the_example_are_the_same_command():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (script,) = [s for s in scripts if s.name == "learning-to-learn"]
    assert script.load() is cli.console_main
    root = pathlib.Path(__file__).resolve().parent.parent
    for command in ([sys.executable, "-m", "optim.learned.cli", "--help"],
                    [sys.executable, str(root / "examples" / "learning_to_learn.py"), "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=root, check=True)
        assert "usage: learning-to-learn" in result.stdout and "reproduce" in result.stdout


def test_the_command_restarts_itself_once_with_one_blas_thread_for_each_unset_variable(
        monkeypatch):
    calls = []
    monkeypatch.setattr(cli.os, "execv", lambda program, argv: calls.append((program, argv)))
    monkeypatch.setattr(cli, "main", lambda argv=None: calls.append("main"))
    monkeypatch.setattr(sys, "orig_argv", ["python3", "-X", "dev", "run.py", "train", "--seed", "1"])
    monkeypatch.setattr(cli.os, "name", "posix")
    monkeypatch.setattr(sys, "gettrace", lambda: None)     # pytest's coverage, if any, aside
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    cli.console_main()
    assert calls[0] == (sys.executable, [sys.executable, "-X", "dev", "run.py", "train",
                                         "--seed", "1"])
    assert [cli.os.environ[v] for v in cli.BLAS_THREAD_VARIABLES] == ["1", "4", "1"]
    calls.clear()
    cli.console_main()                       # every variable set now: no restart, just main
    assert calls == ["main"]
