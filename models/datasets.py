"""Image classification data sets as numpy arrays: MNIST, Fashion-MNIST, CIFAR-10.

Every loader returns ``(images, labels)``:

- images: float32 in [0, 1]; MNIST and Fashion-MNIST ``(N, 784)`` (28x28, row-major),
  CIFAR-10 ``(N, 3, 32, 32)`` (channels R, G, B).
- labels: int64 ``(N,)``, class ids 0..9.

Where the files come from, first match wins:

1. The data directory: the ``data_dir=`` argument, else the ``MINIGRAD_DATA`` environment
   variable, else ``~/.cache/minigrad``. Each data set has its own subfolder holding the
   files under their usual names, gzipped or not::

       <data dir>/mnist/, <data dir>/fashion-mnist/:
           train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]    ("train")
           t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]     ("test")
       <data dir>/cifar10/:
           cifar-10-batches-py/  or  cifar-10-python.tar.gz

2. Fashion-MNIST only: the copy Debian's ``dataset-fashion-mnist`` package installs in
   ``/usr/share/datasets/fashion-mnist/``.
3. A download, only when asked for with ``download=True``: each file is fetched from the
   mirrors in ``REMOTES`` in order, checked against its pinned sha256, and saved into the
   data directory; nothing is left behind by a failed or interrupted download.
4. MNIST only: when neither 1 nor 3 applies, the 5,000 real digits shipped in
   ``models/data/mnist_5k.npz`` (see ``models/data/README.md``), split 4,000 train /
   1,000 test. So ``load_mnist`` works offline out of the box, and gives full MNIST as
   soon as the files are in the data directory or ``download=True`` is passed.

Nothing is downloaded unless asked, because a laptop on a metered link or an offline
machine should not stall on a 170 MB fetch it did not request; when nothing is found the
error lists the places searched and how to provide the files.

Which source was used is printed to stderr once per process and data set, and returned
as a third value ``Source`` when the loader is called with ``return_source=True``.
"""

import gzip
import hashlib
import http.client
import io
import os
import pickle
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """A data file is missing, malformed, or inconsistent with its partner file."""


class DownloadError(DatasetError):
    """No mirror delivered a file whose sha256 matched the pinned one."""


# ---------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------

# IDX type codes (http://yann.lecun.com/exdb/mnist/, bottom of the page); data is big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path):
    """Read an IDX file (the format of the MNIST files), gzipped or not.

    Layout: two zero bytes, a type code byte, a byte ``ndim``, then ``ndim`` big-endian
    uint32 sizes, then the values in C order. Gzip is recognised by its magic bytes, not by
    the file name, so a renamed file still reads.

    Returns an array of shape ``(d0, ..., d{ndim-1})`` in the stored dtype, native byte
    order. Raises ``DatasetError`` naming the file when the header is not IDX, the type
    code is unknown, the data is shorter or longer than the header says, or the gzip
    stream is corrupt. The whole file is checked before the array is built, so no
    half-read array is ever returned.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(
                f"{path}: corrupt gzip data ({exc}); expected a complete gzip stream "
                f"holding an IDX file"
            ) from None

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(
            f"{path}: not an IDX file: expected the magic number 00 00 <type> <ndim>, "
            f"found bytes {raw[:4].hex(' ') or '(empty file)'}"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES)
        raise DatasetError(
            f"{path}: unknown IDX type code 0x{type_code:02X}; expected one of {known}"
        )
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header says 0 dimensions; expected at least 1")

    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} bytes, "
            f"the file has {len(raw)}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = header_size + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if len(raw) < expected:
        raise DatasetError(
            f"{path}: truncated IDX file: shape {shape} of {dtype.name} needs "
            f"{expected} bytes, found {len(raw)}"
        )
    if len(raw) > expected:
        raise DatasetError(
            f"{path}: {len(raw) - expected} bytes of trailing garbage: shape {shape} of "
            f"{dtype.name} needs {expected} bytes, found {len(raw)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # a native-order, writable copy


# ---------------------------------------------------------------------------------------
# Where files are looked for
# ---------------------------------------------------------------------------------------

DATA_DIR_ENV_VAR = "MINIGRAD_DATA"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_SUBSET_PATH = Path(__file__).parent / "data" / "mnist_5k.npz"
MNIST_SUBSET_SHA256 = "970702d994c498f4ed47376383483ffa572089f72cd489dad1f40f362dbc14bf"

_SPLITS = ("train", "test")
_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}


def resolve_data_dir(data_dir=None):
    """The data directory: ``data_dir``, else ``$MINIGRAD_DATA``, else ``~/.cache/minigrad``.

    Returns ``(path, how)`` where ``how`` says which of the three chose it, for messages.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser(), "the data_dir argument"
    from_env = os.environ.get(DATA_DIR_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser(), f"${DATA_DIR_ENV_VAR}"
    return Path.home() / ".cache" / "minigrad", f"the default, as ${DATA_DIR_ENV_VAR} is unset"


@dataclass(frozen=True)
class Source:
    """Where a loader found its data.

    kind: "data_dir", "system" (a copy installed by an OS package), "download" (fetched
    now into the data directory) or "shipped_subset" (``models/data/mnist_5k.npz``).
    location: the folder or file read.
    """

    kind: str
    location: Path

    def __str__(self):
        descriptions = {
            "data_dir": "the data directory",
            "system": "the system copy",
            "download": "files just downloaded to",
            "shipped_subset": "the shipped 5k subset",
        }
        return f"{descriptions[self.kind]} {self.location}"


_announced = set()


def _announce(dataset, source, hint=""):
    """Tell the person running the code, once per process, where ``dataset`` came from."""
    if (dataset, source) in _announced:
        return
    _announced.add((dataset, source))
    print(f"minigrad: {dataset} from {source}{hint}", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Remote:
    """Where a data set's files can be downloaded, and the sha256 each must have.

    mirrors: base URLs tried in order; a file's URL is ``mirror + "/" + file name``.
    sha256: file name -> expected hex digest of the file as served (the ``.gz``).
    """

    mirrors: tuple
    sha256: dict


# sha256 of the official files as distributed (the .gz / .tar.gz bytes). Each digest is
# pinned identically by several independent public projects (tf.keras pins the CIFAR-10
# one); a mirror serving anything else is skipped, so the list can grow without trust.
REMOTES = {
    "mnist": Remote(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist",  # PyTorch's copy
            "https://storage.googleapis.com/cvdf-datasets/mnist",  # TensorFlow's copy
            "http://yann.lecun.com/exdb/mnist",  # the original; often unavailable now
        ),
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion-mnist": Remote(
        mirrors=(
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        ),
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
    "cifar10": Remote(
        mirrors=("https://www.cs.toronto.edu/~kriz",),
        sha256={
            _CIFAR_ARCHIVE: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        },
    ),
}

_DOWNLOAD_TIMEOUT_S = 30
_CHUNK_BYTES = 1 << 20


def fetch_file(filename, remote, dest_dir):
    """Download ``filename`` into ``dest_dir`` from the first mirror that serves it intact.

    Each mirror's bytes stream into a hidden temporary file in ``dest_dir``; only when the
    sha256 matches ``remote.sha256[filename]`` is it renamed, atomically, to
    ``dest_dir/filename``. Any failure (network error, HTTP error, transfer cut short,
    checksum mismatch, even Ctrl-C) removes the temporary file, so ``dest_dir`` never
    holds a partial or unverified file.

    Returns the path of the verified file. Raises ``DownloadError`` listing every mirror
    tried and why it failed.
    """
    if filename not in remote.sha256:
        raise DatasetError(
            f"no sha256 pinned for {filename!r}; known files: {sorted(remote.sha256)}"
        )
    expected_sha256 = remote.sha256[filename]
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / filename

    failures = []
    for mirror in remote.mirrors:
        url = f"{mirror.rstrip('/')}/{filename}"
        print(f"minigrad: downloading {url}\n          to {target}", file=sys.stderr)
        try:
            _download_verified(url, target, expected_sha256)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            print(f"minigrad:   failed: {exc}", file=sys.stderr)
            failures.append(f"  {url}: {exc}")
            continue
        print("minigrad:   ok, sha256 verified", file=sys.stderr)
        return target

    raise DownloadError(
        f"could not download {filename} from any mirror:\n" + "\n".join(failures) + "\n"
        f"Nothing was saved in {dest_dir}. To provide the file by hand, get {filename} "
        f"(sha256 {expected_sha256}) and put it in that folder."
    )


def _download_verified(url, target, expected_sha256):
    """Stream ``url`` to a temporary file beside ``target``; rename it there only if intact."""
    handle, temp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    try:
        digest = hashlib.sha256()
        received = 0
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response,
        ):
            declared = response.headers.get("Content-Length")
            declared = int(declared) if declared is not None else None
            while True:
                try:
                    chunk = response.read(_CHUNK_BYTES)
                except http.client.IncompleteRead as exc:  # a chunked response cut short
                    raise DownloadError(
                        f"transfer interrupted after {received + len(exc.partial)} bytes"
                    ) from None
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
            # read() just stops early when the server closes before Content-Length bytes.
            if declared is not None and received != declared:
                raise DownloadError(f"transfer interrupted after {received} of {declared} bytes")
            out.flush()
            os.fsync(out.fileno())
        found = digest.hexdigest()
        if found != expected_sha256:
            raise DownloadError(f"sha256 mismatch: expected {expected_sha256}, got {found}")
        os.replace(temp_name, target)
    finally:
        if os.path.exists(temp_name):
            os.remove(temp_name)


# ---------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# ---------------------------------------------------------------------------------------


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
    _check_split(split)
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
        _announce(
            "MNIST",
            source,
            hint=(
                f" (4,000 train / 1,000 test); for all 70,000 digits put the IDX files in "
                f"{folder} (chosen by {how}) or pass download=True"
            ),
        )
        return (images, labels, source) if return_source else (images, labels)

    images, labels = _load_idx_split(*found, image_shape=(28, 28))
    _announce("MNIST", source)
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
    _check_split(split)
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
    _announce("Fashion-MNIST", source)
    return (images, labels, source) if return_source else (images, labels)


def _check_split(split):
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")


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
    _check_pair(images_path, len(images), labels_path, labels)
    return _to_float_images(images.reshape(len(images), -1)), labels.astype(np.int64)


def _check_pair(images_where, n_images, labels_where, labels):
    if n_images != len(labels):
        raise DatasetError(
            f"images and labels differ in length: {n_images} images in {images_where}, "
            f"{len(labels)} labels in {labels_where}; expected one label per image"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(
            f"{labels_where}: labels must be class ids 0..9, found values from "
            f"{labels.min()} to {labels.max()}"
        )


def _to_float_images(pixels):
    # Divide by a float32 255: a Python or float64 scalar would be fine today, but the
    # intent (float32 out, no upcast) should not rest on numpy's promotion rules.
    return pixels.astype(np.float32) / np.float32(255)


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
    return _to_float_images(images[index]), labels[index].astype(np.int64)


# ---------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------


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
    _check_split(split)
    root, how = resolve_data_dir(data_dir)
    folder = root / "cifar10"
    extracted = folder / _CIFAR_FOLDER
    archive = folder / _CIFAR_ARCHIVE
    if extracted.is_dir():
        batches = [_read_cifar_batch_file(extracted / name) for name in _CIFAR_BATCHES[split]]
        source = Source("data_dir", extracted)
    else:
        if archive.is_file():
            source = Source("data_dir", archive)
        elif download:
            archive = fetch_file(_CIFAR_ARCHIVE, remote or REMOTES["cifar10"], folder)
            source = Source("download", archive)
        else:
            raise DatasetError(
                f"CIFAR-10 not found. Searched:\n"
                f"  {extracted}\n  {archive}\n"
                f"(the data directory, chosen by {how}). To provide it: pass download=True; "
                f"or put the python version of CIFAR-10 ({_CIFAR_ARCHIVE}, or the "
                f"{_CIFAR_FOLDER}/ folder it extracts to) in {folder} (or in <dir>/cifar10/ "
                f"with data_dir=<dir> or ${DATA_DIR_ENV_VAR}=<dir>)."
            )
        batches = _read_cifar_archive(archive, _CIFAR_BATCHES[split])

    images = np.concatenate([batch_images for batch_images, _ in batches])
    labels = np.concatenate([batch_labels for _, batch_labels in batches])
    _announce("CIFAR-10", source)
    return (images, labels, source) if return_source else (images, labels)


def _read_cifar_batch_file(path):
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing; expected the CIFAR-10 batch {path.name} in {path.parent}"
        )
    return _parse_cifar_batch(path.read_bytes(), str(path))


def _read_cifar_archive(archive, names):
    """Read the batches ``names`` straight from the tarball, in the order given."""
    wanted = {f"{_CIFAR_FOLDER}/{name}": name for name in names}
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
        raise DatasetError(f"{archive}: missing {[f'{_CIFAR_FOLDER}/{name}' for name in missing]}")
    return [_parse_cifar_batch(blobs[name], f"{archive}:{_CIFAR_FOLDER}/{name}") for name in names]


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
    _check_pair(where, len(data), where, labels)
    return _to_float_images(data.reshape(-1, 3, 32, 32)), labels
