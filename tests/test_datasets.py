"""Specification of models.data: the IDX reader, where loaders look, downloads, shipped MNIST.

Everything runs on small generated files, the MNIST files shipped in the package and a local
HTTP server on 127.0.0.1; nothing here needs the network. The one test on the real Debian
Fashion-MNIST copy skips when it is absent.
"""

import gzip
import hashlib
import http.server
import io
import os
import pickle
import shutil
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from models.data import (
    DATA_DIR_ENV_VAR,
    MNIST_SHIPPED_DIR,
    MNIST_SHIPPED_SHA256,
    REMOTES,
    DatasetError,
    DownloadError,
    Remote,
    fetch_file,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)
from models.data import mnist, sources

IDX_TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(array):
    """IDX encoding of ``array``: 00 00 <type> <ndim>, big-endian uint32 dims, big-endian data."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_TYPE_CODES[array.dtype.type], array.ndim])
    header += b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_file(path, data, gz=False):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def digits(n, seed=0, side=28):
    """``n`` random uint8 images ``(n, side, side)`` and labels ``(n,)`` cycling 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, side, side), dtype=np.uint8), (np.arange(n) % 10).astype(
        np.uint8
    )


def write_idx_split(folder, split, images, labels, gz=True):
    """Write ``images``/``labels`` under the standard MNIST file names of ``split``."""
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if gz else ""
    write_file(Path(folder) / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz=gz)
    write_file(Path(folder) / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz=gz)


def files_in(folder):
    """Every file name in ``folder``, hidden ones too (where temporary downloads would hide)."""
    return sorted(path.name for path in Path(folder).iterdir()) if Path(folder).exists() else []


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Keep the developer's own $MINIGRAD_DATA, ~/.cache/minigrad and proxies out of every test."""
    monkeypatch.delenv(DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# ---------------------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_read_idx_round_trips_uint8_images(tmp_path, gz):
    images, _ = digits(7)
    path = write_file(tmp_path / "images.idx", idx_bytes(images), gz=gz)

    result = read_idx(path)

    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, images)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_reads_every_idx_type_into_native_byte_order(tmp_path, dtype):
    values = (np.arange(24).reshape(2, 3, 4) - 12).astype(dtype) * 3
    path = write_file(tmp_path / "values.idx.gz", idx_bytes(values), gz=True)

    result = read_idx(path)

    assert result.dtype == np.dtype(dtype)  # native order, not '>'
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, values)


def test_read_idx_detects_gzip_by_magic_bytes_not_by_file_name(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    gzipped_without_suffix = write_file(tmp_path / "labels.bin", idx_bytes(labels), gz=True)
    raw_with_gz_suffix = write_file(tmp_path / "labels.gz", idx_bytes(labels), gz=False)

    np.testing.assert_array_equal(read_idx(gzipped_without_suffix), labels)
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), labels)


def test_read_idx_returns_a_writable_array_it_owns(tmp_path):
    path = write_file(tmp_path / "labels.idx", idx_bytes(np.arange(5, dtype=np.int16)))

    result = read_idx(path)
    result[0] = 99  # must not raise "assignment destination is read-only"

    assert result[0] == 99


def test_read_idx_rejects_wrong_magic_number_naming_the_file(tmp_path):
    path = write_file(tmp_path / "not-idx.bin", b"\x89PNG\r\n\x1a\n" + bytes(100))

    with pytest.raises(DatasetError, match="not an IDX file") as error:
        read_idx(path)

    assert str(path) in str(error.value)
    assert "89 50 4e 47" in str(error.value)  # what was found


def test_read_idx_rejects_unknown_type_code(tmp_path):
    path = write_file(
        tmp_path / "odd.idx", bytes([0, 0, 0x0A, 1]) + (3).to_bytes(4, "big") + bytes(3)
    )

    with pytest.raises(DatasetError, match=r"unknown IDX type code 0x0A; expected one of 0x08"):
        read_idx(path)


def test_read_idx_rejects_zero_dimensions(tmp_path):
    path = write_file(tmp_path / "scalar.idx", bytes([0, 0, 0x08, 0]) + b"\x01")

    with pytest.raises(DatasetError, match="0 dimensions; expected at least 1"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_read_idx_rejects_data_shorter_than_the_header_says(tmp_path, gz):
    images, _ = digits(3)
    path = write_file(tmp_path / "short.idx", idx_bytes(images)[:-1], gz=gz)

    with pytest.raises(DatasetError, match=r"truncated IDX file: shape \(3, 28, 28\)"):
        read_idx(path)


def test_read_idx_rejects_a_header_cut_inside_the_dimensions(tmp_path):
    path = write_file(tmp_path / "cut.idx", idx_bytes(digits(2)[0])[:10])

    with pytest.raises(
        DatasetError, match="truncated IDX header: 3 dimensions need 16 bytes, the file has 10"
    ):
        read_idx(path)


def test_read_idx_rejects_trailing_garbage(tmp_path):
    path = write_file(tmp_path / "long.idx", idx_bytes(np.arange(4, dtype=np.uint8)) + b"junk")

    with pytest.raises(DatasetError, match="4 bytes of trailing garbage"):
        read_idx(path)


def test_read_idx_rejects_dims_that_disagree_with_the_data(tmp_path):
    data = idx_bytes(np.zeros((2, 4), dtype=np.uint8))
    claims_2_by_5 = data[:8] + (5).to_bytes(4, "big") + data[12:]
    path = write_file(tmp_path / "dims.idx", claims_2_by_5)

    with pytest.raises(DatasetError, match=r"shape \(2, 5\) of uint8 needs 22 bytes, found 20"):
        read_idx(path)


def test_read_idx_rejects_gzip_cut_short(tmp_path):
    compressed = gzip.compress(idx_bytes(digits(3)[0]))
    path = write_file(tmp_path / "cut.gz", compressed[: len(compressed) // 2])

    with pytest.raises(DatasetError, match="corrupt gzip data") as error:
        read_idx(path)

    assert str(path) in str(error.value)


def test_read_idx_rejects_gzip_with_a_damaged_byte(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(digits(3)[0])))
    compressed[-6] ^= 0xFF  # inside the CRC32 trailer: the stream inflates, the check fails
    path = write_file(tmp_path / "damaged.gz", bytes(compressed))

    with pytest.raises(DatasetError, match="corrupt gzip data"):
        read_idx(path)


def test_read_idx_rejects_an_empty_file(tmp_path):
    path = write_file(tmp_path / "empty.idx", b"")

    with pytest.raises(DatasetError, match=r"not an IDX file.*\(empty file\)"):
        read_idx(path)


# ---------------------------------------------------------------------------------------
# MNIST from a data directory, and where the data directory is
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_a_copy_in_the_data_dir_is_read_rather_than_the_shipped_one(tmp_path, gz):
    images, labels = digits(30)
    write_idx_split(tmp_path / "mnist", "test", images, labels, gz=gz)

    x, y, source = load_mnist("test", data_dir=tmp_path, return_source=True)

    assert x.shape == (30, 784) and x.dtype == np.float32
    assert y.shape == (30,) and y.dtype == np.int64
    np.testing.assert_array_equal(x, images.reshape(30, 784) / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    assert (source.kind, source.location) == ("data_dir", tmp_path / "mnist")


def test_data_dir_argument_beats_env_var_which_beats_home_cache(tmp_path, monkeypatch):
    argument_dir, env_dir, home = tmp_path / "arg", tmp_path / "env", tmp_path / "home"
    write_idx_split(argument_dir / "mnist", "train", *digits(10))
    write_idx_split(env_dir / "mnist", "train", *digits(20))
    write_idx_split(home / ".cache" / "minigrad" / "mnist", "train", *digits(30))
    monkeypatch.setenv("MINIGRAD_DATA", str(env_dir))

    assert len(load_mnist("train", data_dir=argument_dir)[0]) == 10
    assert len(load_mnist("train")[0]) == 20
    monkeypatch.delenv("MINIGRAD_DATA")
    assert len(load_mnist("train")[0]) == 30


def test_a_data_dir_without_mnist_means_the_shipped_copy_even_if_another_dir_has_it(
    tmp_path, monkeypatch
):
    write_idx_split(tmp_path / "env" / "mnist", "test", *digits(20))
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path / "env"))

    _, _, source = load_mnist("test", data_dir=tmp_path / "empty", return_source=True)

    assert source.kind == "shipped"  # one data dir is chosen; it is not a search path


def test_mismatched_image_and_label_counts_raise_naming_both_files(tmp_path):
    images, _ = digits(12)
    _, labels = digits(11)
    write_idx_split(tmp_path / "mnist", "train", images, labels)

    with pytest.raises(
        DatasetError, match="12 images in .*train-images.*11 labels in .*train-labels"
    ):
        load_mnist("train", data_dir=tmp_path)


def test_images_of_the_wrong_size_raise_with_the_expected_shape(tmp_path):
    write_idx_split(tmp_path / "mnist", "train", *digits(4, side=32))

    with pytest.raises(
        DatasetError,
        match=r"expected uint8 images of shape \(N, 28, 28\), found uint8 \(4, 32, 32\)",
    ):
        load_mnist("train", data_dir=tmp_path)


def test_labels_outside_0_to_9_raise(tmp_path):
    images, labels = digits(4)
    labels[2] = 10
    write_idx_split(tmp_path / "mnist", "train", images, labels)

    with pytest.raises(DatasetError, match="class ids 0..9, found values from 0 to 10"):
        load_mnist("train", data_dir=tmp_path)


def test_half_a_split_in_the_data_dir_raises_instead_of_quietly_using_the_shipped_copy(
    tmp_path,
):
    images, _ = digits(5)
    write_file(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", idx_bytes(images), gz=True)

    with pytest.raises(
        DatasetError,
        match=r"incomplete MNIST 'train' split .*not \['train-labels-idx1-ubyte\[.gz\]'\]",
    ):
        load_mnist("train", data_dir=tmp_path)


def test_split_must_be_train_or_test(tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'valid'"):
        load_mnist("valid", data_dir=tmp_path)


def test_the_source_is_announced_on_stderr_once(tmp_path, capsys):
    write_idx_split(tmp_path / "mnist", "test", *digits(10))

    load_mnist("test", data_dir=tmp_path)
    first = capsys.readouterr().err
    load_mnist("test", data_dir=tmp_path)
    second = capsys.readouterr().err

    assert f"MNIST from the data directory {tmp_path / 'mnist'}" in first
    assert second == ""


# ---------------------------------------------------------------------------------------
# Full MNIST, shipped in the package
# ---------------------------------------------------------------------------------------

# md5 of the uncompressed official MNIST files, as published with them.
OFFICIAL_MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def test_the_shipped_folder_holds_exactly_the_four_mnist_files():
    assert files_in(MNIST_SHIPPED_DIR) == sorted(f"{stem}.gz" for stem in OFFICIAL_MNIST_MD5)
    assert sorted(MNIST_SHIPPED_SHA256) == files_in(MNIST_SHIPPED_DIR)


@pytest.mark.parametrize("name", sorted(MNIST_SHIPPED_SHA256))
def test_each_shipped_file_has_its_pinned_sha256(name):
    assert sha256((MNIST_SHIPPED_DIR / name).read_bytes()) == MNIST_SHIPPED_SHA256[name]


@pytest.mark.parametrize("stem", sorted(OFFICIAL_MNIST_MD5))
def test_each_shipped_file_decompresses_to_the_official_mnist_file(stem):
    raw = gzip.decompress((MNIST_SHIPPED_DIR / f"{stem}.gz").read_bytes())

    assert hashlib.md5(raw).hexdigest() == OFFICIAL_MNIST_MD5[stem]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Both splits as ``load_mnist(split)`` returns them with no data-dir copy, no
    ``$MINIGRAD_DATA`` and no download: ``{split: (images, labels, source)}``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(DATA_DIR_ENV_VAR, raising=False)
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home-without-mnist")))
        return {split: load_mnist(split, return_source=True) for split in ("train", "test")}


def test_the_shipped_copy_is_the_offline_default(shipped):
    for _, _, source in shipped.values():
        assert (source.kind, source.location) == ("shipped", MNIST_SHIPPED_DIR)


def test_shipped_mnist_is_the_full_60000_train_and_10000_test_digits(shipped):
    (train_images, train_labels, _), (test_images, test_labels, _) = shipped.values()

    assert train_images.shape == (60_000, 784) and train_labels.shape == (60_000,)
    assert test_images.shape == (10_000, 784) and test_labels.shape == (10_000,)
    np.testing.assert_array_equal(
        np.bincount(train_labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    )
    np.testing.assert_array_equal(
        np.bincount(test_labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )


def test_shipped_mnist_is_float32_in_unit_interval_with_int64_labels(shipped):
    for images, labels, _ in shipped.values():
        assert images.dtype == np.float32 and labels.dtype == np.int64
        assert images.min() == 0.0 and images.max() == 1.0


def test_shipped_mnist_keeps_the_official_order(shipped):
    np.testing.assert_array_equal(shipped["train"][1][:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(shipped["test"][1][:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])


def test_the_shipped_copy_is_announced_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sources, "_announced", set())

    load_mnist("test", data_dir=tmp_path)

    assert f"minigrad: MNIST from the shipped copy {MNIST_SHIPPED_DIR}" in capsys.readouterr().err


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped folder in ``tmp_path / "shipped"``, used in its place."""
    copy = tmp_path / "shipped"
    shutil.copytree(MNIST_SHIPPED_DIR, copy)
    monkeypatch.setattr(mnist, "MNIST_SHIPPED_DIR", copy)
    return copy


def refuse_to_read(path):
    raise AssertionError(f"read_idx({path}) called on an unchecked shipped file")


def test_a_damaged_shipped_file_is_reported_and_neither_file_is_read(
    tmp_path, shipped_copy, monkeypatch
):
    name = "t10k-labels-idx1-ubyte.gz"  # the split's second file: the first is not read either
    damaged = bytearray((shipped_copy / name).read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (shipped_copy / name).write_bytes(bytes(damaged))
    monkeypatch.setattr(mnist, "read_idx", refuse_to_read)

    with pytest.raises(DatasetError) as error:
        load_mnist("test", data_dir=tmp_path / "empty")

    message = str(error.value)
    assert str(shipped_copy / name) in message
    assert f"sha256 {sha256(bytes(damaged))}" in message
    assert f"the shipped file's {MNIST_SHIPPED_SHA256[name]}" in message
    assert "the copy is damaged, reinstall minigrad" in message


def test_a_missing_shipped_file_is_reported_with_the_advice_to_reinstall(
    tmp_path, shipped_copy, monkeypatch
):
    (shipped_copy / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr(mnist, "read_idx", refuse_to_read)

    with pytest.raises(
        DatasetError, match=r"t10k-images-idx3-ubyte.gz: cannot read the shipped MNIST file"
    ) as error:
        load_mnist("test", data_dir=tmp_path / "empty")

    assert "the installation is incomplete, reinstall minigrad" in str(error.value)


# ---------------------------------------------------------------------------------------
# Fashion-MNIST: data directory, then the system copy
# ---------------------------------------------------------------------------------------


def test_fashion_mnist_prefers_the_data_dir_to_the_system_copy(tmp_path, monkeypatch):
    write_idx_split(tmp_path / "system", "train", *digits(20))
    write_idx_split(tmp_path / "data" / "fashion-mnist", "train", *digits(10))
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")

    images, _, source = load_fashion_mnist("train", data_dir=tmp_path / "data", return_source=True)

    assert len(images) == 10 and source.kind == "data_dir"


def test_fashion_mnist_falls_back_to_the_system_copy(tmp_path, monkeypatch):
    write_idx_split(tmp_path / "system", "test", *digits(20), gz=False)
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "system")

    images, _, source = load_fashion_mnist("test", data_dir=tmp_path / "data", return_source=True)

    assert len(images) == 20
    assert (source.kind, source.location) == ("system", tmp_path / "system")


def test_fashion_mnist_not_found_lists_places_searched_and_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-copy")

    with pytest.raises(DatasetError) as error:
        load_fashion_mnist("train", data_dir=tmp_path / "data")

    message = str(error.value)
    assert str(tmp_path / "data" / "fashion-mnist") in message
    assert str(tmp_path / "no-system-copy") in message
    assert (
        "download=True" in message
        and "MINIGRAD_DATA" in message
        and "dataset-fashion-mnist" in message
    )


@pytest.mark.skipif(
    not (mnist.FASHION_MNIST_SYSTEM_DIR / "train-labels-idx1-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
@pytest.mark.parametrize("split, per_class", [("train", 6000), ("test", 1000)])
def test_debian_fashion_mnist_copy_loads_in_full(tmp_path, split, per_class):
    images, labels, source = load_fashion_mnist(split, data_dir=tmp_path, return_source=True)

    assert source.kind == "system"
    assert images.shape == (10 * per_class, 784) and images.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(labels), [per_class] * 10)
    assert images.min() == 0.0 and images.max() == 1.0


# ---------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------


def cifar_batch_bytes(n, seed, n_labels=None):
    """A pickled CIFAR-10 batch of ``n`` images; pixel 0 of image 0 is marked in each plane."""
    data = np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[0, [0, 1024, 2048]] = [255, 128, 0]  # R, G, B of the top-left pixel
    labels = [i % 10 for i in range(n if n_labels is None else n_labels)]
    batch = {
        b"batch_label": b"generated",
        b"data": data,
        b"labels": labels,
        b"filenames": [b"x.png"] * n,
    }
    return pickle.dumps(batch, protocol=4)


CIFAR_BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar_folder(folder, n=3):
    for seed, name in enumerate(CIFAR_BATCH_NAMES):
        write_file(Path(folder) / "cifar-10-batches-py" / name, cifar_batch_bytes(n, seed))


def cifar_tarball_bytes(n=3):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for seed, name in enumerate(CIFAR_BATCH_NAMES):
            blob = cifar_batch_bytes(n, seed)
            member = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            member.size = len(blob)
            tar.addfile(member, io.BytesIO(blob))
    return buffer.getvalue()


def test_cifar10_reads_the_extracted_folder_as_n_channel_height_width(tmp_path):
    write_cifar_folder(tmp_path / "cifar10", n=3)

    images, labels, source = load_cifar10("train", data_dir=tmp_path, return_source=True)

    assert images.shape == (15, 3, 32, 32) and images.dtype == np.float32
    assert labels.shape == (15,) and labels.dtype == np.int64
    np.testing.assert_allclose(images[0, :, 0, 0], [1.0, 128 / 255, 0.0])
    assert source.kind == "data_dir"


def test_cifar10_reads_the_tarball_without_extracting_it(tmp_path):
    write_file(tmp_path / "cifar10" / "cifar-10-python.tar.gz", cifar_tarball_bytes(n=4))

    images, labels = load_cifar10("test", data_dir=tmp_path)

    assert images.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])
    assert files_in(tmp_path / "cifar10") == ["cifar-10-python.tar.gz"]


def test_cifar10_batch_with_mismatched_label_count_raises_naming_the_batch(tmp_path):
    write_cifar_folder(tmp_path / "cifar10")
    write_file(
        tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch",
        cifar_batch_bytes(3, 0, n_labels=2),
    )

    with pytest.raises(DatasetError, match="3 images in .*test_batch, 2 labels"):
        load_cifar10("test", data_dir=tmp_path)


def test_cifar10_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    write_cifar_folder(tmp_path / "cifar10")
    write_file(
        tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch",
        pickle.dumps({b"data": RunsCode()}),
    )

    with pytest.raises(
        DatasetError, match=r"refusing to load \w+\.mkdir: not part of a CIFAR-10 batch"
    ):
        load_cifar10("test", data_dir=tmp_path)
    assert not marker.exists()


def test_cifar10_not_found_lists_places_searched_and_how_to_provide(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_cifar10("train", data_dir=tmp_path)

    message = str(error.value)
    assert str(tmp_path / "cifar10" / "cifar-10-batches-py") in message
    assert str(tmp_path / "cifar10" / "cifar-10-python.tar.gz") in message
    assert "download=True" in message


# ---------------------------------------------------------------------------------------
# Downloads, against a local HTTP server
# ---------------------------------------------------------------------------------------


class FileServer:
    """An HTTP server on 127.0.0.1 serving ``routes``: URL path -> response.

    A response is ``bytes`` (served whole), an ``int`` (that HTTP status),
    ``("cut", body, claimed_length)``: headers promise ``claimed_length`` bytes, the
    connection closes after ``body``; or ``("chunked-cut", body)``: ``body`` is sent as one
    chunk of a chunked response, and the connection closes before the final empty chunk.
    """

    def __init__(self):
        self.routes = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                response = server.routes.get(self.path, 404)
                if isinstance(response, int):
                    self.send_error(response)
                    return
                if response[0] == "chunked-cut":
                    body = response[1]
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
                    self.close_connection = True
                    return
                body, claimed = (
                    (response, len(response)) if isinstance(response, bytes) else response[1:]
                )
                self.send_response(200)
                self.send_header("Content-Length", str(claimed))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, mirror):
        return f"http://127.0.0.1:{self.httpd.server_port}/{mirror}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    file_server = FileServer()
    yield file_server
    file_server.close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mnist_test_files():
    """Gzipped IDX bytes of a 10-image test split, keyed by file name."""
    images, labels = digits(10, seed=3)
    return {
        "t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(images)),
        "t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(labels)),
    }


def remote_for(server, mirrors, files):
    return Remote(
        mirrors=tuple(server.url(m) for m in mirrors),
        sha256={name: sha256(data) for name, data in files.items()},
    )


def test_download_saves_verified_files_then_loads_them(tmp_path, server, mnist_test_files):
    for name, data in mnist_test_files.items():
        server.routes[f"/good/{name}"] = data

    images, labels, source = load_mnist(
        "test",
        data_dir=tmp_path,
        download=True,
        remote=remote_for(server, ["good"], mnist_test_files),
        return_source=True,
    )

    assert images.shape == (10, 784) and source.kind == "download"
    assert files_in(tmp_path / "mnist") == sorted(mnist_test_files)
    for name, data in mnist_test_files.items():
        assert (tmp_path / "mnist" / name).read_bytes() == data


@pytest.mark.parametrize(
    "umask, mode", [(0o022, 0o644), (0o002, 0o664)], ids=["umask-022", "umask-002"]
)
def test_a_downloaded_file_gets_the_usual_permissions_not_those_of_a_temporary_file(
    tmp_path, server, mnist_test_files, umask, mode
):
    name, data = "t10k-labels-idx1-ubyte.gz", mnist_test_files["t10k-labels-idx1-ubyte.gz"]
    server.routes[f"/good/{name}"] = data

    previous = os.umask(umask)
    try:
        path = fetch_file(name, remote_for(server, ["good"], {name: data}), tmp_path)
    finally:
        os.umask(previous)

    assert path.stat().st_mode & 0o777 == mode  # as open(path, "w") gives; mkstemp's is 0o600


def test_download_announces_each_url_and_destination(tmp_path, server, mnist_test_files, capsys):
    name, data = "t10k-labels-idx1-ubyte.gz", mnist_test_files["t10k-labels-idx1-ubyte.gz"]
    server.routes[f"/good/{name}"] = data

    fetch_file(name, remote_for(server, ["good"], {name: data}), tmp_path)

    err = capsys.readouterr().err
    assert f"downloading {server.url('good')}/{name}" in err
    assert f"to {tmp_path / name}" in err
    assert "sha256 verified" in err


def test_checksum_mismatch_raises_and_leaves_no_file(tmp_path, server, mnist_test_files):
    name = "t10k-labels-idx1-ubyte.gz"
    server.routes[f"/bad/{name}"] = b"not what was pinned"

    with pytest.raises(
        DownloadError, match=f"sha256 mismatch: expected {sha256(mnist_test_files[name])}"
    ):
        fetch_file(name, remote_for(server, ["bad"], mnist_test_files), tmp_path / "mnist")

    assert files_in(tmp_path / "mnist") == []


def test_interrupted_transfer_raises_and_leaves_no_file(tmp_path, server, mnist_test_files):
    name = "t10k-images-idx3-ubyte.gz"
    data = mnist_test_files[name]
    server.routes[f"/flaky/{name}"] = ("cut", data[:100], len(data))

    with pytest.raises(DownloadError, match=f"interrupted after 100 of {len(data)} bytes"):
        fetch_file(name, remote_for(server, ["flaky"], mnist_test_files), tmp_path / "mnist")

    assert files_in(tmp_path / "mnist") == []


def test_chunked_transfer_cut_short_raises_and_leaves_no_file(tmp_path, server, mnist_test_files):
    name = "t10k-images-idx3-ubyte.gz"
    server.routes[f"/flaky/{name}"] = ("chunked-cut", mnist_test_files[name][:100])

    with pytest.raises(DownloadError, match="interrupted after 100 bytes"):
        fetch_file(name, remote_for(server, ["flaky"], mnist_test_files), tmp_path / "mnist")

    assert files_in(tmp_path / "mnist") == []


def test_ctrl_c_during_a_download_leaves_no_file(tmp_path, server, mnist_test_files, monkeypatch):
    name = "t10k-labels-idx1-ubyte.gz"
    server.routes[f"/good/{name}"] = mnist_test_files[name]

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)  # strikes after the bytes are written
    with pytest.raises(KeyboardInterrupt):
        fetch_file(name, remote_for(server, ["good"], mnist_test_files), tmp_path)

    assert files_in(tmp_path) == []


def test_a_failing_first_mirror_falls_through_to_the_second(tmp_path, server, mnist_test_files):
    name, data = "t10k-images-idx3-ubyte.gz", mnist_test_files["t10k-images-idx3-ubyte.gz"]
    server.routes[f"/corrupt/{name}"] = data[:-1] + b"!"
    server.routes[f"/good/{name}"] = data

    path = fetch_file(
        name, remote_for(server, ["missing", "corrupt", "good"], mnist_test_files), tmp_path
    )

    assert path.read_bytes() == data
    assert server.requests == [f"/missing/{name}", f"/corrupt/{name}", f"/good/{name}"]
    assert files_in(tmp_path) == [name]


def test_when_every_mirror_fails_the_error_lists_each_one(tmp_path, server, mnist_test_files):
    name = "t10k-labels-idx1-ubyte.gz"
    server.routes[f"/corrupt/{name}"] = b"garbage"
    remote = remote_for(server, ["missing", "corrupt"], mnist_test_files)

    with pytest.raises(DownloadError) as error:
        fetch_file(name, remote, tmp_path)

    message = str(error.value)
    assert f"{server.url('missing')}/{name}: HTTP Error 404" in message
    assert f"{server.url('corrupt')}/{name}: sha256 mismatch" in message
    assert f"Nothing was saved in {tmp_path}" in message
    assert files_in(tmp_path) == []


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_offline_download_fails_clearly_and_never_falls_back_to_the_shipped_copy(
    tmp_path, mnist_test_files
):
    offline = Remote(
        mirrors=(f"http://127.0.0.1:{closed_port()}/mnist",),
        sha256={n: sha256(d) for n, d in mnist_test_files.items()},
    )

    with pytest.raises(
        DownloadError, match="could not download t10k-images-idx3-ubyte.gz from any mirror"
    ) as error:
        load_mnist("test", data_dir=tmp_path, download=True, remote=offline)

    assert "Connection refused" in str(error.value)
    assert "put it in that folder" in str(error.value)
    assert files_in(tmp_path / "mnist") == []


def test_download_fetches_only_the_files_missing_from_the_data_dir(
    tmp_path, server, mnist_test_files
):
    labels_name, images_name = "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"
    write_file(tmp_path / "mnist" / labels_name, mnist_test_files[labels_name])
    server.routes[f"/good/{images_name}"] = mnist_test_files[images_name]

    load_mnist(
        "test",
        data_dir=tmp_path,
        download=True,
        remote=remote_for(server, ["good"], mnist_test_files),
    )

    assert server.requests == [f"/good/{images_name}"]


def test_nothing_is_downloaded_unless_asked(tmp_path, server, mnist_test_files):
    remote = remote_for(server, ["good"], mnist_test_files)

    _, _, source = load_mnist("test", data_dir=tmp_path, remote=remote, return_source=True)

    assert source.kind == "shipped"
    assert server.requests == []


def test_fashion_mnist_downloads_when_neither_data_dir_nor_system_copy_has_it(
    tmp_path, server, mnist_test_files, monkeypatch
):
    monkeypatch.setattr(mnist, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-copy")
    for name, data in mnist_test_files.items():
        server.routes[f"/fashion/{name}"] = data

    images, _, source = load_fashion_mnist(
        "test",
        data_dir=tmp_path,
        download=True,
        remote=remote_for(server, ["fashion"], mnist_test_files),
        return_source=True,
    )

    assert len(images) == 10
    assert (source.kind, source.location) == ("download", tmp_path / "fashion-mnist")


def test_cifar10_downloads_the_tarball_and_reads_it(tmp_path, server):
    tarball = cifar_tarball_bytes(n=2)
    server.routes["/kriz/cifar-10-python.tar.gz"] = tarball
    remote = Remote(
        mirrors=(server.url("kriz"),), sha256={"cifar-10-python.tar.gz": sha256(tarball)}
    )

    images, labels, source = load_cifar10(
        "train", data_dir=tmp_path, download=True, remote=remote, return_source=True
    )

    assert images.shape == (10, 3, 32, 32) and labels.shape == (10,)
    assert source.kind == "download"
    assert files_in(tmp_path / "cifar10") == ["cifar-10-python.tar.gz"]


def test_fetch_file_refuses_a_file_with_no_pinned_checksum(tmp_path, server):
    with pytest.raises(DatasetError, match="no sha256 pinned for 'extra.gz'"):
        fetch_file("extra.gz", Remote(mirrors=(server.url("x"),), sha256={}), tmp_path)

    assert server.requests == []


def test_pinned_checksums_cover_every_file_the_loaders_download():
    assert set(REMOTES["mnist"].sha256) == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    assert set(REMOTES["fashion-mnist"].sha256) == set(REMOTES["mnist"].sha256)
    assert set(REMOTES["cifar10"].sha256) == {"cifar-10-python.tar.gz"}
    for remote in REMOTES.values():
        assert remote.mirrors
        assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in remote.sha256.values())
