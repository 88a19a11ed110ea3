"""minigrad.io: the one atomic write, npz archives and the checkpoint format."""
import os

import numpy as np
import pytest

from minigrad.io import (atomic_write, prefixed, read_checkpoint, read_npz, unprefixed,
                         write_checkpoint, write_npz, write_text)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_an_atomic_write_gets_the_usual_permissions_and_leaves_no_temporary_file(tmp_path,
                                                                                 umask_022):
    path = tmp_path / "new" / "report.md"
    write_text(path, "hello")
    assert path.read_text() == "hello\n"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path / "new") == ["report.md"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "optimizer.npz"
    write_npz(path, {"x": np.arange(3)})
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path) as f:
            f.write(b"half a file")
            raise RuntimeError("disk full")
    np.testing.assert_array_equal(read_npz(path, "test file")["x"], [0, 1, 2])
    assert os.listdir(tmp_path) == ["optimizer.npz"]


def test_atomic_write_names_the_allowed_modes():
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic_write("never-written", "a"):
            pass


def test_a_file_that_is_not_an_npz_is_reported_with_what_it_should_have_been(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("plain text")
    with pytest.raises(ValueError, match=r"notes.npz: not a readable learned optimizer"):
        read_npz(path, "learned optimizer")
    with pytest.raises(FileNotFoundError):
        read_npz(tmp_path / "absent.npz", "learned optimizer")


def test_prefixed_names_round_trip():
    state = {"cells.0.weight": np.ones(2), "out_bias": np.zeros(1)}
    arrays = {**prefixed("net/all", state), "net/allx/other": np.ones(1)}
    assert sorted(arrays) == ["net/all/cells.0.weight", "net/all/out_bias", "net/allx/other"]
    assert sorted(unprefixed(arrays, "net/all")) == ["cells.0.weight", "out_bias"]


def test_a_checkpoint_returns_its_arrays_record_and_optimizer_state(tmp_path):
    optimizer_state = {"state": {0: {"step": 3, "exp_avg": np.full(2, 0.5)}},
                       "param_groups": [{"lr": 0.1, "params": [0]}]}
    write_checkpoint(tmp_path / "c.npz", {"epoch": 7}, {"net/w": np.arange(2.0)},
                     {"adam": optimizer_state})
    arrays, record, states = read_checkpoint(tmp_path / "c.npz", "checkpoint", ["adam"])
    assert record == {"epoch": 7} and list(arrays) == ["net/w"]
    assert states["adam"]["param_groups"] == [{"lr": 0.1, "params": [0]}]
    assert states["adam"]["state"][0]["step"] == 3
    np.testing.assert_array_equal(states["adam"]["state"][0]["exp_avg"], [0.5, 0.5])
    write_npz(tmp_path / "plain.npz", {"x": np.zeros(1)})
    with pytest.raises(ValueError, match=r"plain.npz: not a readable checkpoint"):
        read_checkpoint(tmp_path / "plain.npz", "checkpoint", ["adam"])
