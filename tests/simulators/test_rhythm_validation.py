"""Heart rate, HRV, respiration and arrhythmias have the statistics the profile and scenario ask for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from simulators.body import SimulatedBody
from simulators.profiles import load_profile
from simulators.scenarios import Incident, Segment

from .conftest import scenario_with


def _beats(scenario, until: float):  # type: ignore[no-untyped-def]
    body = SimulatedBody(scenario, noise=False)
    return body, [b for b in body.beats_until(until) if b.time < until]


def _lf_hf(times: np.ndarray, rr: np.ndarray) -> tuple[float, float]:
    """LF/HF ratio and HF peak frequency (Hz) of an RR series, resampled at 4 Hz."""
    grid = np.arange(times[0], times[-1], 0.25)
    x = np.interp(grid, times, rr)
    f, p = welch(x - x.mean(), fs=4.0, nperseg=1024)
    lf, hf = (f >= 0.04) & (f < 0.15), (f >= 0.15) & (f < 0.4)
    return float(p[lf].sum() / p[hf].sum()), float(f[hf][np.argmax(p[hf])])


@pytest.mark.parametrize("profile", ["healthy_adult", "hf_elderly"])
def test_heart_rate_hrv_and_rsa_match_the_profile(profile: str) -> None:
    p = load_profile(profile)
    _, beats = _beats(scenario_with(profile=profile, seed=11), 900)
    normal = [b for a, b in zip(beats, beats[1:]) if a.label == b.label == "N" and b.time > 20]  # NN intervals
    t, rr = np.array([b.time for b in normal]), np.array([b.rr for b in normal])
    assert 60 / rr.mean() == pytest.approx(p.resting_hr, rel=0.03)
    assert rr.std() * 1000 == pytest.approx(p.hrv_sdnn_ms, rel=0.3)
    ratio, hf_peak = _lf_hf(t, rr)
    assert p.lf_hf / 2 < ratio < p.lf_hf * 2
    assert hf_peak * 60 == pytest.approx(p.resp_rate, abs=2.0)  # RSA at the breathing rate


def test_respiration_rate_and_its_modulation_of_the_ecg() -> None:
    p = load_profile("healthy_adult")
    body = SimulatedBody(scenario_with(seed=6), ecg_fs=250, noise=False)
    t = np.arange(0, 300, 1 / 25)
    band = body.resp.band(t)
    f, pw = welch(band, fs=25, nperseg=4096)
    assert f[np.argmax(pw)] * 60 == pytest.approx(p.resp_rate, abs=1.5)
    ecg = np.concatenate([body.ecg(k, 250) for k in range(300)])
    r_amp = np.array([ecg[int(round(b.time * 250))] for b in body.beats if 1 < b.time < 299])
    r_t = np.array([b.time for b in body.beats if 1 < b.time < 299])
    g = np.arange(r_t[0], r_t[-1], 0.25)
    f2, p2 = welch(np.interp(g, r_t, r_amp) - r_amp.mean(), fs=4.0, nperseg=512)
    assert f2[np.argmax(p2)] * 60 == pytest.approx(p.resp_rate, abs=2.0)  # R height breathes


def test_af_is_irregularly_irregular_and_has_no_p_waves() -> None:
    s = scenario_with(Segment(at=300, duration=300, rhythm="af", hr=100, ramp=0), seed=8)
    _, beats = _beats(s, 600)
    sinus = np.array([b.rr for b in beats if 20 < b.time < 300])
    af = np.array([b.rr for b in beats if 310 < b.time < 600])

    def cv(rr: np.ndarray) -> float:
        return float(np.std(rr) / np.mean(rr))

    def nrmssd(rr: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.diff(rr) ** 2)) / np.mean(rr))

    assert cv(af) > 0.12 and nrmssd(af) > 0.15  # irregular beat to beat
    assert cv(sinus) < 0.07 and nrmssd(sinus) < 0.06
    assert abs(np.corrcoef(af[:-1], af[1:])[0, 1]) < 0.2  # and unpredictable from the last one
    assert 60 / af.mean() == pytest.approx(100, rel=0.05)
    assert {b.rhythm for b in beats if 310 < b.time < 600} == {"af"}


def test_af_ecg_has_f_waves_instead_of_p_waves() -> None:
    s = scenario_with(Segment(at=60, duration=60, rhythm="af", hr=75, ramp=0), seed=9)
    body = SimulatedBody(s, ecg_fs=500, noise=False)
    x = np.concatenate([body.ecg(k, 500) for k in range(120)])

    def p_wave(lo: float, hi: float) -> float:
        """Height of the R-synchronised average 240..100 ms before R (the P wave), over its edges."""
        segs = [x[int(b.time * 500) - 120 : int(b.time * 500) - 50] for b in body.beats if lo < b.time < hi]
        avg = np.mean(segs, axis=0)
        return float(avg.max() - (avg[0] + avg[-1]) / 2)

    assert p_wave(5, 55) > 0.1 and p_wave(65, 115) < 0.03  # mV
    def diastole_ripple(lo: float, hi: float) -> float:
        """SD of the detrended ECG from 450 ms after each R to 250 ms before the next (T-P segment)."""
        beats = [b for b in body.beats if lo < b.time < hi]
        sds = []
        for a, b in zip(beats, beats[1:]):
            seg = x[int((a.time + 0.45) * 500) : int((b.time - 0.25) * 500)]
            if seg.size > 100:
                seg = seg - np.polyval(np.polyfit(np.arange(seg.size), seg, 1), np.arange(seg.size))
                sds.append(seg.std())
        return float(np.median(sds))

    assert diastole_ripple(65, 115) > 3 * diastole_ripple(5, 55)  # f-waves where sinus is still


def test_pvcs_are_early_with_a_compensatory_pause_and_pacs_reset() -> None:
    s = scenario_with(Segment(at=0, duration=1200, pvc_per_hour=300, pac_per_hour=300), seed=12)
    _, beats = _beats(s, 1200)
    labels = [b.label for b in beats]
    assert 10 < labels.count("V") < 200 and 10 < labels.count("A") < 200
    for i in range(2, len(beats) - 1):
        b, nxt, prev = beats[i], beats[i + 1], beats[i - 1]
        if prev.label != "N":
            continue
        if b.label == "V":
            assert b.rr < 0.75 * prev.rr  # premature
            assert b.rr + nxt.rr == pytest.approx(2 * b.cycle, rel=0.02)  # fully compensatory
        if b.label == "A":
            assert b.rr < 0.8 * prev.rr and nxt.rr == pytest.approx(b.cycle, rel=0.02)  # reset


def test_pause_brady_tachy_vt_and_svt_runs() -> None:
    s = scenario_with(
        Segment(at=60, duration=60, hr=40, ramp=0),
        Segment(at=180, duration=60, rhythm="svt", hr=170, ramp=0),
        Segment(at=300, duration=30, rhythm="vt", hr=190, ramp=0),
        incidents=(Incident(at=30, type="pause", duration=4.0),),
        seed=13,
    )
    _, beats = _beats(s, 360)

    def window(lo: float, hi: float) -> tuple[np.ndarray, set[str]]:
        sel = [b for b in beats if lo < b.time < hi]
        return np.array([b.rr for b in sel]), {b.label for b in sel}

    pause = [b for b in beats if b.rr >= 3.9]
    assert len(pause) == 1 and 30 <= pause[0].time <= 36
    brady, _ = window(65, 120)
    assert 60 / brady.mean() == pytest.approx(40, rel=0.05)
    svt, svt_labels = window(185, 240)
    assert 60 / svt.mean() == pytest.approx(170, rel=0.03) and svt.std() / svt.mean() < 0.01 and svt_labels == {"N"}
    vt, vt_labels = window(302, 330)
    assert 60 / vt.mean() == pytest.approx(190, rel=0.03) and vt_labels == {"V"}
