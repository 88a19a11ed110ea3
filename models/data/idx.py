"""IDX, the file format of MNIST and Fashion-MNIST: a small header, then the raw values."""

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError

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
