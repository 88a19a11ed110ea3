"""The paper's command line: train, compare and their files (tiny settings)."""
import importlib.metadata
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from optim.learned import cli, experiments, tasks
from optim.learned.evaluation import (baseline_losses, diverged, learning_rate_grid,
                                      start_at_end, tune_learning_rate)
from optim.learned.report import build_report, markdown_table


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


class Curved1D:
    """f(x) = k x^2 / 2: SGD multiplies x by 1 - lr k each step."""

    def __init__(self, k):
        self.k = k

    def loss_and_grad(self, params, step):
        x = params[0]
        return float(self.k * (x * x).sum() / 2), [self.k * x]


def test_a_run_diverged_if_a_loss_is_not_finite_or_it_ends_above_its_start():
    assert not diverged([2.0, 1.0, 0.5])
    assert not diverged([2.0, 3.0, 2.0])               # up on the way, not at the end
    assert diverged([2.0, 1.0, 2.5])
    assert not diverged([2.0, 1.0, 2.01]) and diverged([2.0, 1.0, 2.03])   # 1% tolerance
    assert diverged([2.0, np.inf, np.nan])
    assert diverged([2.0, np.nan, 1.0])


def test_tuning_picks_the_best_learning_rate_and_skips_divergent_ones():
    best, scores = tune_learning_rate("SGD", [(Quadratic1D(), [np.array([1.0])])], steps=1,
                                      grid=[0.1, 1.0, 10.0])
    assert best == 1.0 and scores[1.0] == 0.0
    assert scores[10.0] is None and scores[0.1] == pytest.approx(0.5 * 0.9 ** 2)


def test_a_learning_rate_that_diverges_on_one_validation_problem_is_never_chosen():
    # lr 1 solves the twenty k = 1 problems exactly and ends the k = 2.05 one 10% above its
    # start (x: 1 -> -1.05), so it has the lowest mean final loss; it must still lose.
    problems = [(Curved1D(1.0), [np.array([1.0])]) for _ in range(20)]
    problems.append((Curved1D(2.05), [np.array([1.0])]))
    mean_at = {lr: np.mean([baseline_losses("SGD", lr, p, x, 1)[-1] for p, x in problems])
               for lr in (0.5, 1.0)}
    assert mean_at[1.0] < mean_at[0.5]
    best, scores = tune_learning_rate("SGD", problems, steps=1, grid=[0.5, 1.0])
    assert best == 0.5 and scores[1.0] is None


class Growing1D:
    """f_t(x) = (1 + t) x^2 / 2: like a minibatch loss, its value moves with the step's data."""

    def loss_and_grad(self, params, step):
        x = params[0]
        return float((1 + step) * (x * x).sum() / 2), [(1 + step) * x]


def test_a_run_is_held_to_where_it_started_on_the_same_data():
    # A small step lowers f_t at every t, but f_3(x_3) is far above f_0(x_0): the run did not
    # diverge, and tuning must not exclude its learning rate for it.
    problem, theta0 = Growing1D(), [np.array([1.0])]
    run = baseline_losses("SGD", 0.01, problem, theta0, 3)
    assert run[-1] > 1.5 * run[0] and diverged(run)
    start = start_at_end(problem, theta0, 3)
    assert start == 2.0 and not diverged(run, start)
    best, scores = tune_learning_rate("SGD", [(problem, theta0)], steps=3, grid=[0.01, 0.1])
    assert best == 0.1 and None not in scores.values()


def test_tuning_says_so_when_every_learning_rate_diverges():
    with pytest.raises(RuntimeError, match="every learning rate in the grid diverged"):
        tune_learning_rate("SGD", [(Curved1D(1.0), [np.array([1.0])])], steps=3, grid=[3.0, 5.0])


def test_compare_md_flags_every_test_problem_on_which_an_optimizer_diverged():
    steps = 3
    fine = np.array([[2.0, 1.0, 0.5, 0.25]] * 3)
    nan_run = fine.copy()
    nan_run[2, 2:] = np.nan
    above = fine.copy()
    above[0, -1] = 2.1
    results = {"LSTM": above, "SGD": nan_run, "Adam": fine}
    report = build_report(results, {"SGD": 0.1, "Adam": 0.01}, {}, task="toy", steps=steps,
                          tests=3, seed=0, test_split="test", optimizers={"LSTM": "x.npz"},
                          tune_problems=8)
    assert report["optimizers"]["LSTM"]["diverged"] == [0]
    assert report["optimizers"]["SGD"]["diverged"] == [2]
    assert report["optimizers"]["Adam"]["diverged"] == []
    table = markdown_table(report)
    assert "LSTM on 1 of 3 (problem 0); SGD on 1 of 3 (problem 2)" in table
    assert "| SGD | 0.1 | diverged | diverged |" in table        # t=3 and the sum
    json.dumps(report, allow_nan=False)                   # strict JSON: no NaN, no Infinity
    calm = build_report({"Adam": fine}, {"Adam": 0.01}, {}, task="toy", steps=steps, tests=3,
                        seed=0, test_split="test", optimizers={}, tune_problems=8)
    assert "no optimizer on any test problem" in markdown_table(calm)


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


def test_compare_with_a_missing_optimizer_file_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", "--task", "quadratic", "--optimizer", str(tmp_path / "nothing.npz"),
                  "--steps", "2", "--tests", "1", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "nothing.npz: no such file" in capsys.readouterr().err


def fake_mnist_loader(sizes, asked=None):
    """A stand-in for load_mnist: `sizes[split]` random digits per official split, the same
    ones at every call."""
    def load(split, data_dir=None, download=False):
        if asked is not None:
            asked.append(split)
        n = sizes[split]
        rng = np.random.default_rng(n)
        return rng.random((n, 784)).astype(np.float32), rng.integers(0, 10, n)
    return load


def test_compare_tunes_on_validation_digits_and_tests_on_the_chosen_split(tmp_path, monkeypatch):
    from optim.learned import CoordinatewiseLSTM, NetworkConfig, save_networks
    save_networks(tmp_path / "optimizer.npz", {"all": CoordinatewiseLSTM(NetworkConfig())})
    asked = []
    monkeypatch.setattr(tasks, "load_mnist", fake_mnist_loader({"train": 60, "test": 20}, asked))
    for split in ("test", "train"):
        asked.clear()
        out = tmp_path / split
        cli.main(["compare", "--task", "mnist", "--optimizer", str(tmp_path / "optimizer.npz"),
                  "--steps", "2", "--tests", "1", "--test-split", split, "--out", str(out),
                  "--workers", "1"])     # workers in other processes would not see the fake
        # tuning reads the official training split (its validation part), testing `split`
        assert sorted(asked) == sorted(["train", split])
        report = json.loads((out / "compare.json").read_text())
        assert report["test_split"] == split and report["tune_problems"] == 8
    assert "minibatches from the train split" in (tmp_path / "train" / "compare.md").read_text()
    cli.main(["compare", "--task", "mnist", "--optimizer", str(tmp_path / "optimizer.npz"),
              "--steps", "2", "--tests", "1", "--tune-problems", "3", "--out",
              str(tmp_path / "three"), "--workers", "1"])
    report = json.loads((tmp_path / "three" / "compare.json").read_text())
    assert report["tune_problems"] == 3
    assert len(next(iter(report["lr_search"].values()))) == 16
    assert "tuned on 3 validation problems" in (tmp_path / "three" / "compare.md").read_text()


def test_the_validation_split_is_the_last_sixth_of_the_training_digits(monkeypatch):
    monkeypatch.setattr(tasks, "load_mnist", fake_mnist_loader({"train": 60, "test": 20}))
    make = tasks.TASKS["mnist"].make_family
    train, validation, test = (make(split) for split in ("train", "validation", "test"))
    assert (len(train.labels), len(validation.labels), len(test.labels)) == (50, 10, 20)
    full = tasks.load_mnist("train")[0]
    np.testing.assert_array_equal(np.concatenate([train.images, validation.images]), full)
    with pytest.raises(ValueError, match="split must be one of"):
        make("valid")


def test_the_paper_recipe_is_the_papers_network_and_protocol():
    recipe = tasks.TASKS["mnist"].recipe("paper")
    assert tasks.TASKS["mnist"].recipe() is recipe                  # the default
    network, meta = recipe.network, recipe.meta
    assert (network.layers, network.preprocess, network.preprocess_p, network.output_scale) == \
        ((20, 20), True, 10.0, 0.1)
    assert (meta.steps, meta.unroll, meta.problems_per_update, meta.average, meta.validate_on,
            meta.validation_steps, recipe.digits) == (100, 20, 1, None, "meta-loss", None, None)
    for name in ("mnist-40", "mnist-2layer", "mnist-relu"):
        assert tasks.TASKS[name].recipes is tasks.TASKS["mnist"].recipes
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        tasks.TASKS["mnist"].recipe("nope")


def test_each_ablation_takes_out_one_ingredient_of_the_improved_recipe_and_nothing_else():
    improved = tasks.TASKS["mnist"].recipe("improved")
    differs = {}
    for ingredient in tasks.ABLATIONS:
        ablated = tasks.TASKS["mnist"].recipe(f"improved-without-{ingredient}")
        ablated.meta.check()
        differs[ingredient] = sorted(
            [f"network.{k}" for k, v in vars(ablated.network).items()
             if v != getattr(improved.network, k)]
            + [f"meta.{k}" for k, v in vars(ablated.meta).items()
               if v != getattr(improved.meta, k)])
        assert ablated.digits == improved.digits
    assert differs == {"moments": ["network.inputs"], "adam-output": ["network.output"],
                       "log-last": ["meta.objective"],
                       "curriculum": ["meta.curriculum", "meta.validation_steps"],
                       "pairs": ["meta.trajectories_per_update"]}
    assert tasks.without("curriculum").meta.validation_steps == 200
    with pytest.raises(ValueError, match="unknown ingredient 'lr'.*'moments'"):
        tasks.without("lr")


def test_every_task_tunes_its_baselines_on_at_least_eight_validation_problems():
    assert min(task.tune_problems for task in tasks.TASKS.values()) >= 8


def test_a_run_can_override_the_recipes_options(monkeypatch):
    trained_on, recipe = experiments.recipe_settings(
        "mnist-40", "paper", seed=3, digits=100, problems_per_update=2, average=0.9,
        objective="log-horizons", validate_on="late", validation_steps=200, epochs=7,
        meta_lr=None)
    assert trained_on == "mnist"
    assert (recipe.digits, recipe.meta.problems_per_update, recipe.meta.average,
            recipe.meta.objective, recipe.meta.validate_on, recipe.meta.validation_steps,
            recipe.meta.epochs, recipe.meta.seed, recipe.network.seed) == (
                100, 2, 0.9, "log-horizons", "late", 200, 7, 3, 3)
    assert recipe.meta.meta_lr == tasks.TASKS["mnist"].recipe().meta.meta_lr   # None keeps it
    assert set(experiments.META_OVERRIDES) <= set(vars(tasks.MetaConfig()))
    with pytest.raises(TypeError, match="unknown meta-training settings \\['unroll'\\]"):
        experiments.recipe_settings("mnist", unroll=5)


def test_the_objective_and_validation_figure_given_to_train_reach_meta_training(tmp_path,
                                                                               meta_configs):
    configs = meta_configs
    cli.main(["train", "--task", "quadratic", "--out", str(tmp_path), "--epochs", "1",
              "--objective", "log-horizons", "--validate-on", "horizons", "--workers", "1"])
    (config,) = configs
    assert (config.objective, config.validate_on) == ("log-horizons", "horizons")
    assert tasks.TASKS["quadratic"].recipe().meta.objective == "sum"


def test_mnist_meta_trains_on_the_train_part_and_validates_on_the_held_out_part(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(tasks, "load_mnist", fake_mnist_loader({"train": 60, "test": 20}))
    tiny = tasks.Recipe(tasks.MNIST_NETWORK,
                        tasks.MetaConfig(steps=2, unroll=1, epochs=1, validation_problems=1))
    monkeypatch.setitem(tasks.TASKS["mnist"].recipes, "paper", tiny)
    made = []

    class Recording(experiments.MetaTrainer):
        def __init__(self, networks, family, *args, validation_family=None, **kwargs):
            made.append((family, validation_family))
            super().__init__(networks, family, *args, validation_family=validation_family,
                             **kwargs)
    monkeypatch.setattr(experiments, "MetaTrainer", Recording)
    cli.main(["train", "--task", "mnist", "--out", str(tmp_path / "all"), "--workers", "1"])
    cli.main(["train", "--task", "mnist", "--out", str(tmp_path / "some"), "--digits", "20",
              "--problems-per-update", "2", "--workers", "1"])
    (family, validation), (family_some, _) = made
    assert (family.split, len(family.labels), family.subset) == ("train", 50, None)
    assert (validation.split, len(validation.labels)) == ("validation", 10)
    assert family_some.subset == 20
    assert (tmp_path / "all" / "optimizer.npz").exists()


def test_compare_puts_several_learned_optimizers_on_the_same_test_problems(tmp_path):
    from optim.learned import CoordinatewiseLSTM, NetworkConfig, save_networks
    for seed in (0, 1):
        save_networks(tmp_path / f"{seed}.npz",
                      {"all": CoordinatewiseLSTM(NetworkConfig(layers=(4,), seed=seed))})
    cli.main(["compare", "--task", "quadratic", "--steps", "3", "--tests", "2",
              "--out", str(tmp_path / "both"),
              "--optimizer", f"first={tmp_path / '0.npz'}", f"second={tmp_path / '1.npz'}"])
    report = json.loads((tmp_path / "both" / "compare.json").read_text())
    assert list(report["optimizers"]) == ["first", "second", "SGD", "RMSprop", "Adam", "NAG"]
    first, second = report["optimizers"]["first"], report["optimizers"]["second"]
    assert first["mean"][0] == second["mean"][0] == report["optimizers"]["SGD"]["mean"][0]
    assert first["mean"][1:] != second["mean"][1:]
    assert report["learned"] == {"first": str(tmp_path / "0.npz"), "second": str(tmp_path / "1.npz")}
    table = (tmp_path / "both" / "compare.md").read_text()
    assert "| first | learned |" in table and "| second | learned |" in table


def test_several_optimizers_need_a_name_each(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", "--task", "quadratic", "--out", str(tmp_path),
                  "--optimizer", "a.npz", "b.npz"])
    assert exit_.value.code == 2
    assert "several files need a name each" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["compare", "--task", "quadratic", "--out", str(tmp_path),
                  "--optimizer", "x=a.npz", "x=b.npz"])
    assert "the name 'x' is given twice" in capsys.readouterr().err
    assert cli.learned_optimizers(["a.npz"]) == {"LSTM": "a.npz"}


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
