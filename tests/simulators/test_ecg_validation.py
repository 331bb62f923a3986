"""The ECG's beats are where the truth says: found by an independent detector (NeuroKit2)."""

from __future__ import annotations

import neurokit2 as nk
import numpy as np
import pytest

from simulators.body import SimulatedBody
from simulators.noise import noise_snr_db
from simulators.scoring import score_beats
from simulators.scenarios import Segment

from .conftest import beat_times, render, scenario_with


def _match(detected_s: np.ndarray, truth_s: np.ndarray, tol: float) -> tuple[float, float, float]:
    """(sensitivity, positive predictivity, median |timing error| s), edges excluded."""
    detected_s = detected_s[(detected_s > truth_s[0] - tol) & (detected_s < truth_s[-1] + tol)]
    score = score_beats(detected_s, truth_s, tol)
    assert score.median_error_s is not None
    return score.sensitivity, score.ppv, score.median_error_s


def _neurokit_peaks(x: np.ndarray, fs: float) -> np.ndarray:
    _, info = nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=int(fs)), sampling_rate=int(fs))
    return np.asarray(info["ECG_R_Peaks"], dtype=float) / fs


@pytest.mark.parametrize("fs", [130.0, 250.0, 500.0])
def test_neurokit_finds_every_beat_at_its_true_time(fs: float) -> None:
    s = scenario_with(Segment(at=60, duration=60, hr=120, ramp=10), seed=3)
    x, beats = render(s, 150, fs, noise=True)
    truth = beat_times(beats, 2, 148)
    se, ppv, err = _match(_neurokit_peaks(x, fs), truth, tol=0.05)
    assert se >= 0.995 and ppv >= 0.995, (se, ppv)
    assert err < 2.5 / fs + 0.004  # within a couple of samples


def test_beats_found_in_ectopy_af_and_vt() -> None:
    s = scenario_with(
        Segment(at=0, duration=60, pvc_per_hour=900, pac_per_hour=600),
        Segment(at=60, duration=60, rhythm="af", hr=110, ramp=0),
        Segment(at=120, duration=20, rhythm="vt", hr=180, ramp=0),
        seed=5,
    )
    x, beats = render(s, 150, 250.0)
    assert {b.label for b in beats} == {"N", "A", "V"}
    se, ppv, err = _match(_neurokit_peaks(x, 250.0), beat_times(beats, 2, 148), tol=0.08)
    assert se >= 0.97 and ppv >= 0.97, (se, ppv)


def test_electrode_motion_noise_at_the_requested_snr() -> None:
    for snr in (0.0, 6.0, 12.0):
        s = scenario_with(Segment(at=0, duration=120, noise_snr_db=snr), seed=2)
        clean = SimulatedBody(s, ecg_fs=250, noise=False)
        noisy = SimulatedBody(s, ecg_fs=250, noise=True)
        a = np.concatenate([clean.ecg(k, 250) for k in range(120)])
        b = np.concatenate([noisy.ecg(k, 250) for k in range(120)])
        base = SimulatedBody(scenario_with(seed=2), ecg_fs=250, noise=True)
        c = np.concatenate([base.ecg(k, 250) for k in range(120)])
        measured = 10 * np.log10(np.mean(a**2) / np.mean((b - c) ** 2))  # b - c: the electrode motion alone
        assert measured == pytest.approx(snr, abs=1.0)
        assert noise_snr_db(a, b) < snr + 0.5


def test_amplitude_and_rate_are_configurable() -> None:
    lo, _ = render(scenario_with(profile="hf_elderly"), 20, 500.0)
    hi, _ = render(scenario_with(profile="healthy_adult"), 20, 500.0)
    # R-wave heights as profiled (0.9 and 1.3 mV) within the baseline's wander
    assert np.percentile(lo[1000:], 99.9) == pytest.approx(0.9, rel=0.15)
    assert np.percentile(hi[1000:], 99.9) == pytest.approx(1.3, rel=0.15)


def test_chunking_does_not_change_the_signal() -> None:
    s = scenario_with(Segment(at=10, duration=20, rhythm="af", hr=100), seed=4)
    a, _ = render(s, 40, 200.0, noise=True, chunk_s=1.0)
    b, _ = render(s, 40, 200.0, noise=True, chunk_s=10.0)
    assert np.allclose(a, b, atol=1e-9)


def test_lead_off_is_a_flat_zero() -> None:
    s = scenario_with(Segment(at=10, duration=10, contact=False))
    x, _ = render(s, 30, 130.0, noise=True)
    assert np.all(x[10 * 130 : 20 * 130] == 0) and np.std(x[:1300]) > 0.05
