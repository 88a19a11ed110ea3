"""Downloads: each file from the first mirror that serves it with its pinned sha256."""

import hashlib
import http.client
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from minigrad.io import atomic_write

from .errors import DatasetError, DownloadError


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
            "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        },
    ),
}

_DOWNLOAD_TIMEOUT_S = 30
_CHUNK_BYTES = 1 << 20


def fetch_file(filename, remote, dest_dir):
    """Download ``filename`` into ``dest_dir`` from the first mirror that serves it intact.

    Each mirror's bytes stream through ``minigrad.io.atomic_write`` into a hidden temporary
    file in ``dest_dir``; only when the length and the sha256 match
    ``remote.sha256[filename]`` is it renamed to ``dest_dir/filename``, with the usual
    permissions (0666 less the umask). Any failure (network error, HTTP error, transfer cut
    short, checksum mismatch, even Ctrl-C) removes the temporary file, so ``dest_dir``
    never holds a partial or unverified file.

    Returns the path of the verified file. Raises ``DownloadError`` listing every mirror
    tried and why it failed.
    """
    if filename not in remote.sha256:
        raise DatasetError(
            f"no sha256 pinned for {filename!r}; known files: {sorted(remote.sha256)}"
        )
    expected_sha256 = remote.sha256[filename]
    dest_dir = Path(dest_dir)
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
    """Stream ``url`` to ``target``, which appears only if the bytes are complete and intact.

    A check that fails raises inside the ``atomic_write`` block, so the temporary file is
    deleted and nothing is renamed.
    """
    digest = hashlib.sha256()
    received = 0
    with (
        urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response,
        atomic_write(target, mode="wb") as out,
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
        found = digest.hexdigest()
        if found != expected_sha256:
            raise DownloadError(f"sha256 mismatch: expected {expected_sha256}, got {found}")
