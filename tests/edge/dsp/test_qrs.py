"""R-peak detector on the annotated MIT-BIH records, resampled, noisy, inverted and re-timed.

Goals from the issue: pooled F1 >= 99.5 % with +-150 ms matching, median timing
error <= 8 ms; every record, rate and noise level also checked separately.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.dsp import ecg_peaks
from tests.edge.dsp.records import RECORDS, Record, load_record, resampled, score_beats, spliced, with_noise

FIVE_MIN = 300.0


def _score(rec: Record, signal: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    x = rec.signal_mv if signal is None else signal
    return score_beats(rec.beats, ecg_peaks(x, rec.fs), rec.fs, x.size)


def test_pooled_f1_and_timing_on_full_records() -> None:
    scores = [_score(load_record(r)) for r in RECORDS]
    tp, fn, fp = (sum(getattr(s, k) for s in scores) for k in ("tp", "fn", "fp"))
    assert 2 * tp / (2 * tp + fn + fp) >= 0.995
    for s in scores:
        assert s.f1 >= 0.995
        assert s.timing_s <= 0.008


@pytest.mark.parametrize("fs", [100.0, 128.0, 130.0, 250.0, 500.0, 1000.0])
def test_any_rate_from_100_to_1000_hz(fs: float) -> None:
    for name in RECORDS:
        rec = resampled(load_record(name, FIVE_MIN), fs)
        s = _score(rec)
        assert s.f1 >= 0.99, (name, s)
        assert s.timing_s <= 0.008 + 1 / fs, (name, s)


@pytest.mark.parametrize(
    ("kind", "snr_db", "f1"),
    [("wander", -6.0, 0.99), ("muscle", 6.0, 0.98), ("motion", 6.0, 0.98), ("motion", 0.0, 0.95), ("em", 6.0, 0.97), ("em", 0.0, 0.90)],
)
def test_noise(kind: str, snr_db: float, f1: float) -> None:
    for name in RECORDS:
        s = _score(with_noise(load_record(name, FIVE_MIN), kind, snr_db, seed=3))
        assert s.f1 >= f1, (name, kind, snr_db, s)


def test_negative_polarity_is_placed_on_the_peak() -> None:
    for name in RECORDS:
        rec = load_record(name, FIVE_MIN)
        s = _score(rec, -rec.signal_mv)
        assert s.f1 >= 0.99 and s.timing_s <= 0.008, (name, s)


def test_irregular_af_like_rhythm_keeps_every_beat() -> None:
    rng = np.random.default_rng(11)
    rr = rng.uniform(0.35, 1.25, 300)  # irregularly irregular, 50-170 bpm
    for name in RECORDS:
        rec = spliced(load_record(name, FIVE_MIN), rr, seed=1)
        s = _score(rec)
        assert s.f1 >= 0.99, (name, s)


@pytest.mark.parametrize("pause_s", [2.0, 3.5, 6.0])
def test_pauses_are_empty_and_beats_resume(pause_s: float) -> None:
    rr = np.array([0.8] * 20 + [pause_s] + [0.8] * 20)
    for name in RECORDS:
        rec = spliced(load_record(name, FIVE_MIN), rr, seed=2)
        peaks = ecg_peaks(rec.signal_mv, rec.fs)
        gap_lo, gap_hi = rec.beats[20], rec.beats[21]
        inside = peaks[(peaks > gap_lo + 0.15 * rec.fs) & (peaks < gap_hi - 0.15 * rec.fs)]
        assert inside.size == 0, (name, inside / rec.fs)
        s = score_beats(rec.beats, peaks, rec.fs, rec.signal_mv.size + int(20 * rec.fs))
        assert s.fn == 0 and s.fp <= 2, (name, s)  # 101 lends a few noisy beats


def test_lead_off_stretch_gives_no_beats_and_detection_recovers() -> None:
    rec = load_record("100", 120.0)
    x = rec.signal_mv.copy()
    off = slice(int(40 * rec.fs), int(60 * rec.fs))
    x[off] = 0.0
    x[int(70 * rec.fs) : int(75 * rec.fs)] = np.nan
    peaks = ecg_peaks(x, rec.fs)
    assert not np.any((peaks > off.start) & (peaks < off.stop))
    assert not np.any((peaks >= 70 * rec.fs) & (peaks < 75 * rec.fs))
    later = rec.beats[rec.beats > 77 * rec.fs]
    found = [np.min(np.abs(peaks - b)) <= 0.15 * rec.fs for b in later[:-2]]
    assert all(found)


@pytest.mark.parametrize(("fs", "lead_s"), [(360.0, 0.004), (500.0, 0.004), (1000.0, 0.160)])
def test_pacing_spikes_are_neither_beats_nor_peaks(fs: float, lead_s: float) -> None:
    """Pacemaker spikes (1 ms, +-4 mV) before every beat: ventricular (4 ms) or atrial (160 ms) pacing."""
    for name in RECORDS:
        rec = resampled(load_record(name, 120.0), fs)
        x = rec.signal_mv.copy()
        width = max(1, int(0.001 * fs))
        for k, b in enumerate(rec.beats):
            s = b - int(lead_s * fs)
            if s > 0:
                x[s : s + width] += 4.0 if k % 2 else -4.0
        s = _score(rec, x)
        assert s.f1 >= 0.99 and s.timing_s <= 0.008, (name, fs, s)


def test_baseline_steps_are_not_beats() -> None:
    """Electrode-motion steps (2 mV, 20 ms edges) between beats: no beat on a step."""
    rec = load_record("100", 120.0)
    x = rec.signal_mv.copy()
    edge = int(0.02 * rec.fs)
    steps = []
    for k in range(20, rec.beats.size - 1, 12):
        at = (rec.beats[k] + rec.beats[k + 1]) // 2
        x[at : at + edge] -= np.linspace(0, 2.0, edge)
        x[at + edge :] -= 2.0
        steps.append(at)
    s = _score(rec, x)
    assert s.fp == 0 and s.f1 >= 0.99, s


@pytest.mark.parametrize("rr_s", [0.4, 0.5])
def test_tachycardia_keeps_every_beat(rr_s: float) -> None:
    """150 and 120 bpm with the records' own mix of normal beats and PVCs (no beat taken for a T wave).

    106 at 150 bpm loses a few narrow beats squeezed between two broad PVCs (their
    energy overlaps within the refractory span), hence 0.98 there."""
    for name in RECORDS:
        rec = spliced(load_record(name, FIVE_MIN), np.full(300, rr_s), seed=1)
        s = _score(rec)
        assert s.f1 >= (0.98 if name == "106" else 0.99), (name, rr_s, s)


@pytest.mark.parametrize("fs", [360.0, 128.0])
def test_atrial_flutter_waves_are_not_beats(fs: float) -> None:
    """Flutter at 300/min (0.2 mV sawtooth) with variable 2:1-4:1 conduction."""
    from scipy.signal import sawtooth

    rng = np.random.default_rng(3)
    for name in ("100", "101"):
        base = load_record(name, FIVE_MIN)
        rec = spliced(base if fs == base.fs else resampled(base, fs), 0.2 * rng.choice([2, 3, 4], 300, p=[0.5, 0.3, 0.2]), seed=1)
        t = np.arange(rec.signal_mv.size) / rec.fs
        s = _score(rec, rec.signal_mv + 0.2 * sawtooth(2 * np.pi * 5.0 * t, 0.8))
        assert s.f1 >= 0.99, (name, fs, s)
