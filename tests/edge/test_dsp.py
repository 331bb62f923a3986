"""Pure DSP on seeded simulated signals, asserting physiology within tolerances."""

from __future__ import annotations

import numpy as np
import pytest

from edge.dsp import accel_activity, ecg_peaks, ecg_quality, rr_stats
from simulators.signals import accel_samples, ecg_noise, ecg_waveform, rr_series

FS = 130.0


def test_rr_stats_known_values() -> None:
    s = rr_stats([0.8, 0.9, 0.8, 0.9])
    assert s.beats == 4
    assert s.hr_mean == pytest.approx(60 / 0.85)
    assert (s.hr_min, s.hr_max) == (pytest.approx(60 / 0.9), pytest.approx(75.0))
    assert s.rr_mean == pytest.approx(850.0)
    assert s.rmssd == pytest.approx(100.0)
    assert s.sdnn == pytest.approx(np.std([800, 900, 800, 900], ddof=1))


@pytest.mark.parametrize(
    ("rr", "flags"),
    [
        ([0.8] * 20, ()),
        ([0.8] * 10 + [2.2] + [0.8] * 10, ("irregular", "pause")),  # one long RR inflates RMSSD
        ([1.4] * 20, ("brady",)),
        ([0.5] * 20, ("tachy",)),
        ([0.6, 1.0] * 10, ("ectopic", "irregular")),  # bigeminy
        ([0.8] * 10 + [0.5, 1.1] + [0.8] * 10, ("ectopic", "irregular")),  # one PVC with its pause
    ],
)
def test_rr_flags(rr: list[float], flags: tuple[str, ...]) -> None:
    assert rr_stats(rr).flags == flags


def test_rr_stats_empty_and_artefacts() -> None:
    assert rr_stats([]).hr_mean is None
    assert rr_stats([0.1, 5.0]).beats == 0
    assert rr_stats([0.1, 5.0]).flags == ("pause",)


@pytest.mark.parametrize("hr", [50.0, 75.0, 140.0])
def test_ecg_peaks_find_simulated_beats(hr: float) -> None:
    rng = np.random.default_rng(42)
    beats = rr_series(lambda t: hr, 30.0, rng)
    t = np.arange(0, 30.0, 1 / FS)
    x = ecg_waveform(t, beats, np.diff(beats, prepend=beats[0] - 60 / hr)) + ecg_noise(t, rng)
    peaks = t[ecg_peaks(x, FS)]
    inner = beats[(beats > 0.5) & (beats < 29.5)]
    matched = [np.min(np.abs(peaks - b)) < 0.03 for b in inner]
    assert np.mean(matched) >= 0.97
    assert abs(len(peaks) - len(beats)) <= 2
    assert ecg_quality(x, FS) == 1.0


def test_ecg_quality_bad_signals() -> None:
    assert ecg_quality(np.zeros(1300), FS) == 0.0
    saturated = np.clip(np.random.default_rng(1).normal(0, 5, 1300), -2, 2)
    assert ecg_quality(saturated, FS) <= 0.1
    assert ecg_peaks(np.zeros(1300), FS).size == 0


@pytest.mark.parametrize("activity", ["lying", "rest", "walk", "run"])
def test_accel_activity(activity: str) -> None:
    t = np.arange(0, 20, 1 / 25)
    cls, intensity = accel_activity(accel_samples(activity, t, np.random.default_rng(3)), 25.0)
    assert cls == activity
    assert intensity is not None and 0 <= intensity < 2


def test_accel_empty() -> None:
    assert accel_activity(np.zeros((0, 3)), 25.0) == ("unknown", None)
