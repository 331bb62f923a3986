"""Respiration rate (channel and ECG-derived) and activity (ENMO, class, steps, posture, fall) on constructed signals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.dsp import ecg_peaks
from edge.dsp.accel import accel_features
from edge.dsp.resp import resp_rate, resp_rate_from_ecg
from tests.edge.dsp.records import load_record, spliced

GRAVITY = {"upright": (0.0, 1.0, 0.0), "lying": (0.0, 0.05, 1.0)}


def _breathing(rate_bpm: float, seconds: float, fs: float, rng: np.random.Generator, jitter: float = 0.05) -> np.ndarray:
    t = np.arange(0, seconds, 1 / fs)
    f = rate_bpm / 60 * (1 + jitter * np.sin(2 * np.pi * t / 23))
    return np.sin(2 * np.pi * np.cumsum(f) / fs) + 0.2 * rng.standard_normal(t.size)


@pytest.mark.parametrize("rate", [8.0, 15.0, 24.0, 36.0])
def test_resp_channel_rate(rate: float) -> None:
    r = resp_rate(_breathing(rate, 60.0, 25.0, np.random.default_rng(1)), 25.0)
    assert r.rate is not None and abs(r.rate - rate) <= 1.0 and r.quality >= 0.5 and r.source == "channel"


def test_resp_channel_noise_or_flat_is_unusable() -> None:
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(1500)
    assert resp_rate(noise, 25.0).rate is None
    assert resp_rate(np.zeros(1500), 25.0).rate is None
    assert resp_rate(_breathing(15, 10.0, 25.0, rng), 25.0).rate is None  # too short
    assert resp_rate(np.full(1500, np.nan), 25.0).rate is None
    assert resp_rate([], float("nan")).quality == 0.0


@pytest.mark.parametrize("rate", [12.0, 18.0])
def test_ecg_derived_rate_from_amplitude_and_rsa(rate: float) -> None:
    """MIT-BIH beats re-timed with RSA at the breathing rate, and their amplitude modulated by it."""
    rng = np.random.default_rng(3)
    f = rate / 60
    t, rr = 0.0, []
    while t < 70:
        rr.append(0.85 * (1 + 0.05 * np.sin(2 * np.pi * f * t)))
        t += rr[-1]
    rec = spliced(load_record("100", 120.0), np.asarray(rr), seed=4)
    time = np.arange(rec.signal_mv.size) / rec.fs
    x = rec.signal_mv * (1 + 0.1 * np.sin(2 * np.pi * f * time + 1.0)) + 0.01 * rng.standard_normal(time.size)
    peaks = ecg_peaks(x, rec.fs)
    r = resp_rate_from_ecg(peaks, x, rec.fs)
    assert r.rate is not None and abs(r.rate - rate) <= 1.5 and r.source.startswith("ecg"), r


def test_ecg_derived_needs_enough_beats() -> None:
    rec = load_record("100", 15.0)
    assert resp_rate_from_ecg(ecg_peaks(rec.signal_mv, rec.fs), rec.signal_mv, rec.fs).rate is None
    assert resp_rate_from_ecg([5, 10_000_000], rec.signal_mv, rec.fs).rate is None


def _accel(posture: str, seconds: float, fs: float, rng: np.random.Generator, step_hz: float = 0.0, amp: float = 0.0) -> np.ndarray:
    t = np.arange(0, seconds, 1 / fs)
    a = np.tile(GRAVITY[posture], (t.size, 1)) + 0.005 * rng.standard_normal((t.size, 3))
    if amp:
        a[:, 1] += amp * np.sin(2 * np.pi * step_hz * t)
        a[:, 2] += 0.3 * amp * np.sin(np.pi * step_hz * t)
    return a


@pytest.mark.parametrize(
    ("posture", "step_hz", "amp", "cls", "steps"),
    [("lying", 0, 0, "lying", 0), ("upright", 0, 0, "rest", 0), ("upright", 1.8, 0.25, "walk", 54), ("upright", 2.8, 0.6, "run", 84)],
)
def test_activity_class_intensity_and_steps(posture: str, step_hz: float, amp: float, cls: str, steps: int) -> None:
    act = accel_features(_accel(posture, 30.0, 50.0, np.random.default_rng(5), step_hz, amp), 50.0)
    assert act.activity == cls
    assert abs(act.steps - steps) <= 2
    assert act.enmo is not None and act.intensity is not None and act.enmo <= act.intensity
    assert (act.cadence_hz is None) == (steps == 0)
    if steps:
        assert act.cadence_hz == pytest.approx(step_hz, abs=0.1)


def test_posture_changes_and_fall_candidate() -> None:
    rng, fs = np.random.default_rng(6), 50.0
    changes = np.concatenate([_accel("upright", 10, fs, rng), _accel("lying", 10, fs, rng), _accel("upright", 10, fs, rng)])
    act = accel_features(changes, fs)
    assert act.posture_changes == 2 and not act.fall and act.posture == "upright"
    assert accel_features(_accel("lying", 5, fs, rng), fs, posture="upright").posture_changes == 1
    before, after = _accel("upright", 10, fs, rng), _accel("lying", 10, fs, rng)
    fall = np.concatenate([before, np.tile([0.0, 0.2, 0.1], (int(0.5 * fs), 1)), np.tile([0.5, 1.0, 3.0], (3, 1)), after])
    act = accel_features(fall, fs)
    assert act.fall and act.posture == "lying"
    lie_down = np.concatenate([before, after])  # lying down without impact: no fall
    assert not accel_features(lie_down, fs).fall
    jump = np.concatenate([before, np.tile([0.0, 0.2, 0.1], (int(0.5 * fs), 1)), np.tile([0.5, 3.0, 0.5], (3, 1)), before])
    assert not accel_features(jump, fs).fall  # impact, but upright afterwards


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=600),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 25.0, 50.0])),
)
def test_bad_input_never_raises(values: list[float], fs: float) -> None:
    act = accel_features(values, fs)
    assert act.dropped >= 0 and act.activity in {"lying", "rest", "walk", "run", "unknown"}
    r = resp_rate(values, fs)
    assert r.rate is None or 1 <= r.rate <= 80
