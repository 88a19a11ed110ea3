"""CIFAR-10: the python version's pickled batches, read from the extracted folder or straight
from the tarball, with an unpickler that loads arrays and nothing else."""

import io
import pickle
import tarfile
import zlib

import numpy as np

from .download import REMOTES, fetch_file
from .errors import DatasetError
from .labelled import check_labels, check_split, to_float_images
from .sources import DATA_DIR_ENV_VAR, Source, announce, resolve_data_dir

_ARCHIVE = "cifar-10-python.tar.gz"
_FOLDER = "cifar-10-batches-py"
_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}


def load_cifar10(split, *, data_dir=None, download=False, remote=None, return_source=False):
    """CIFAR-10 (32x32 colour images of 10 classes), from the data directory or a download.

    split: "train" (50,000 images, data_batch_1..5) or "test" (10,000, test_batch).
    data_dir: folder holding ``cifar10/cifar-10-batches-py/`` (the extracted archive) or
        ``cifar10/cifar-10-python.tar.gz`` (read without extracting); default
        ``$MINIGRAD_DATA`` or ``~/.cache/minigrad``.
    download: if neither is there, fetch the archive (170 MB) into ``<data dir>/cifar10/``.
    remote: mirrors and checksum to download from; default ``REMOTES["cifar10"]``.
    return_source: also return the ``Source`` the data came from.

    Returns ``(images, labels)``: float32 ``(N, 3, 32, 32)`` in [0, 1] and int64 ``(N,)``;
    plus the ``Source`` if ``return_source``. Raises ``DatasetError`` listing the places
    searched when no copy is found and ``download`` is False.
    """
    check_split(split)
    root, how = resolve_data_dir(data_dir)
    folder = root / "cifar10"
    extracted = folder / _FOLDER
    archive = folder / _ARCHIVE
    if extracted.is_dir():
        batches = [_read_cifar_batch_file(extracted / name) for name in _BATCHES[split]]
        source = Source("data_dir", extracted)
    else:
        if archive.is_file():
            source = Source("data_dir", archive)
        elif download:
            archive = fetch_file(_ARCHIVE, remote or REMOTES["cifar10"], folder)
            source = Source("download", archive)
        else:
            raise DatasetError(
                f"CIFAR-10 not found. Searched:\n"
                f"  {extracted}\n  {archive}\n"
                f"(the data directory, chosen by {how}). To provide it: pass download=True "
                f"(--download on the command line); "
                f"or put the python version of CIFAR-10 ({_ARCHIVE}, or the "
                f"{_FOLDER}/ folder it extracts to) in {folder} (or in <dir>/cifar10/ "
                f"with data_dir=<dir> or ${DATA_DIR_ENV_VAR}=<dir>)."
            )
        batches = _read_cifar_archive(archive, _BATCHES[split])

    images = np.concatenate([batch_images for batch_images, _ in batches])
    labels = np.concatenate([batch_labels for _, batch_labels in batches])
    announce("CIFAR-10", source)
    return (images, labels, source) if return_source else (images, labels)


def _read_cifar_batch_file(path):
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing; expected the CIFAR-10 batch {path.name} in {path.parent}"
        )
    return _parse_cifar_batch(path.read_bytes(), str(path))


def _read_cifar_archive(archive, names):
    """Read the batches ``names`` straight from the tarball, in the order given."""
    wanted = {f"{_FOLDER}/{name}": name for name in names}
    blobs = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    blobs[wanted[member.name]] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{archive}: not a readable CIFAR-10 tar.gz archive ({exc})") from None
    missing = [name for name in names if name not in blobs]
    if missing:
        raise DatasetError(f"{archive}: missing {[f'{_FOLDER}/{name}' for name in missing]}")
    return [_parse_cifar_batch(blobs[name], f"{archive}:{_FOLDER}/{name}") for name in names]


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and refuses everything else.

    The batches are Python pickles, and unpickling can call any importable function; a
    tampered file in a data directory must not be able to run code. A batch needs only
    numpy's array reconstruction, so only that is allowed.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # how the original batches were written
        ("numpy._core.multiarray", "_reconstruct"),  # the same, pickled by numpy >= 2
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: not part of a CIFAR-10 batch"
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)


def _numpy_reconstruct():
    # numpy 2 moved numpy.core to numpy._core; name the one this numpy has, without the
    # deprecation warning that touching numpy.core raises under numpy 2.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _parse_cifar_batch(blob, where):
    """One CIFAR-10 batch pickle -> float32 ``(n, 3, 32, 32)`` images, int64 ``(n,)`` labels.

    A batch holds ``data``: uint8 ``(n, 3072)``, each row 1024 red, 1024 green, 1024 blue
    values of a row-major 32x32 image; and ``labels``: n ints in 0..9.
    """
    try:
        # encoding="bytes": the batches were pickled by Python 2, whose str is bytes.
        batch = _CifarUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{where}: not a readable CIFAR-10 batch ({exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"{where}: expected a dict with keys b'data' and b'labels'")
    data = batch[b"data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        found = (
            f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        )
        raise DatasetError(f"{where}: expected b'data' as uint8 (n, 3072), found {found}")
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if labels.ndim != 1:
        raise DatasetError(
            f"{where}: expected b'labels' as a flat list, found shape {labels.shape}"
        )
    check_labels(where, len(data), where, labels)
    return to_float_images(data.reshape(-1, 3, 32, 32)), labels
