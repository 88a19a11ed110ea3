"""Where a loader looks for its files, and telling the person running the code what it used."""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV_VAR = "MINIGRAD_DATA"


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
    now into the data directory) or "shipped" (the copy inside the package, MNIST only:
    ``models/data/mnist/``).
    location: the folder or file read.
    """

    kind: str
    location: Path

    def __str__(self):
        descriptions = {
            "data_dir": "the data directory",
            "system": "the system copy",
            "download": "files just downloaded to",
            "shipped": "the shipped copy",
        }
        return f"{descriptions[self.kind]} {self.location}"


_announced = set()


def announce(dataset, source):
    """Tell the person running the code, once per process, where ``dataset`` came from."""
    if (dataset, source) in _announced:
        return
    _announced.add((dataset, source))
    print(f"minigrad: {dataset} from {source}", file=sys.stderr)
