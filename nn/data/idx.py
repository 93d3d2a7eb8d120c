"""Reading and writing the IDX file format of MNIST and Fashion-MNIST (host side, NumPy).

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the payload in big-endian C order. MNIST images are ``0x00000803`` (uint8, 3 dims:
count, rows, columns), labels ``0x00000801`` (uint8, 1 dim). Files may be gzip-compressed; gzip is
recognised by its magic bytes, not by the file name.

Reading is bounded: the size the header declares is checked against :data:`MAX_BYTES` (or ``max_bytes=``)
before anything is allocated, and the payload is read in chunks into that allocation, so a small gzip
"bomb" with a consistent header cannot take more memory than the limit, and a stream shorter or longer
than its header says is an :class:`IDXFormatError` naming the file.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

__all__ = ["IDXFormatError", "read_idx", "read_idx_images", "read_idx_labels", "write_idx",
           "IMAGES_MAGIC", "LABELS_MAGIC", "MAX_BYTES"]

MAX_BYTES = 2 << 30        # largest payload read_idx accepts by default (2 GiB; Fashion-MNIST's is 47 MB)
_CHUNK = 1 << 24           # bytes read at a time

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# IDX type byte -> big-endian NumPy dtype
_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("=").str[1:]: code for code, dt in _TYPES.items()}   # "u1" -> 0x08, "i4" -> 0x0C ...


class IDXFormatError(ValueError):
    """An IDX file is corrupt, truncated, or not the kind of IDX file that was expected."""


def _open(path: str):
    """The file's byte stream: decompressed when it starts with the gzip magic bytes."""
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), f, True
    f.seek(0)
    return f, f, False


def read_idx(path, expected_magic: int | None = None, *, max_bytes: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian NumPy array of the shape its header gives.

    Args:
        path: file to read.
        expected_magic: if given, the 4-byte magic number the file must have (e.g. ``0x00000803``).
        max_bytes: the largest payload accepted (default :data:`MAX_BYTES`, 2 GiB, read at call time).

    Raises:
        IDXFormatError: bad magic number, unknown type code, a declared size over ``max_bytes``, or a payload
            shorter or longer than the header's dimensions say (the file is never silently reshaped).
    """
    path = os.fspath(path)
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise ValueError(f"read_idx: max_bytes must be a non-negative int, got {max_bytes!r}")
    stream, raw, gz = _open(path)
    try:
        with stream, raw:
            return _read_idx(stream, raw, gz, path, expected_magic, int(limit))
    except (EOFError, OSError, zlib.error) as e:     # truncated gzip stream, bad CRC, bad deflate data
        if not gz or isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise IDXFormatError(f"{path}: corrupt or truncated gzip file ({e}); delete it and fetch it again") from e


def _read_idx(f, raw, gz: bool, path: str, expected_magic: int | None, limit: int) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4:
        raise IDXFormatError(f"{path}: only {len(head)} bytes, too short for an IDX header (truncated file?)")
    magic = int.from_bytes(head, "big")
    if expected_magic is not None and magic != expected_magic:
        raise IDXFormatError(f"{path}: magic number 0x{magic:08X}, expected 0x{expected_magic:08X} "
                             f"({_describe(expected_magic)}); wrong or corrupt file")
    if head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
        raise IDXFormatError(f"{path}: magic number 0x{magic:08X} is not an IDX header (not an IDX file?)")
    dtype, ndim = _TYPES[head[2]], head[3]
    header = 4 + 4 * ndim
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise IDXFormatError(f"{path}: header announces {ndim} dimensions but the file has only "
                             f"{4 + len(dims_raw)} bytes (truncated file)")
    dims = tuple(int.from_bytes(dims_raw[4 * i:4 * i + 4], "big") for i in range(ndim))
    count = 1
    for d in dims:
        count *= d
    nbytes = count * dtype.itemsize
    expected = header + nbytes
    if nbytes > limit:
        raise IDXFormatError(f"{path}: header says shape {dims} of {dtype.name} ({nbytes:,} bytes), more than the "
                             f"limit max_bytes={limit:,}; if the file is trusted, pass a larger max_bytes= to "
                             "read_idx or raise nn.data.idx.MAX_BYTES")
    if not gz:
        size = os.fstat(raw.fileno()).st_size
        if size != expected:
            what = "is truncated" if size < expected else "has trailing bytes"
            raise IDXFormatError(f"{path}: header says shape {dims} of {dtype.name} ({expected} bytes in all) but "
                                 f"the file holds {size} bytes: the file {what}")
    buf = np.empty(nbytes, dtype=np.uint8)
    view = memoryview(buf)
    pos = 0
    while pos < nbytes:
        got = f.readinto(view[pos:pos + _CHUNK])
        if not got:
            raise IDXFormatError(f"{path}: header says shape {dims} of {dtype.name} ({expected} bytes in all) but "
                                 f"the {'decompressed ' if gz else ''}stream holds {header + pos} bytes: the file "
                                 "is truncated")
        pos += got
    if f.read(1):
        raise IDXFormatError(f"{path}: header says shape {dims} of {dtype.name} ({expected} bytes in all) but "
                             f"the {'decompressed ' if gz else ''}stream holds more: the file has trailing bytes")
    arr = buf.view(dtype).reshape(dims) if dtype.itemsize and count else np.zeros(dims, dtype)
    if not dtype.isnative and dtype.itemsize > 1:
        arr.byteswap(inplace=True)                          # the buffer is ours: no second copy
        arr = arr.view(dtype.newbyteorder("="))
    return arr


def _describe(magic: int) -> str:
    if magic == IMAGES_MAGIC:
        return "uint8 images, 3 dims"
    if magic == LABELS_MAGIC:
        return "uint8 labels, 1 dim"
    return "IDX"


def read_idx_images(path, image_shape: tuple[int, int] | None = None, *, max_bytes: int | None = None) -> np.ndarray:
    """Read an image file (magic ``0x00000803``): uint8 array (N, rows, cols).

    ``image_shape`` (e.g. ``(28, 28)``) is checked when given; ``max_bytes`` as for :func:`read_idx`.
    """
    images = read_idx(path, IMAGES_MAGIC, max_bytes=max_bytes)
    if image_shape is not None and images.shape[1:] != tuple(image_shape):
        raise IDXFormatError(f"{os.fspath(path)}: images are {images.shape[1]}x{images.shape[2]}, expected "
                             f"{image_shape[0]}x{image_shape[1]}")
    return images


def read_idx_labels(path, *, max_bytes: int | None = None) -> np.ndarray:
    """Read a label file (magic ``0x00000801``): int64 array (N,); ``max_bytes`` as for :func:`read_idx`."""
    return read_idx(path, LABELS_MAGIC, max_bytes=max_bytes).astype(np.int64)


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
