"""Independent runs on several workers or a Dask cluster (optim/learned/parallel.py): the same
numbers whatever runs them, through the real command line."""
import os
import subprocess
import sys

import numpy as np
import pytest
from test_cli import ENV, run
from test_datasets import digits, write_idx_split

from optim.learned import CoordinatewiseLSTM, NetworkConfig, load_networks, save_networks
from optim.learned.parallel import Runner


def square(x):
    return x * x


def pid(_):
    return os.getpid()


def test_a_runner_returns_results_in_the_order_of_the_jobs_whatever_the_workers():
    jobs = list(range(50))
    with Runner(workers=1) as serial, Runner(workers=2) as pool:
        assert serial.map(square, jobs, progress=False) == [x * x for x in jobs]
        assert pool.map(square, jobs, progress=False) == [x * x for x in jobs]
        assert len(set(pool.map(pid, jobs, progress=False)) - {os.getpid()}) >= 1


def test_a_runner_needs_at_least_one_worker():
    with pytest.raises(ValueError, match="workers must be an integer of at least 1, got 0"):
        Runner(workers=0)


def test_workers_1_and_2_write_the_same_comparison(tmp_path):
    trained = run(["train", "--task", "quadratic", "--epochs", "1", "--out", "run"], tmp_path)
    assert trained.returncode == 0, trained.stderr
    for workers in (1, 2):
        result = run(["compare", "--task", "quadratic", "--optimizer", "run/optimizer.npz",
                      "--steps", "5", "--tests", "6", "--workers", workers,
                      "--out", f"w{workers}"], tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "w1" / "compare.json").read_bytes() == \
        (tmp_path / "w2" / "compare.json").read_bytes()


def test_workers_1_and_2_train_the_same_optimizer(tmp_path):
    for workers in (1, 2):
        result = run(["train", "--task", "quadratic", "--epochs", "2", "--workers", workers,
                      "--out", f"w{workers}"], tmp_path)
        assert result.returncode == 0, result.stderr
    (one, extra_one), (two, extra_two) = (
        load_networks(tmp_path / f"w{w}" / "optimizer.npz", with_extra=True) for w in (1, 2))
    assert extra_one["validation"] == extra_two["validation"]
    for key, value in one["all"].state_dict().items():
        np.testing.assert_array_equal(value, two["all"].state_dict()[key])


def small_mnist(folder):
    """A data directory with a 600-digit MNIST training split and a 100-digit test split."""
    for split, n in (("train", 600), ("test", 100)):
        images, labels = digits(n, seed=n)
        write_idx_split(folder / "mnist", split, images, labels)


def test_workers_rebuild_mnist_problems_from_the_data_directory(tmp_path):
    small_mnist(tmp_path / "data")
    save_networks(tmp_path / "optimizer.npz", {"all": CoordinatewiseLSTM(NetworkConfig())})
    for workers in (1, 2):
        result = run(["compare", "--task", "mnist-relu", "--optimizer", "optimizer.npz",
                      "--steps", "3", "--tests", "3", "--data-dir", "data",
                      "--workers", workers, "--out", f"w{workers}"], tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "w1" / "compare.json").read_bytes() == \
        (tmp_path / "w2" / "compare.json").read_bytes()


def test_a_dask_cluster_writes_the_same_comparison_as_one_worker(tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason="needs Dask's distributed, the cluster extra: pip install -e "
                              "'.[cluster]' (the test extra, which CI installs, includes it)")
    trained = run(["train", "--task", "quadratic", "--epochs", "1", "--out", "run"], tmp_path)
    assert trained.returncode == 0, trained.stderr
    args = ["compare", "--task", "quadratic", "--optimizer", "run/optimizer.npz", "--steps", "5",
            "--tests", "6"]
    assert run([*args, "--workers", "1", "--out", "one"], tmp_path).returncode == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster:
        result = run([*args, "--cluster", cluster.scheduler_address, "--out", "dask"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "one" / "compare.json").read_bytes() == \
        (tmp_path / "dask" / "compare.json").read_bytes()


def test_a_cluster_that_cannot_be_reached_is_one_line_exit_2(tmp_path):
    pytest.importorskip("distributed", reason="needs Dask's distributed (the cluster extra)")
    trained = run(["train", "--task", "quadratic", "--epochs", "1", "--out", "run"], tmp_path)
    assert trained.returncode == 0
    result = subprocess.run(
        [sys.executable, "-m", "optim.learned.cli", "compare", "--task", "quadratic",
         "--optimizer", "run/optimizer.npz", "--steps", "2", "--tests", "1", "--out", "x",
         "--cluster", "tcp://127.0.0.1:9"], cwd=tmp_path, capture_output=True, text=True,
        env={**ENV, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "--cluster tcp://127.0.0.1:9: cannot connect" in result.stderr.strip().splitlines()[-1]
