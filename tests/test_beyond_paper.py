"""examples/beyond_paper.py: what it trains and compares for a seed and for the ablation, and
the tables it writes from the comparisons' compare.json files."""
import json
import os
import pathlib
import runpy

import numpy as np
import pytest

from optim.learned import tasks

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def example():
    return runpy.run_path(str(EXAMPLES / "beyond_paper.py"))


def write_report(folder, finals, steps=100, tests=5):
    """A compare.json whose optimizers end at `finals` ({name: final mean loss})."""
    os.makedirs(folder, exist_ok=True)
    optimizers = {name: {"mean": list(np.linspace(2.3, value, steps + 1)),
                         "lr": None if name in ("paper", "improved") or name.startswith("without")
                         else 0.1}
                  for name, value in finals.items()}
    with open(os.path.join(folder, "compare.json"), "w", encoding="utf-8") as f:
        json.dump({"steps": steps, "tests": tests, "optimizers": optimizers}, f)


BASELINES = {"SGD": 0.5, "RMSprop": 0.4, "Adam": 0.3, "NAG": 0.25}


def test_the_horizon_table_gives_mean_and_standard_error_and_marks_each_seeds_win(example,
                                                                                 tmp_path):
    write_report(tmp_path / "seed-0" / "compare-100", {"improved": 0.2, **BASELINES})
    write_report(tmp_path / "seed-1" / "compare-100", {"improved": 0.3, **BASELINES})
    text = example["table"](str(tmp_path), [0, 1, 2], [("step 100", "compare-100", 100)], "T")
    lines = text.splitlines()
    assert "| optimizer | step 100 (seeds 0, 1) |" in lines
    assert "| improved | 0.25 ± 0.05 |" in lines          # mean 0.25, sd 0.0707 / sqrt 2
    assert "| paper |  |" in lines                       # in neither comparison
    assert "| NAG | 0.25 ± 0 |" in lines
    assert "| 0 | **0.2** (NAG 0.25) |" in lines
    assert "| 1 | 0.3 (NAG 0.25) |" in lines
    assert "| 2 |  |" in lines


def test_the_ablation_table_has_a_row_per_ingredient_and_the_lowest_baseline(example, tmp_path):
    ablated = {f"without-{name}": 0.3 + 0.01 * i for i, name in enumerate(tasks.ABLATIONS)}
    write_report(tmp_path / "seed-0" / "ablations" / "mnist-100",
                 {"improved": 0.27, **ablated, **BASELINES})
    write_report(tmp_path / "seed-0" / "ablations" / "mnist-relu-100",
                 {"improved": 0.28, **ablated, **dict(BASELINES, Adam=0.2)})
    text = example["ablation_table"](str(tmp_path), [0])
    lines = text.splitlines()
    assert "| optimizer | step 100 (seeds 0) | ReLU net, step 100 (seeds 0) |" in lines
    assert "| improved | 0.27 | 0.28 |" in lines
    assert "| without-moments | 0.3 | 0.3 |" in lines
    assert "| without-pairs | 0.34 | 0.34 |" in lines
    assert "| lowest tuned baseline | 0.25 (NAG) | 0.2 (Adam) |" in lines
    assert all(f"- without-{name}: {what}" in lines for name, what in tasks.ABLATIONS.items())
    assert "nothing run yet" in example["ablation_table"](str(tmp_path), [1])


def test_a_seed_trains_both_recipes_then_compares_at_each_horizon_and_on_each_net(example,
                                                                                 tmp_path):
    calls = []
    experiments = example["experiments"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(experiments, "train", lambda task, out, **kw: calls.append(
            ("train", task, os.path.relpath(out, tmp_path), kw["recipe"], kw["seed"])))
        patch.setitem(example["run_seed"].__globals__, "compare_once",
                      lambda task, optimizers, folder, **kw: calls.append(
                          ("compare", task, os.path.relpath(folder, tmp_path), sorted(optimizers),
                           kw["steps"], kw["tests"])))
        example["run_seed"](3, str(tmp_path), None, [100, 1000], [50, 5], runner=None)
        example["run_ablation"](3, str(tmp_path), runner=None)
    learned = ["improved", "paper"]
    assert calls[:6] == [
        ("train", "mnist", "seed-3/improved", "improved", 3),
        ("train", "mnist", "seed-3/paper", "paper", 3),
        ("compare", "mnist", "seed-3/compare-100", learned, 100, 50),
        ("compare", "mnist", "seed-3/compare-1000", learned, 1000, 5),
        ("compare", "mnist-40", "seed-3/mnist-40", learned, 100, 100),
        ("compare", "mnist-2layer", "seed-3/mnist-2layer", learned, 100, 100)]
    ablation = calls[7:]
    ablated = [f"without-{name}" for name in tasks.ABLATIONS]
    assert ablation[:1 + len(ablated)] == [("train", "mnist", "seed-3/improved", "improved", 3)] + [
        ("train", "mnist", f"seed-3/ablations/{name}", f"improved-{name}", 3) for name in ablated]
    everything = sorted(["improved", *ablated])
    assert ablation[1 + len(ablated):] == [
        ("compare", "mnist", "seed-3/ablations/mnist-100", everything, 100, 100),
        ("compare", "mnist", "seed-3/ablations/mnist-1000", everything, 1000, 20),
        ("compare", "mnist-relu", "seed-3/ablations/mnist-relu-100", everything, 100, 100)]


def test_a_seed_given_both_optimizers_trains_nothing_and_compares_the_files(example, tmp_path):
    calls = []
    experiments = example["experiments"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(experiments, "train", lambda *args, **kw: calls.append(("train",)))
        patch.setitem(example["run_seed"].__globals__, "compare_once",
                      lambda task, optimizers, folder, **kw: calls.append(
                          ("compare", task, dict(optimizers))))
        example["run_seed"](0, str(tmp_path), "paper.npz", [100], [5], runner=None,
                            improved="improved.npz")
        example["run_ablation"](0, str(tmp_path), runner=None, improved="improved.npz")
    trained = [call for call in calls if call[0] == "train"]
    assert len(trained) == len(tasks.ABLATIONS)          # the ablations only
    compared = [call[2] for call in calls if call[0] == "compare"]
    assert compared[0] == {"paper": "paper.npz", "improved": "improved.npz"}
    assert compared[-1]["improved"] == "improved.npz"


def test_an_ablation_of_some_ingredients_trains_and_compares_only_those(example, tmp_path):
    calls = []
    experiments = example["experiments"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(experiments, "train", lambda task, out, **kw: calls.append(
            ("train", kw["recipe"])))
        patch.setitem(example["run_ablation"].__globals__, "compare_once",
                      lambda task, optimizers, folder, **kw: calls.append(
                          ("compare", sorted(optimizers))))
        example["run_ablation"](0, str(tmp_path), runner=None, improved="improved.npz",
                                ingredients=["pairs", "adam-output"])
    assert calls[:2] == [("train", "improved-without-pairs"),
                         ("train", "improved-without-adam-output")]
    assert calls[2:] == [("compare", ["improved", "without-adam-output", "without-pairs"])] * 3


def test_the_ablation_table_lists_only_the_ablations_run(example, tmp_path):
    write_report(tmp_path / "seed-0" / "ablations" / "mnist-100",
                 {"improved": 0.27, "without-pairs": 0.31, **BASELINES})
    lines = example["ablation_table"](str(tmp_path), [0]).splitlines()
    assert "| without-pairs | 0.31 |" in lines
    assert not any(line.startswith(("| without-moments", "- without-moments")) for line in lines)
    assert f"- without-pairs: {tasks.ABLATIONS['pairs']}" in lines


def test_an_unknown_ingredient_is_named_before_anything_runs(example, tmp_path):
    with pytest.raises(example["UsageError"], match="--ablations momentum: the improved recipe's "
                                                    "ingredients are moments, adam-output"):
        example["main"](["--ablations", "momentum", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_given_optimizer_must_be_seed_equals_file(example):
    given = example["given_optimizers"]
    assert given("--improved", ["1=mnist"], "0=mnist")[1].endswith("mnist.npz")
    with pytest.raises(example["UsageError"], match="--improved mnist: expected SEED=FILE"):
        given("--improved", ["mnist"], "0=mnist")


def test_the_long_comparison_holds_every_seeds_optimizers_on_the_first_seeds_problems(example,
                                                                                      tmp_path):
    for seed in (1, 2):
        (tmp_path / f"seed-{seed}" / "improved").mkdir(parents=True)
        (tmp_path / f"seed-{seed}" / "improved" / "optimizer.npz").write_bytes(b"")
    found = example["long_optimizers"](str(tmp_path), [0, 1, 2, 3], {0: "p0.npz"},
                                       {0: "i0.npz"})
    assert found == {"improved-0": "i0.npz", "paper-0": "p0.npz",
                     "improved-1": str(tmp_path / "seed-1" / "improved" / "optimizer.npz"),
                     "improved-2": str(tmp_path / "seed-2" / "improved" / "optimizer.npz")}
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(example["run_long"].__globals__, "compare_once",
                      lambda task, optimizers, folder, **kw: calls.append(
                          (task, os.path.relpath(folder, tmp_path), kw["steps"], kw["tests"],
                           kw["seed"], kw["tune_problems"])))
        example["run_long"](str(tmp_path), [2, 0], found, 10000, 5, runner=None, tune_problems=2)
        with pytest.raises(example["UsageError"], match="no improved optimizer"):
            example["run_long"](str(tmp_path), [5], {"paper-5": "p.npz"}, 10000, 5, None)
    assert calls == [("mnist", "long-10000", 10000, 5, 2, 2)]


def test_the_long_table_gives_each_seed_their_mean_and_the_baselines_over_test_problems(
        example, tmp_path):
    assert "not run" in example["long_table"](str(tmp_path), 300)
    write_report(tmp_path / "long-300", {"improved-0": 0.2, "improved-1": 0.3, "paper-0": 0.9,
                                         **BASELINES}, steps=300)
    report = json.loads((tmp_path / "long-300" / "compare.json").read_text())
    report["seed"], report["tune_problems"] = 0, 2
    for entry in report["optimizers"].values():
        entry["stderr"] = [0.01] * 301
    report["optimizers"]["paper-0"]["mean"][150] = None          # diverged on the way
    (tmp_path / "long-300" / "compare.json").write_text(json.dumps(report))
    lines = example["long_table"](str(tmp_path), 300).splitlines()
    assert lines[0].endswith("on seed 0's 5 test problems; the baselines tuned on 2 validation "
                             "problems")
    assert "| improved-0 | 0.2 | 2.3 |" in lines
    assert "| improved, mean over seeds | 0.25 ± 0.05 | |" in lines
    assert "| paper-0 | 0.9 | diverged |" in lines
    assert "| NAG (lr 0.1) | 0.25 ± 0.01 | 2.3 |" in lines


def test_the_figure_draws_every_optimizer_of_a_comparison(example, tmp_path):
    pytest.importorskip("matplotlib", reason="the figures need the plot extra (matplotlib)")
    write_report(tmp_path / "long", {"improved-0": 0.2, "improved-1": 0.3, **BASELINES})
    report = dict(json.loads((tmp_path / "long" / "compare.json").read_text()), seed=0)
    assert example["plot_curves"](report, str(tmp_path / "long.png"), "MNIST")
    assert (tmp_path / "long.png").read_bytes()[:4] == b"\x89PNG"
    assert not example["plot_curves"](None, str(tmp_path / "none.png"), "MNIST")
