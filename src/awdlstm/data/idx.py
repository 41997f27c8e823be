"""IDX files (the MNIST format): a big-endian header — two zero bytes, a type code, the
number of dimensions, then each dimension as a 4-byte integer — followed by the values.
Read as they come or gzip-compressed (``.gz``); written by the tests to make small sets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import AwdlstmError

TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
         0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    path = Path(path)
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise AwdlstmError(f"{path}: no such IDX file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise AwdlstmError(f"{path}: cannot read the IDX file ({e})") from None
    if len(data) < 4 or data[0] or data[1] or data[2] not in TYPES:
        raise AwdlstmError(f"{path}: not an IDX file (its first bytes are not 0, 0, a type code)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise AwdlstmError(f"{path}: the IDX header is cut short")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = TYPES[data[2]]
    if len(data) - header != int(np.prod(shape)) * dtype.itemsize:
        raise AwdlstmError(f"{path}: the IDX header says shape {shape} but the file holds "
                           f"{len(data) - header} bytes of values")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: Path, array: np.ndarray) -> None:
    code = {v.newbyteorder("="): k for k, v in TYPES.items()}[np.dtype(array.dtype)]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + np.asarray(array, TYPES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(data) if str(path).endswith(".gz") else data)
