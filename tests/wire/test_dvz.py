"""The dvz strip encoding: exact round trip, compact on real ECG, strict and bounded decoding."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge.dsp.records import load_record, resampled
from wire.dvz import strip_decode, strip_encode


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=500))
def test_round_trip_is_exact(samples: list[int]) -> None:
    assert strip_decode(strip_encode(samples)).tolist() == samples


def test_real_ecg_takes_about_one_byte_per_sample_at_130_hz() -> None:
    rec = resampled(load_record("101", 60.0), 130.0)
    uv = np.round(rec.signal_mv * 1000).astype(np.int64)[: int(30 * 130)]
    data = strip_encode(uv)
    assert np.array_equal(strip_decode(data), uv)
    assert len(data) <= 1.3 * uv.size  # int16 raw would be 2 bytes a sample


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x02abc",  # unknown version
        b"\x01not deflate",
        b"\x01" + zlib.compress(b"\x80"),  # a varint that never ends
        b"\x01" + zlib.compress(b"\xff\xff\xff\xff\xff\x01"),  # a 6-byte varint
        b"\x01" + zlib.compress(b"\x02\x04")[:-3],  # truncated stream
        b"\x01" + zlib.compress(b"\x02\x04") + b"junk",  # bytes after the stream
    ],
)
def test_bad_bytes_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        strip_decode(bad)


def test_a_decompression_bomb_is_refused_without_inflating_it() -> None:
    bomb = b"\x01" + zlib.compress(bytes(50_000_000), 9)  # ~50 kB that inflates to 50 MB of zero deltas
    assert len(bomb) < 100_000
    with pytest.raises(ValueError, match="inflates beyond"):
        strip_decode(bomb, max_samples=120_000)
    assert strip_decode(b"\x01" + zlib.compress(bytes(1000)), max_samples=1000).size == 1000
    with pytest.raises(ValueError):
        strip_decode(b"\x01" + zlib.compress(bytes(1001)), max_samples=1000)


def test_non_integer_or_out_of_range_samples_raise_value_error() -> None:
    with pytest.raises(ValueError):
        strip_encode([0.5])
    with pytest.raises(ValueError):
        strip_encode([2**40])
