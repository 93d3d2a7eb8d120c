"""Reading and writing the IDX file format of MNIST and Fashion-MNIST (host side, NumPy).

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the payload in big-endian C order. MNIST images are ``0x00000803`` (uint8, 3 dims:
count, rows, columns), labels ``0x00000801`` (uint8, 1 dim). Files may be gzip-compressed; gzip is
recognised by its magic bytes, not by the file name.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

__all__ = ["IDXFormatError", "read_idx", "read_idx_images", "read_idx_labels", "write_idx",
           "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# IDX type byte -> big-endian NumPy dtype
_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _TYPES.items()}   # "u1" -> 0x08, "i4" -> 0x0C ...


class IDXFormatError(ValueError):
    """An IDX file is corrupt, truncated, or not the kind of IDX file that was expected."""


def _read_bytes(path) -> bytes:
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (EOFError, OSError, zlib.error) as e:   # truncated stream, bad CRC, bad deflate data
            raise IDXFormatError(f"{path}: corrupt or truncated gzip file ({e}); delete it and fetch it again") from e
    with open(path, "rb") as f:
        return f.read()


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian NumPy array of the shape its header gives.

    Args:
        path: file to read.
        expected_magic: if given, the 4-byte magic number the file must have (e.g. ``0x00000803``).

    Raises:
        IDXFormatError: bad magic number, unknown type code, or a payload shorter or longer than the
            header's dimensions say (the file is never silently reshaped).
    """
    path = os.fspath(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise IDXFormatError(f"{path}: only {len(buf)} bytes, too short for an IDX header (truncated file?)")
    magic = int.from_bytes(buf[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise IDXFormatError(f"{path}: magic number 0x{magic:08X}, expected 0x{expected_magic:08X} "
                             f"({_describe(expected_magic)}); wrong or corrupt file")
    if buf[0] != 0 or buf[1] != 0 or buf[2] not in _TYPES:
        raise IDXFormatError(f"{path}: magic number 0x{magic:08X} is not an IDX header (not an IDX file?)")
    dtype, ndim = _TYPES[buf[2]], buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise IDXFormatError(f"{path}: header announces {ndim} dimensions but the file has only {len(buf)} bytes "
                             "(truncated file)")
    dims = tuple(int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    count = 1
    for d in dims:
        count *= d
    expected = header + count * dtype.itemsize
    if len(buf) != expected:
        what = "truncated" if len(buf) < expected else "has trailing bytes"
        raise IDXFormatError(f"{path}: header says shape {dims} of {dtype.name} ({expected} bytes in all) but the "
                             f"file holds {len(buf)} bytes: the file {what}")
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)   # native byte order, writable, owns its memory


def _describe(magic: int) -> str:
    if magic == IMAGES_MAGIC:
        return "uint8 images, 3 dims"
    if magic == LABELS_MAGIC:
        return "uint8 labels, 1 dim"
    return "IDX"


def read_idx_images(path, image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file (magic ``0x00000803``): uint8 array (N, rows, cols).

    ``image_shape`` (e.g. ``(28, 28)``) is checked when given.
    """
    images = read_idx(path, IMAGES_MAGIC)
    if image_shape is not None and images.shape[1:] != tuple(image_shape):
        raise IDXFormatError(f"{os.fspath(path)}: images are {images.shape[1]}x{images.shape[2]}, expected "
                             f"{image_shape[0]}x{image_shape[1]}")
    return images


def read_idx_labels(path) -> np.ndarray:
    """Read a label file (magic ``0x00000801``): int64 array (N,)."""
    return read_idx(path, LABELS_MAGIC).astype(np.int64)


def write_idx(path, array, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file; gzip-compressed when ``compress`` (default: path ends in ``.gz``)."""
    path = os.fspath(path)
    array = np.asarray(array)
    code = _CODES.get(array.dtype.str[1:])
    if code is None:
        raise TypeError(f"write_idx: dtype {array.dtype} has no IDX type code "
                        "(uint8, int8, int16, int32, float32, float64)")
    if array.ndim > 255:
        raise ValueError("write_idx: at most 255 dimensions")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = np.ascontiguousarray(array, dtype=_TYPES[code]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + payload)
