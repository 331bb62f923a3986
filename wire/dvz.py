"""``dvz``: the compact lossless encoding of ECG strip samples (delta, varint, DEFLATE).

Format version 1 (``DVZ_VERSION``), defined here once for the edge, the
server and the simulators:

* 1 byte: the format version (1);
* then one DEFLATE stream (zlib container, RFC 1950/1951, written at level 9)
  whose content is, for each sample, its difference from the sample before
  (the first one against 0), zigzag-mapped to unsigned (0, -1, 1, -2 ... ->
  0, 1, 2, 3 ...) and written as an LEB128 varint (7 bits a byte, low group
  first, high bit set on every byte but the last).

ECG changes little from sample to sample, so most differences fit one byte
before DEFLATE removes the remaining redundancy: about 1 byte per sample at
130 Hz against 2 for int16. The round trip is exact for any int32 samples.

Decoding is strict and bounded: a wrong version, a corrupt or truncated
stream, bytes after the stream, a varint longer than 5 bytes (beyond int32
differences) or more than ``max_samples`` samples raise ``ValueError`` --
and the decompressor never inflates more than ``5 * max_samples`` bytes, so a
small payload cannot expand into a large allocation (a decompression bomb).
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import ArrayLike, NDArray

DVZ_VERSION = 1
MAX_VARINT_BYTES = 5  # zigzag of a difference of two int32 values is below 2**33 < 2**35
_LIMIT = 2**31


def strip_encode(samples_uv: ArrayLike) -> bytes:
    """Encode integer samples (µV, each within int32) losslessly in ``dvz`` format.

    Args:
        samples_uv: the samples, any integer-valued 1-d array or sequence.

    Returns:
        The encoded bytes (version byte + DEFLATE stream).

    Raises:
        ValueError: a sample that is not an integer within int32.
    """
    x = np.asarray(samples_uv)
    if x.size and (x.dtype.kind not in "iu" and not np.all(np.mod(x, 1) == 0)):
        raise ValueError("strip samples must be integers")
    v = x.astype(np.int64).ravel()
    if v.size and (v.min() < -_LIMIT or v.max() >= _LIMIT):
        raise ValueError("strip samples must fit int32")
    d = np.diff(v, prepend=0)
    z = ((d << 1) ^ (d >> 63)).astype(np.uint64)  # zigzag
    return bytes([DVZ_VERSION]) + zlib.compress(_varints(z), 9)


def strip_decode(data: bytes, max_samples: int = 1_000_000) -> NDArray[np.int64]:
    """The samples (µV, int64) of :func:`strip_encode`'s output.

    Args:
        data: the encoded bytes.
        max_samples: the most samples accepted; the inflated size is bounded by
            ``MAX_VARINT_BYTES * max_samples`` bytes.

    Raises:
        ValueError: wrong version, corrupt, truncated or oversized data.
    """
    if not data or data[0] != DVZ_VERSION:
        raise ValueError(f"not a version-{DVZ_VERSION} dvz strip")
    bound = MAX_VARINT_BYTES * max_samples
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(bytes(data[1:]), bound + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt strip: {exc}") from exc
    if len(raw) > bound or inflater.unconsumed_tail:
        raise ValueError(f"strip inflates beyond {bound} bytes (more than {max_samples} samples)")
    if not inflater.eof:
        raise ValueError("truncated strip: the DEFLATE stream does not end")
    if inflater.unused_data:
        raise ValueError("corrupt strip: bytes after the DEFLATE stream")
    z = _read_varints(raw)
    if z.size > max_samples:
        raise ValueError(f"{z.size} samples > {max_samples}")
    d = (z >> np.uint64(1)).astype(np.int64) ^ -(z & np.uint64(1)).astype(np.int64)
    return np.cumsum(d)


def _varints(z: NDArray[np.uint64]) -> bytes:
    """LEB128 of each value (vectorised over the number of 7-bit groups)."""
    if z.size == 0:
        return b""
    groups = 1 + sum((z >= np.uint64(1 << (7 * k))).astype(np.int64) for k in range(1, 10))
    out = np.zeros(int(groups.sum()), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(groups)[:-1]])
    for g in range(int(groups.max())):
        has = groups > g
        byte = (z[has] >> np.uint64(7 * g)) & np.uint64(0x7F)
        more = groups[has] > g + 1
        out[offsets[has] + g] = byte.astype(np.uint8) | (more.astype(np.uint8) << 7)
    return out.tobytes()


def _read_varints(raw: bytes) -> NDArray[np.uint64]:
    """The values of consecutive LEB128 varints of at most ``MAX_VARINT_BYTES`` bytes each."""
    b = np.frombuffer(raw, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if b[-1] & 0x80:
        raise ValueError("truncated strip: the last varint does not end")
    last = np.flatnonzero((b & 0x80) == 0)
    first = np.concatenate([[0], last[:-1] + 1])
    if np.any(last - first >= MAX_VARINT_BYTES):
        raise ValueError(f"corrupt strip: a varint longer than {MAX_VARINT_BYTES} bytes")
    values = np.zeros(last.size, dtype=np.uint64)
    for g in range(int((last - first).max()) + 1):
        has = first + g <= last
        values[has] |= (b[first[has] + g] & np.uint64(0x7F)).astype(np.uint64) << np.uint64(7 * g)
    return values
