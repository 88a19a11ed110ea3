"""MNIST and Fashion-MNIST: a pair of IDX files (images, labels) per split.

MNIST also has a source of its own: the 5,000 digits shipped in ``mnist_5k.npz`` beside this
file (see README.md there), so that it loads offline.
"""

import hashlib
import io
from pathlib import Path

import numpy as np

from .download import REMOTES, fetch_file
from .errors import DatasetError
from .idx import read_idx
from .labelled import check_labels, check_split, to_float_images
from .sources import DATA_DIR_ENV_VAR, Source, announce, resolve_data_dir

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_SUBSET_PATH = Path(__file__).parent / "mnist_5k.npz"
MNIST_SUBSET_SHA256 = "970702d994c498f4ed47376383483ffa572089f72cd489dad1f40f362dbc14bf"

_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(split, *, data_dir=None, download=False, remote=None, return_source=False):
    """MNIST digits, from the data directory, a download, or the shipped 5k subset.

    split: "train" (60,000 images in full MNIST) or "test" (10,000).
    data_dir: folder holding ``mnist/<IDX files>``; default ``$MINIGRAD_DATA`` or
        ``~/.cache/minigrad``.
    download: if the data directory lacks the split's files, fetch them (about 10 MB for
        train) into ``<data dir>/mnist/``. A failed download raises; it never falls back
        to the subset, because whoever asked for full MNIST should not silently get 5k.
    remote: mirrors and checksums to download from; default ``REMOTES["mnist"]``.
    return_source: also return the ``Source`` the data came from.

    Without full MNIST in the data directory and without ``download=True``, the result is
    the shipped subset: 5,000 real digits, 500 per class; per class the first 400 are
    "train" and the last 100 "test", so the splits share no digit. Its images are
    interleaved by class (0, 1, ..., 9, 0, 1, ...) so any prefix is class-balanced.

    Returns ``(images, labels)``: float32 ``(N, 784)`` in [0, 1] and int64 ``(N,)``;
    plus the ``Source`` if ``return_source``.
    """
    check_split(split)
    root, how = resolve_data_dir(data_dir)
    folder = root / "mnist"
    found = _find_idx_files(folder, split)
    if all(found):
        source = Source("data_dir", folder)
    elif any(found) and not download:
        raise _partial_copy_error("MNIST", folder, split, found)
    elif download:
        found = _download_idx_files(split, remote or REMOTES["mnist"], folder, found)
        source = Source("download", folder)
    else:
        images, labels = _load_mnist_subset(split)
        source = Source("shipped_subset", MNIST_SUBSET_PATH)
        announce(
            "MNIST",
            source,
            hint=(
                f" (4,000 train / 1,000 test); for all 70,000 digits put the IDX files in "
                f"{folder} (chosen by {how}) or pass download=True"
            ),
        )
        return (images, labels, source) if return_source else (images, labels)

    images, labels = _load_idx_split(*found, image_shape=(28, 28))
    announce("MNIST", source)
    return (images, labels, source) if return_source else (images, labels)


def load_fashion_mnist(split, *, data_dir=None, download=False, remote=None, return_source=False):
    """Fashion-MNIST (Zalando's 28x28 clothing images), from the data directory, the
    system copy, or a download.

    split: "train" (60,000 images) or "test" (10,000).
    data_dir: folder holding ``fashion-mnist/<IDX files>``; default ``$MINIGRAD_DATA``
        or ``~/.cache/minigrad``.
    download: if neither the data directory nor ``FASHION_MNIST_SYSTEM_DIR`` (where
        Debian's ``dataset-fashion-mnist`` installs it) has the split, fetch it (about
        26 MB for train) into ``<data dir>/fashion-mnist/``.
    remote: mirrors and checksums to download from; default ``REMOTES["fashion-mnist"]``.
    return_source: also return the ``Source`` the data came from.

    Returns ``(images, labels)``: float32 ``(N, 784)`` in [0, 1] and int64 ``(N,)``;
    plus the ``Source`` if ``return_source``. Raises ``DatasetError`` listing the places
    searched when no copy is found and ``download`` is False, and when the data directory
    holds only one of the split's two files (a half-finished copy is a mistake to report,
    not a reason to read another copy).
    """
    check_split(split)
    root, how = resolve_data_dir(data_dir)
    folder = root / "fashion-mnist"
    found = _find_idx_files(folder, split)
    system_found = _find_idx_files(FASHION_MNIST_SYSTEM_DIR, split)
    if all(found):
        source = Source("data_dir", folder)
    elif any(found) and not download:
        raise _partial_copy_error("Fashion-MNIST", folder, split, found)
    elif all(system_found):
        found = system_found
        source = Source("system", FASHION_MNIST_SYSTEM_DIR)
    elif download:
        found = _download_idx_files(split, remote or REMOTES["fashion-mnist"], folder, found)
        source = Source("download", folder)
    else:
        files = ", ".join(f"{stem}[.gz]" for stem in _IDX_STEMS[split])
        raise DatasetError(
            f"Fashion-MNIST {split!r} split not found. Searched:\n"
            f"  {folder} (the data directory, chosen by {how})\n"
            f"  {FASHION_MNIST_SYSTEM_DIR} (Debian's dataset-fashion-mnist package)\n"
            f"Expected the files {files}. To provide them: pass download=True; or put "
            f"them in {folder} (or in <dir>/fashion-mnist/ with data_dir=<dir> or "
            f"${DATA_DIR_ENV_VAR}=<dir>); or, on Debian, `apt-get install dataset-fashion-mnist`."
        )

    images, labels = _load_idx_split(*found, image_shape=(28, 28))
    announce("Fashion-MNIST", source)
    return (images, labels, source) if return_source else (images, labels)


def _find_idx_files(folder, split):
    """``[images path or None, labels path or None]`` for ``split`` in ``folder``.

    The uncompressed file is preferred to the ``.gz`` when both exist: it reads faster.
    """
    found = []
    for stem in _IDX_STEMS[split]:
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found.append(next((path for path in candidates if path.is_file()), None))
    return found


def _partial_copy_error(dataset, folder, split, found):
    present = [path.name for path in found if path is not None]
    missing = [stem for stem, path in zip(_IDX_STEMS[split], found, strict=True) if path is None]
    return DatasetError(
        f"incomplete {dataset} {split!r} split in {folder}: found {present} but not "
        f"{[f'{stem}[.gz]' for stem in missing]}. Add the missing file, remove the "
        f"partial copy, or pass download=True to fetch what is missing."
    )


def _download_idx_files(split, remote, folder, found):
    """Fetch whichever of the split's two files ``found`` lacks; return both paths."""
    return [
        path if path is not None else fetch_file(f"{stem}.gz", remote, folder)
        for stem, path in zip(_IDX_STEMS[split], found, strict=True)
    ]


def _load_idx_split(images_path, labels_path, image_shape):
    """Read and check an images/labels IDX pair.

    Returns float32 ``(N, prod(image_shape))`` images in [0, 1] and int64 ``(N,)`` labels.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != image_shape:
        raise DatasetError(
            f"{images_path}: expected uint8 images of shape (N, {image_shape[0]}, "
            f"{image_shape[1]}), found {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{labels_path}: expected uint8 labels of shape (N,), "
            f"found {labels.dtype} {labels.shape}"
        )
    check_labels(images_path, len(images), labels_path, labels)
    return to_float_images(images.reshape(len(images), -1)), labels.astype(np.int64)


def _load_mnist_subset(split):
    """The shipped 5k digits, split per class: first 400 train, last 100 test.

    Returns float32 ``(4000 or 1000, 784)`` and int64 ``(4000 or 1000,)``, interleaved by
    class. The file's sha256 is checked first (cheap: 0.8 MB) so that a damaged copy is
    reported as such rather than parsed into wrong digits.
    """
    raw = MNIST_SUBSET_PATH.read_bytes()
    found = hashlib.sha256(raw).hexdigest()
    if found != MNIST_SUBSET_SHA256:
        raise DatasetError(
            f"{MNIST_SUBSET_PATH}: sha256 {found} does not match the shipped file's "
            f"{MNIST_SUBSET_SHA256}; the copy is damaged, reinstall minigrad"
        )
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]

    per_class = 500
    n_train = 400
    rows = slice(0, n_train) if split == "train" else slice(n_train, per_class)
    # (per-split count, 10) row-major -> 0, 1, ..., 9, 0, 1, ...
    index = np.stack(
        [np.flatnonzero(labels == digit)[rows] for digit in range(10)], axis=1
    ).reshape(-1)
    return to_float_images(images[index]), labels[index].astype(np.int64)
