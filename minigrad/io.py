"""Files: the one atomic write, and npz archives of named arrays.

Everything the project writes (trained networks, checkpoints, reports, figures, downloaded data)
goes through `atomic_write` (or `write_text`, `write_figure`, `write_npz` and `write_checkpoint`,
which use it): the bytes go to a hidden temporary file beside the target, which is
renamed over the target only once it is complete and flushed to disk. A crash, a full disk or
Ctrl-C never leaves a half-written file under the target's name, and a file that was there
stays intact until the new one replaces it. The result has the permissions an ordinary
`open(path, "w")` would give (0666 less the umask), not the 0600 of a temporary file.

Archives are .npz files read without pickle. Groups of arrays, such as a network's state dict,
are stored under prefixed names ("net/all/cells.0.weight") and read back by prefix:

    write_npz(path, prefixed("net/all", net.state_dict()))
    net.load_state_dict(unprefixed(read_npz(path, "network"), "net/all"))

A checkpoint is such an archive plus the state of optimizers and a JSON record of everything
else (counters, histories, random generator states), so that a run resumes exactly:

    write_checkpoint(path, record, arrays, optimizers={"adam": meta_optimizer.state_dict()})
    arrays, record, states = read_checkpoint(path, "meta-training checkpoint", ["adam"])
    meta_optimizer.load_state_dict(states["adam"])
"""
import contextlib
import json
import os
import secrets
import zipfile

import numpy as np


def _create_beside(path):
    """(file descriptor, name) of a new hidden file in path's folder, opened for writing with
    mode 0666 less the umask, as open() would create it."""
    folder, name = os.path.split(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside `path` for writing ("wb" or "w", UTF-8); on leaving the
    block without an error, rename it to `path`; on an error, delete it and re-raise.

        with atomic_write("runs/q/compare.json", "w") as f:
            f.write(text)

    Missing parent folders are created.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text):
    """Write `text` to `path` atomically, ending it with a newline."""
    with atomic_write(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def write_figure(path, figure, dpi=120):
    """Save a matplotlib figure to `path` atomically, in the format its suffix names (.png)."""
    with atomic_write(path) as f:
        figure.savefig(f, format=os.path.splitext(os.fspath(path))[1][1:] or "png", dpi=dpi)


def write_npz(path, arrays):
    """np.savez of {name: array} to `path`, atomically."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


ZIP_MAGIC = b"PK\x03\x04"       # how every .npz file (a zip archive) starts


def read_npz(path, what):
    """All arrays of an npz file as a dict, read without pickle.

    A missing file raises FileNotFoundError; a file that is not a readable npz (truncated,
    another format, pickled objects) raises ValueError naming the file and `what` it should
    have been ("learned optimizer", "meta-training checkpoint"), never a half-read result.
    """
    path = os.fspath(path)
    expected = f"not a readable {what} (expected an .npz file written by minigrad)"
    try:
        with open(path, "rb") as f:
            start = f.read(4)
        if start != ZIP_MAGIC:           # np.load would try to unpickle it, and say so
            found = f"it starts with {start!r}" if start else "it is empty"
            raise ValueError(f"{path}: {expected}: it is not an .npz (zip) archive; {found}")
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as error:
        raise ValueError(f"{path}: {expected}: {error}") from None
    except ValueError as error:
        if str(error).startswith(path):
            raise
        raise ValueError(f"{path}: {expected}: {error}") from None


def prefixed(prefix, arrays):
    """{f"{prefix}/{name}": array} for every entry of `arrays`."""
    return {f"{prefix}/{name}": value for name, value in arrays.items()}


def unprefixed(arrays, prefix):
    """The entries of `arrays` named "{prefix}/...", with the prefix taken off."""
    start = len(prefix) + 1
    return {name[start:]: value for name, value in arrays.items()
            if name.startswith(prefix + "/")}


def write_checkpoint(path, record, arrays, optimizers=None):
    """Write a checkpoint atomically: `arrays` ({name: array}) as they are; each optimizer's
    `state_dict()` in `optimizers` ({prefix: state dict}), its buffers as arrays
    "{prefix}/{parameter index}/{name}" and its scalars and parameter groups in the record
    (as "{prefix}_scalars" and "{prefix}_groups"); and `record`, a JSON-able dict, as the
    array "meta"."""
    arrays, record = dict(arrays), dict(record)
    for prefix, state_dict in (optimizers or {}).items():
        scalars = {}
        for index, state in state_dict["state"].items():
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    arrays[f"{prefix}/{index}/{key}"] = value
                else:
                    scalars[f"{index}/{key}"] = value
        record[f"{prefix}_groups"] = state_dict["param_groups"]
        record[f"{prefix}_scalars"] = scalars
    arrays["meta"] = np.array(json.dumps(record))
    write_npz(path, arrays)


def read_checkpoint(path, what, optimizers=()):
    """Read what `write_checkpoint` wrote: (arrays, record, {prefix: optimizer state dict})
    for the optimizer prefixes named in `optimizers`. A file that is not such a checkpoint
    raises ValueError naming the file and `what`."""
    arrays = read_npz(path, what)
    try:
        record = json.loads(str(arrays.pop("meta")))
        states = {}
        for prefix in optimizers:
            state = {}
            for key, value in unprefixed(arrays, prefix).items():
                index, name = key.split("/", 1)
                state.setdefault(int(index), {})[name] = value
            for key, value in record.pop(f"{prefix}_scalars").items():
                index, name = key.split("/", 1)
                state.setdefault(int(index), {})[name] = value
            states[prefix] = {"state": state, "param_groups": record.pop(f"{prefix}_groups")}
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{os.fspath(path)}: not a readable {what}: {error}") from None
    arrays = {k: v for k, v in arrays.items()
              if not any(k.startswith(prefix + "/") for prefix in optimizers)}
    return arrays, record, states
