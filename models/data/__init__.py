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
4. MNIST only: when neither 1 nor 3 applies, full MNIST (60,000 train / 10,000 test digits)
   from the official files, shipped gzipped in ``models/data/mnist/`` (``MNIST_SHIPPED_DIR``;
   see ``models/data/README.md``), each checked against its pinned sha256
   (``MNIST_SHIPPED_SHA256``) before it is read. So ``load_mnist`` works offline out of
   the box.

Nothing is downloaded unless asked, because a laptop on a metered link or an offline
machine should not stall on a 170 MB fetch it did not request; when nothing is found the
error lists the places searched and how to provide the files.

Which source was used is printed to stderr once per process and data set, and returned
as a third value ``Source`` when the loader is called with ``return_source=True``.

``Batches`` cuts the arrays into mini-batches, one epoch per iteration.

The modules, one idea each: ``sources`` (the data directory, ``Source``), ``download``
(mirrors, pinned checksums, ``fetch_file``), ``idx`` (the IDX format), ``mnist`` (MNIST and its
shipped copy, Fashion-MNIST), ``cifar`` (CIFAR-10), ``labelled`` (the checks every
loader's result passes), ``errors``, ``batches``.
"""

from .batches import Batches
from .cifar import load_cifar10
from .download import REMOTES, Remote, fetch_file
from .errors import DatasetError, DownloadError
from .idx import read_idx
from .mnist import (FASHION_MNIST_SYSTEM_DIR, MNIST_SHIPPED_DIR, MNIST_SHIPPED_SHA256,
                    load_fashion_mnist, load_mnist)
from .sources import DATA_DIR_ENV_VAR, Source, resolve_data_dir

__all__ = ["load_mnist", "load_fashion_mnist", "load_cifar10", "read_idx", "Batches",
           "DatasetError", "DownloadError", "Source", "resolve_data_dir", "DATA_DIR_ENV_VAR",
           "Remote", "REMOTES", "fetch_file", "FASHION_MNIST_SYSTEM_DIR", "MNIST_SHIPPED_DIR",
           "MNIST_SHIPPED_SHA256"]
