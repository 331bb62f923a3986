"""Bad input through every DSP entry point: empty results with low quality, never an exception.

The issue's list, each drawn by hypothesis: NaN, inf, empty, constant,
clipped (an amplifier stuck at its rails), wrong-rate (a sampling rate no
detector accepts) and absurdly short inputs. Each goes through the functions
one by one and through the whole :class:`edge.summary.Summarizer`, which is
where "no invented beats or alarms" has to hold: a window made of such ECG has
no beats, no heart rate, no rhythm flag, no respiration, no strip request and
a quality below the usable threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from edge.dsp import (
    EcgPeakStream,
    RespRate,
    accel_features,
    ecg_peaks,
    ecg_qrs_widths,
    ecg_quality,
    ecg_wide_beats,
    resp_rate,
    resp_rate_from_ecg,
    rhythm_episodes,
    rhythm_vt_runs,
    rr_stats,
)
from edge.dsp.ecg import USABLE, ecg_beat_quality, ecg_segments
from edge.summary import Summarizer
from tests.edge.dsp.records import load_record
from wire import SummaryWindow

FS = 130.0  # the strap's rate, as the Summarizer runs
T0 = 1_700_000_000.0
WINDOW_S = 10.0
FRAME = 73  # ECG samples per Polar PMD frame
BAD_RATES = (float("nan"), float("inf"), -float("inf"), 0.0, -130.0, 1.0, 10.0, 49.0, 4001.0, 1e9)  # ECG
BAD_SLOW_RATES = (float("nan"), float("inf"), -float("inf"), 0.0, -25.0, 0.5)  # respiration, accelerometer
CLEAN = load_record("100", 40.0)


def _resampled_clean(n: int) -> NDArray[np.float64]:
    """``n`` samples of real ECG at 130 Hz (MIT-BIH 100, resampled by index), mV."""
    idx = (np.arange(n) * CLEAN.fs / FS).astype(int) % CLEAN.signal_mv.size
    return CLEAN.signal_mv[idx]


@st.composite
def bad_ecg(draw: st.DrawFn) -> tuple[str, NDArray[np.float64]]:
    """(kind, samples in mV at 130 Hz) of one kind of unusable ECG."""
    kind = draw(st.sampled_from(["empty", "short", "constant", "nan", "inf", "nonfinite", "clipped"]))
    n = draw(st.integers(int(2 * WINDOW_S * FS), int(4 * WINDOW_S * FS)))
    if kind == "empty":
        return kind, np.zeros(0)
    if kind == "short":  # under half a second: less than any QRS-to-QRS interval
        return kind, _resampled_clean(draw(st.integers(1, int(0.4 * FS))))
    if kind == "constant":
        return kind, np.full(n, draw(st.floats(-50.0, 50.0, allow_nan=False)))
    if kind in ("nan", "inf"):
        return kind, np.full(n, np.nan if kind == "nan" else draw(st.sampled_from([np.inf, -np.inf])))
    x = _resampled_clean(n).copy()
    if kind == "nonfinite":  # dropouts: more than a tenth of every segment not finite
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        x[rng.random(n) < draw(st.floats(0.3, 1.0))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return kind, x
    # an amplifier driven into its rails: most samples at one rail or the other (a QRS merely cut
    # at its top is still ECG, and its beats count: tests/edge/dsp/test_qrs_stream.py)
    gain, rail = draw(st.floats(300.0, 3000.0)), draw(st.floats(0.5, 5.0))
    y = np.clip(gain * (x - np.median(x)), -rail, rail)
    assume(np.mean(np.abs(y) == rail) > 0.5)
    return kind, y


def _summarize(
    ecg_mv: NDArray[np.float64], acc_g: NDArray[np.float64] | None = None
) -> tuple[list[SummaryWindow], Summarizer]:
    """Windows of a Summarizer fed ``ecg_mv`` in strap-sized frames (and ``acc_g`` at 25 Hz)."""
    s = Summarizer(WINDOW_S, ecg_fs=FS)
    out: list[SummaryWindow] = []
    for a in range(0, ecg_mv.size, FRAME):
        out += s.feed_ecg(T0 + a / FS, ecg_mv[a : a + FRAME])
    if acc_g is not None:
        out += s.feed_acc(T0, acc_g)
    return out + s.finish(), s


@settings(max_examples=60, deadline=None)
@given(bad_ecg())
def test_unusable_ecg_gives_no_beats_low_quality_and_nothing_to_alarm_on(sample: tuple[str, NDArray[np.float64]]) -> None:
    kind, x = sample
    quality = ecg_quality(x, FS)
    assert 0.0 <= quality < USABLE, kind
    assert all(not s.usable for s in ecg_segments(x, FS)), kind
    peaks = ecg_peaks(x, FS)
    if kind == "short":  # a QRS in the snippet may be found, but one beat is no interval: no rate
        assert peaks.size <= 1
    elif kind != "clipped":  # a rail-clipped QRS may still be found; its segment is unusable (above)
        assert peaks.size == 0, kind
    beat_quality = ecg_beat_quality(peaks, ecg_segments(x, FS))
    assert np.all(beat_quality < USABLE)
    assert resp_rate_from_ecg(peaks, x, FS, beat_quality >= USABLE).rate is None  # usable beats, as summarised
    widths = ecg_qrs_widths(x, peaks, FS)
    assert widths.shape == peaks.shape and ecg_wide_beats(widths).shape == peaks.shape
    windows, summarizer = _summarize(x)
    assert windows or kind in ("empty", "short")
    for w in windows:
        assert w.beats == 0 and w.hr_mean is None and w.rmssd is None, (kind, w)
        assert w.flags == () and w.resp_rate is None and w.quality < USABLE, (kind, w)
    assert summarizer.take_strip_requests() == []


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(BAD_RATES), st.sampled_from(BAD_SLOW_RATES), st.integers(0, 3000),
    st.lists(st.integers(1, 400), max_size=8),
)  # fmt: skip
def test_a_rate_no_detector_accepts_gives_empty_results(fs: float, slow_fs: float, n: int, cuts: list[int]) -> None:
    x = _resampled_clean(n)
    assert ecg_peaks(x, fs).size == 0 and ecg_quality(x, fs) == 0.0
    stream, edges = EcgPeakStream(fs), [0, *sorted(c for c in cuts if c < n), n]
    found = [stream.feed(x[a:b]) for a, b in zip(edges[:-1], edges[1:])] + [stream.flush()]
    assert sum(f.size for f in found) == 0
    assert np.all(np.isnan(ecg_qrs_widths(x, np.arange(0, n, 100), fs)))
    assert resp_rate_from_ecg(np.arange(0, n, 100), x, fs).rate is None
    assert resp_rate(x, slow_fs) == RespRate(None, 0.0, "none")
    walking = np.column_stack([np.zeros(n), 1 + 0.3 * np.sin(np.arange(n) / 2.0), np.zeros(n)])
    act = accel_features(walking, slow_fs)
    assert act.steps == 0 and act.posture_changes == 0 and not act.fall


def test_the_summarizer_refuses_a_rate_its_detectors_cannot_use() -> None:
    for fs in BAD_RATES:
        with pytest.raises(ValueError, match="ecg_fs"):
            Summarizer(WINDOW_S, ecg_fs=fs)
    for fs in (float("nan"), 0.0, -25.0, float("inf")):
        with pytest.raises(ValueError, match="acc_fs"):
            Summarizer(WINDOW_S, acc_fs=fs)


nonfinite = st.sampled_from([np.nan, np.inf, -np.inf])


@settings(max_examples=40, deadline=None)
@given(st.lists(nonfinite, max_size=200), st.lists(st.floats(-1e6, 1e6), max_size=1))
def test_bad_rr_and_beat_times_give_no_statistics_or_episodes(bad: list[float], one: list[float]) -> None:
    """RR intervals or beat times that are not finite, or too few beat times to make an interval."""
    stats = rr_stats(bad)
    assert stats.beats == 0 and stats.hr_mean is None and stats.sdnn is None and stats.flags == ()
    for times in (bad, one, bad + one):
        assert rhythm_episodes(times) == []
        assert rhythm_vt_runs(times, [True] * len(times)) == []


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["empty", "nan", "constant", "unworn", "short"]), st.integers(1, 24), st.floats(-16.0, 16.0))
def test_bad_accelerometer_input_gives_no_steps_falls_or_motion(kind: str, n: int, value: float) -> None:
    noise = 0.005 * np.random.default_rng(n).standard_normal((25 * n, 3))
    acc = {
        "empty": np.zeros((0, 3)),
        "nan": np.full((25 * n, 3), np.nan),
        "constant": np.full((25 * n, 3), value),  # a stuck sensor: no motion, whatever the value
        "unworn": noise,  # noise without gravity: a disconnected or broken sensor
        "short": np.tile([0.0, 1.0, 0.0], (n, 1)) + noise[:n],  # under a second at 25 Hz
    }[kind]
    act = accel_features(acc, 25.0)
    assert act.steps == 0 and not act.fall and act.posture_changes == 0
    assert act.dropped == (acc.shape[0] if kind == "nan" else 0)
    windows, _ = _summarize(np.zeros(0), acc)
    assert all(w.steps in (0, None) and not w.fall for w in windows)
    if kind == "short":  # too short for steps or posture, but upright and still
        assert act.activity == "rest"
        return
    # no samples, or none a worn sensor could give: neither rest nor exercise
    assert act.activity == "unknown" and act.intensity is None and act.enmo is None
    assert all(w.activity == "unknown" and w.intensity is None for w in windows)
