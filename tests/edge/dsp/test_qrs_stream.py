"""Streaming R-peak detection equals batch for any chunking; bad input never raises."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.dsp import EcgPeakStream, ecg_peaks
from tests.edge.dsp.records import RECORDS, load_record, with_noise


def _stream(x: np.ndarray, fs: float, cuts: list[int]) -> np.ndarray:
    s, out, edges = EcgPeakStream(fs), [], [0, *sorted(set(cuts)), x.size]
    for a, b in zip(edges[:-1], edges[1:]):
        out.append(s.feed(x[a:b]))
    out.append(s.flush())
    return np.concatenate(out)


def test_every_record_in_one_second_chunks_equals_batch() -> None:
    for name in RECORDS:
        rec = load_record(name)
        x = rec.signal_mv
        cuts = list(range(int(rec.fs), x.size, int(rec.fs)))
        assert np.array_equal(_stream(x, rec.fs, cuts), ecg_peaks(x, rec.fs))


EXCERPT = with_noise(load_record("106", 60.0), "motion", 3.0, seed=4).signal_mv


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, EXCERPT.size - 1), max_size=40), st.sampled_from([360.0, 128.0, 130.0]))
def test_random_chunkings_equal_batch(cuts: list[int], fs: float) -> None:
    x = EXCERPT if fs == 360.0 else EXCERPT[:: 3 if fs < 200 else 1]
    cuts = [c for c in cuts if c < x.size]
    assert np.array_equal(_stream(x, fs, cuts), ecg_peaks(x, fs))


def test_memory_is_bounded() -> None:
    rec = load_record("100")
    s = EcgPeakStream(rec.fs)
    sizes = []
    for a in range(0, rec.signal_mv.size, 3600):
        s.feed(rec.signal_mv[a : a + 3600])
        sizes.append(s.buffered + len(s._since) + len(s._pending))  # noqa: SLF001
    assert max(sizes) <= 5 * rec.fs + 3600


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1e300, -1e300, 5.0, -5.0]),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(values, max_size=800), st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 130.0, 360.0, 1e9])))
def test_bad_input_never_raises(samples: list[float], fs: float) -> None:
    x = np.asarray(samples, dtype=float)
    peaks = ecg_peaks(x, fs)
    assert peaks.dtype == np.int64
    assert np.all(np.diff(peaks) > 0)
    assert np.all((peaks >= 0) & (peaks < max(x.size, 1)))


def test_degenerate_inputs_give_no_beats() -> None:
    fs = 250.0
    rng = np.random.default_rng(0)
    clean = load_record("100", 20.0).signal_mv
    assert ecg_peaks([], fs).size == 0
    assert ecg_peaks(np.zeros(5000), fs).size == 0
    assert ecg_peaks(np.full(5000, 3.3), fs).size == 0
    assert ecg_peaks(np.full(5000, np.nan), fs).size == 0
    assert ecg_peaks(np.full(5000, np.inf), fs).size == 0
    assert ecg_peaks(clean[:20], 360.0).size == 0
    assert ecg_peaks(clean, 0.0).size == 0 and ecg_peaks(clean, float("nan")).size == 0
    assert ecg_peaks(clean, 10.0).size == 0
    assert ecg_peaks("not a signal", fs).size == 0  # type: ignore[arg-type]
    quantised = np.round(0.001 * rng.standard_normal(5000), 3)  # ADC noise floor of a flat lead
    assert ecg_peaks(quantised, fs).size == 0
    clipped = np.clip(clean, -0.3, 0.3)  # rail-clipped QRS still counted
    assert ecg_peaks(clipped, 360.0).size >= 20
