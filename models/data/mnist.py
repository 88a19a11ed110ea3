"""MNIST and Fashion-MNIST: a pair of IDX files (images, labels) per split.

MNIST also has a source of its own: the four official files, shipped gzipped in ``mnist/``
beside this file (see README.md there), so that full MNIST loads offline.
"""

import hashlib
from pathlib import Path

import numpy as np

from .download import REMOTES, fetch_file
from .errors import DatasetError
from .idx import read_idx
from .labelled import check_labels, check_split, to_float_images
from .sources import DATA_DIR_ENV_VAR, Source, announce, resolve_data_dir

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_SHIPPED_DIR = Path(__file__).parent / "mnist"
# sha256 of the shipped .gz files. They were gzipped with `gzip -n -9`, so these differ from
# the official downloads' digests in REMOTES; the uncompressed bytes are the official ones.
MNIST_SHIPPED_SHA256 = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}

_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(split, *, data_dir=None, download=False, remote=None, return_source=False):
    """MNIST digits, from the data directory, a download, or the shipped copy.

    split: "train" (the 60,000 training digits) or "test" (the 10,000 test digits), in
        the official order.
    data_dir: folder holding ``mnist/<IDX files>``; default ``$MINIGRAD_DATA`` or
        ``~/.cache/minigrad``.
    download: if the data directory lacks the split's files, fetch them (about 10 MB for
        train) into ``<data dir>/mnist/``. A failed download raises; it never falls back
        to the shipped copy, because whoever asked for the files in the data directory
        should learn that they did not arrive.
    remote: mirrors and checksums to download from; default ``REMOTES["mnist"]``.
    return_source: also return the ``Source`` the data came from.

    Without the split in the data directory and without ``download=True``, the result is
    read from the copy shipped in ``MNIST_SHIPPED_DIR``, the same digits as the official
    files. A data directory holding only one of the split's two files raises
    ``DatasetError`` (a half-finished copy is a mistake to report, not a reason to read
    another copy), unless ``download=True`` fetches the missing one.

    Returns ``(images, labels)``: float32 ``(N, 784)`` in [0, 1] and int64 ``(N,)``;
    plus the ``Source`` if ``return_source``.
    """
    check_split(split)
    root, _ = resolve_data_dir(data_dir)
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
        found = _checked_shipped_files(split)
        source = Source("shipped", MNIST_SHIPPED_DIR)

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
            f"Expected the files {files}. To provide them: pass download=True (--download on "
            f"the command line); or put "
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
        f"partial copy, or pass download=True (--download) to fetch what is missing."
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


def _checked_shipped_files(split):
    """The paths of the split's two shipped files, once both match their pinned sha256.

    Both are checked before either is read (hashing costs a fraction of decompressing), so
    that a damaged or missing file is reported as such rather than parsed into wrong digits.
    """
    paths = [MNIST_SHIPPED_DIR / f"{stem}.gz" for stem in _IDX_STEMS[split]]
    for path in paths:
        expected = MNIST_SHIPPED_SHA256[path.name]
        try:
            found = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise DatasetError(
                f"{path}: cannot read the shipped MNIST file ({exc.strerror}); expected it "
                f"in the installed package with sha256 {expected}; the installation is "
                f"incomplete, reinstall minigrad"
            ) from None
        if found != expected:
            raise DatasetError(
                f"{path}: sha256 {found} does not match the shipped file's {expected}; "
                f"the copy is damaged, reinstall minigrad"
            )
    return paths
