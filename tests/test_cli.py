"""The commands as a user meets them, through the real command line (a subprocess each): every
argument checked before any work, a mistake reported on one line with exit status 2 and never a
traceback, no run overwritten unasked, strict JSON, Ctrl-C that checkpoints and exits 130."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minigrad.io import read_checkpoint
from optim.learned import CoordinatewiseLSTM, NetworkConfig, load_networks, save_networks
from optim.learned import cli

ROOT = Path(__file__).resolve().parents[1]
# One BLAS thread already set, so the command does not restart itself (cli.console_main).
ENV = {**os.environ, **dict.fromkeys(cli.BLAS_THREAD_VARIABLES, "1"),
       "PYTHONPATH": str(ROOT), "MINIGRAD_DATA": "/nonexistent-minigrad-data"}
COMMAND = [sys.executable, "-m", "optim.learned.cli"]
QUICK_TRAIN = ["train", "--task", "quadratic", "--epochs", "2"]


def run(args, cwd, command=COMMAND):
    """Run the command with `args` in `cwd`; returns the CompletedProcess (text)."""
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)


def assert_usage_error(result, *fragments):
    """Exit status 2, and one line on stderr, no traceback, naming every fragment."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-epoch quadratic run: its folder."""
    folder = tmp_path_factory.mktemp("trained")
    result = run([*QUICK_TRAIN, "--out", folder / "run"], folder)
    assert result.returncode == 0, result.stderr
    return folder / "run"


@pytest.mark.parametrize("args, named", [
    (["compare", "--task", "quadratic", "--optimizer", "x.npz", "--tests", "0"], "--tests"),
    (["compare", "--task", "quadratic", "--optimizer", "x.npz", "--steps", "-5"], "--steps"),
    (["compare", "--task", "quadratic", "--optimizer", "x.npz", "--steps", "0"], "--steps"),
    (["reproduce", "--task", "quadratic", "--tests", "0"], "--tests"),
    (["reproduce", "--task", "quadratic", "--steps", "100", "0"], "--steps"),
    (["train", "--task", "quadratic", "--epochs", "0"], "--epochs"),
    (["train", "--task", "quadratic", "--meta-lr", "nan"], "--meta-lr"),
    (["train", "--task", "quadratic", "--meta-lr", "0"], "--meta-lr"),
    (["train", "--task", "quadratic", "--average", "1"], "--average"),
    (["train", "--task", "quadratic", "--objective", "mean"], "--objective"),
    (["train", "--task", "quadratic", "--seed", "-1"], "--seed"),
    (["train", "--task", "quadratic", "--digits", "0"], "--digits"),
    (["train", "--task", "quadratic", "--checkpoint-every", "-1"], "--checkpoint-every"),
    (["train", "--task", "quadratic", "--resume", "--force"], "--force"),
    (["train", "--task", "quadratic", "--validation-steps", "50"], "validation_steps"),
    (["train", "--task", "squares"], "--task"),
    (["compare", "--task", "quadratic", "--optimizer", "a.npz", "b.npz"], "NAME=FILE"),
])
def test_an_argument_out_of_range_is_one_line_exit_2_before_any_work(tmp_path, args, named):
    result = run([*args, "--out", tmp_path / "out"], tmp_path)
    assert_usage_error(result, named)
    assert result.stdout == ""
    assert not (tmp_path / "out" / "checkpoint.npz").exists()


@pytest.mark.parametrize("command", ["train", "compare", "reproduce"])
def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, trained, command):
    target = tmp_path / "results.txt"
    target.write_text("keep me\n")
    extra = ["--optimizer", trained / "optimizer.npz"] if command == "compare" else []
    result = run([command, "--task", "quadratic", "--out", target, *extra], tmp_path)
    assert_usage_error(result, "--out", "results.txt", "is a file")
    assert result.stdout == ""
    assert target.read_text() == "keep me\n"


def test_an_out_that_cannot_be_created_or_written_is_refused(tmp_path, trained):
    (tmp_path / "plain").write_text("")
    result = run(["compare", "--task", "quadratic", "--optimizer", trained / "optimizer.npz",
                  "--out", tmp_path / "plain" / "sub"], tmp_path)
    assert_usage_error(result, "--out", "cannot write there")
    if os.geteuid() != 0:            # root writes into read-only folders anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        result = run([*QUICK_TRAIN, "--out", locked / "run"], tmp_path)
        assert_usage_error(result, "--out", "cannot write there")
    if os.path.isdir("/proc/self"):  # not writable, even for root
        result = run([*QUICK_TRAIN, "--out", "/proc/minigrad-run"], tmp_path)
        assert_usage_error(result, "--out /proc/minigrad-run", "cannot write there")


def test_an_optimizer_file_that_is_not_one_is_named_without_a_traceback(tmp_path, trained):
    (tmp_path / "notes.npz").write_text("hello\n")
    whole = (trained / "optimizer.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[:len(whole) // 2])
    two = {"conv": CoordinatewiseLSTM(NetworkConfig(layers=(2,))),
           "fc": CoordinatewiseLSTM(NetworkConfig(layers=(2,)))}
    save_networks(tmp_path / "cifar.npz", two)
    cases = [("missing.npz", "no such file"), ("notes.npz", "not an .npz (zip) archive"),
             ("cut.npz", "not a readable learned optimizer"),
             (trained / "checkpoint.npz", "a meta-training checkpoint, not a learned optimizer"),
             ("cifar.npz", "holds the networks ['conv', 'fc'], the task quadratic needs ['all']")]
    for name, message in cases:
        result = run(["compare", "--task", "quadratic", "--optimizer", name, "--out", "out"],
                     tmp_path)
        assert_usage_error(result, str(name), message)
        assert "allow_pickle" not in result.stderr
        assert result.stdout == ""


def test_a_finished_run_is_never_overwritten_unasked(tmp_path, trained):
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    for name in ("optimizer.npz", "checkpoint.npz"):
        (run_folder / name).write_bytes((trained / name).read_bytes())
    before = (run_folder / "optimizer.npz").read_bytes()

    refused = run([*QUICK_TRAIN, "--out", run_folder], tmp_path)
    assert_usage_error(refused, "already holds a run", "--resume", "--force")
    other = run([*QUICK_TRAIN, "--out", run_folder, "--resume", "--meta-lr", "0.1"], tmp_path)
    assert_usage_error(other, "checkpoint.npz was written with other settings", "meta_lr")

    finished = run([*QUICK_TRAIN, "--out", run_folder, "--resume"], tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert "this run is finished (2 epochs)" in finished.stdout
    assert "wrote" not in finished.stdout
    assert (run_folder / "optimizer.npz").read_bytes() == before

    again = run([*QUICK_TRAIN, "--out", run_folder, "--force", "--seed", "1"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "removed the earlier run's" in again.stdout
    assert (run_folder / "optimizer.npz").read_bytes() != before


def test_a_comparison_is_replaced_only_with_force_and_its_json_is_strict(tmp_path):
    # An optimizer whose steps are huge: its losses overflow to inf and NaN.
    wild = CoordinatewiseLSTM(NetworkConfig(layers=(2,), output_scale=1e30))
    wild.out_bias.data[...] = 1.0
    save_networks(tmp_path / "wild.npz", {"all": wild})
    args = ["compare", "--task", "quadratic", "--optimizer", "wild.npz", "--steps", "3",
            "--tests", "2", "--out", "cmp"]
    first = run(args, tmp_path)
    assert first.returncode == 0, first.stderr

    def no_constants(name):
        raise AssertionError(f"compare.json holds {name}, which strict JSON parsers reject")
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text(),
                        parse_constant=no_constants)
    assert None in report["optimizers"]["LSTM"]["mean"]
    assert report["optimizers"]["LSTM"]["diverged"] == [0, 1]

    before = (tmp_path / "cmp" / "compare.json").read_bytes()
    refused = run(args, tmp_path)
    assert_usage_error(refused, "already holds a comparison", "--force")
    assert (tmp_path / "cmp" / "compare.json").read_bytes() == before
    assert run([*args, "--force"], tmp_path).returncode == 0


def start(args, cwd):
    return subprocess.Popen([*COMMAND, *map(str, args)], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def trained_arrays(path):
    return {f"{name}/{key}": value for name, net in load_networks(path).items()
            for key, value in net.state_dict().items()}


def test_ctrl_c_checkpoints_says_how_to_resume_and_the_resumed_run_is_the_same(tmp_path):
    args = ["train", "--task", "quadratic", "--epochs", "5", "--checkpoint-every", "0"]
    assert run([*args, "--out", "straight"], tmp_path).returncode == 0

    process = start([*args, "--out", "cut"], tmp_path)
    wait_for((tmp_path / "cut" / "checkpoint.npz").exists, process)      # after epoch 1
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("learning-to-learn: interrupted; checkpoint ")
    _, record, _ = read_checkpoint(tmp_path / "cut" / "checkpoint.npz", "checkpoint")
    assert 1 <= record["epoch"] < 5
    assert f"up to epoch {record['epoch']}" in last
    resume = last.split("continue with: ")[1].split()
    assert resume[0] == "python" and resume[-1] == "--resume"

    resumed = run(resume[3:], tmp_path)          # the same command: python -m optim.learned.cli
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {Path('cut') / 'checkpoint.npz'} at epoch {record['epoch']}" in resumed.stdout
    straight = trained_arrays(tmp_path / "straight" / "optimizer.npz")
    again = trained_arrays(tmp_path / "cut" / "optimizer.npz")
    assert straight.keys() == again.keys()
    for key in straight:
        np.testing.assert_array_equal(straight[key], again[key])


def test_checkpoints_are_written_on_a_time_interval_so_a_kill_loses_little(tmp_path):
    # The recipe validates every 50 epochs; with --checkpoint-every 0, every epoch checkpoints.
    process = start(["train", "--task", "quadratic", "--epochs", "40", "--checkpoint-every", "0",
                     "--out", "run"], tmp_path)
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    wait_for(checkpoint.exists, process)
    first = checkpoint.stat().st_mtime_ns
    wait_for(lambda: checkpoint.stat().st_mtime_ns != first, process)
    process.kill()
    process.communicate()
    _, record, _ = read_checkpoint(checkpoint, "checkpoint")
    assert 2 <= record["epoch"] < 40 and record["validation"] == []
    assert not (tmp_path / "run" / "optimizer.npz").exists()     # no validation yet


def test_ctrl_c_in_compare_exits_130_and_says_nothing_was_written(tmp_path, trained):
    process = start(["compare", "--task", "quadratic", "--optimizer", trained / "optimizer.npz",
                     "--out", "cmp", "--steps", "2000"], tmp_path)
    wait_for(lambda: (tmp_path / "cmp").is_dir(), process)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == ("learning-to-learn: interrupted; a comparison writes "
                                            "when it ends: nothing was written to cmp")
    assert list((tmp_path / "cmp").iterdir()) == []


def test_every_option_has_help_and_help_exits_0(tmp_path):
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"
        result = run([name, "--help"], tmp_path)
        assert result.returncode == 0 and "--out OUT" in result.stdout


def test_the_help_examples_read_only_what_earlier_examples_write():
    """Every file an example of `--help` reads is one an example before it writes."""
    examples = " ".join(line.strip().rstrip("\\") for line in cli.__doc__.split("\n\n")[1]
                        .splitlines()).split("learning-to-learn ")[1:]
    written = set()
    for example in examples:
        args = cli.parse(example.split())
        for path in (getattr(args, "optimizer", None) or {}).values():
            assert path in written, f"{example!r} reads {path}, which no earlier example writes"
        if args.command == "train":
            written.add(f"{args.out}/optimizer.npz")
        if args.command == "reproduce" and args.optimizer is None:
            written.add(f"{args.out}/train/optimizer.npz")
    assert len(examples) >= 4


@pytest.mark.parametrize("script, args, named", [
    ("mnist_mlp.py", ["--epochs", "0"], "--epochs"),
    ("mnist_mlp.py", ["--lr", "-1"], "--lr"),
    ("optimizers_2d.py", ["--steps", "0"], "--steps"),
    ("lstm_sequence.py", ["--delay", "30"], "--delay"),
    ("lstm_sequence.py", ["--batch", "0"], "--batch"),
    ("paper_mnist.py", ["--seeds", "-1"], "--seeds"),
    ("paper_mnist.py", ["--recipe", "best"], "--recipe"),
])
def test_the_example_scripts_check_their_arguments_the_same_way(tmp_path, script, args, named):
    result = run(args, tmp_path, command=[sys.executable, str(ROOT / "examples" / script)])
    assert_usage_error(result, named)


@pytest.mark.parametrize("script, args", [("optimizers_2d", ["--steps", "1"]),
                                          ("saddle_points", [])])
def test_an_example_does_not_overwrite_its_plot_unasked(tmp_path, script, args):
    plot = tmp_path / "out" / f"{script}.png"
    plot.parent.mkdir()
    plot.write_bytes(b"an earlier plot")
    command = [sys.executable, str(ROOT / "examples" / f"{script}.py")]
    result = run(args + ["--out", "out"], tmp_path, command=command)
    assert_usage_error(result, f"{script}.png exists", "--force")
    assert plot.read_bytes() == b"an earlier plot"


def test_a_broken_data_directory_is_one_line_naming_it(tmp_path):
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    (tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"junk")
    result = run(["train", "--task", "mnist", "--data-dir", "data", "--out", "run"], tmp_path)
    assert_usage_error(result, "incomplete MNIST 'train' split in data/mnist", "--download")


def test_reproduce_refuses_training_options_when_it_does_not_train(tmp_path, trained):
    result = run(["reproduce", "--task", "quadratic", "--optimizer", trained / "optimizer.npz",
                  "--epochs", "5", "--out", "out"], tmp_path)
    assert_usage_error(result, "--epochs: a training option, but --optimizer skips training")


def test_compare_takes_a_shipped_optimizer_by_name(tmp_path):
    result = run(["compare", "--task", "quadratic", "--optimizer", "quadratic", "--steps", "2",
                  "--tests", "2", "--workers", "1", "--out", "cmp"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert report["learned"]["LSTM"].endswith(os.path.join("pretrained", "quadratic.npz"))


@pytest.mark.parametrize("script, args, named", [
    ("learned_vs_adam.py", ["--optimizer", "nope"], "--optimizer nope"),
    ("learned_vs_adam.py", ["--report", "0"], "--report"),
    ("ship_pretrained.py", ["--name", "quadratic", "--task", "quadratic", "--run", ".",
                            "--command", "c", "--description", "d"], "give --force"),
    ("beyond_paper.py", ["--horizons", "100", "200", "--tests", "5"],
     "--tests gives 1 counts for 2 --horizons"),
    ("beyond_paper.py", ["--paper", "zero=mnist-paper"], "--paper zero=mnist-paper: expected SEED=FILE"),
    ("beyond_paper.py", ["--seeds", "-1"], "--seeds"),
    ("beyond_paper.py", ["--long", "100", "5", "--ablations"], "--long and --ablations"),
])
def test_the_learned_optimizer_examples_report_mistakes_on_one_line(tmp_path, script, args,
                                                                     named):
    result = run(args, tmp_path, command=[sys.executable, str(ROOT / "examples" / script)])
    assert_usage_error(result, named)
