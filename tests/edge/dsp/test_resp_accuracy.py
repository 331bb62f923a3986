"""ECG-derived respiration rate against the simulators' true breathing, and what reaches the alert rules.

The simulated patient (:mod:`simulators.body`) breathes with an ~8 % breath-to-breath
wobble; the truth of an estimate is the mean breathing rate over the same 60 s it
was made from. Tolerance: every rate given is within ``TOLERANCE`` of that truth
(bench/bench_resp.py measures the whole grid). A rate the ECG cannot support
(noise, too few usable beats, breathing too fast for the heart rate to sample) is
None: the phone sends no respiration rate then, so the rules cannot alert on it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from edge.dsp import ecg_peaks, resp_rate_from_ecg
from edge.dsp.ecg import ecg_beat_quality, ecg_segments
from edge.dsp.resp import USABLE, RespRate
from edge.summary import Summarizer
from server.rules import RuleConfig, RuleState, evaluate_windows
from simulators.body import SimulatedBody
from simulators.profiles import Profile
from simulators.scenarios import Scenario, Segment, load_scenario
from wire import SummaryWindow

FS = 130.0  # a Polar H10's ECG
SPAN_S = 60.0  # the summariser's respiration span
TOLERANCE = 1.5  # breaths/min
ENDS = (90.0, 120.0, 150.0)


def _body(resp: float, hr: float, *, snr: float | None = None, rhythm: str = "sinus", pvc: float | None = None,
          seed: int = 1) -> SimulatedBody:
    seg = Segment(at=0, duration=1000, ramp=0, noise_snr_db=snr, rhythm=rhythm, pvc_per_hour=pvc)
    return SimulatedBody(Scenario("resp", resting_hr=hr, seed=seed, profile=Profile(resting_hr=hr, resp_rate=resp),
                                  segments=(seg,)), ecg_fs=FS)


def _truth(body: SimulatedBody, end: float) -> float:
    return body.resp.mean_rate(end - SPAN_S, end)


def _estimates(body: SimulatedBody) -> list[tuple[float, RespRate]]:
    """(truth, estimate) over the 60 s before each of ``ENDS``, from the beats in usable signal."""
    x = body.ecg(0.0, int(ENDS[-1] * FS))
    peaks = ecg_peaks(x, FS)
    usable = ecg_beat_quality(peaks, ecg_segments(x, FS)) >= USABLE
    out = []
    for end in ENDS:
        inside = (peaks >= (end - SPAN_S) * FS) & (peaks < end * FS)
        out.append((_truth(body, end), resp_rate_from_ecg(peaks[inside], x, FS, usable[inside])))
    return out


def _windows(body: SimulatedBody, seconds: float) -> list[SummaryWindow]:
    """The summariser's 10 s windows over ``seconds`` of the body's ECG, rendered and fed 1 s at a time."""
    s = Summarizer(10.0, ecg_fs=FS)
    n = int(FS)  # the body sets each chunk's noise from its first second
    return [w for t in range(int(seconds)) for w in s.feed_ecg(float(t), body.ecg(float(t), n))] + s.finish()


RATE_PAIRS = [(r, hr) for hr in (60.0, 90.0, 120.0) for r in (8.0, 12.0, 16.0, 20.0, 24.0, 30.0) if r <= 0.33 * hr]


@pytest.mark.parametrize(("resp", "hr"), RATE_PAIRS)  # faster breathing: see the aliasing test
def test_the_rate_is_within_tolerance_of_the_true_breathing(resp: float, hr: float) -> None:
    found = _estimates(_body(resp, hr))
    errors = [abs(r.rate - truth) for truth, r in found if r.rate is not None]
    assert len(errors) == len(ENDS), found  # a clean lead: always an estimate
    assert max(errors) <= TOLERANCE and all(r.quality >= USABLE for _, r in found), found


@pytest.mark.parametrize("resp", [20.0, 21.0, 22.0])
def test_the_rate_is_not_quantised_to_the_series_grid(resp: float) -> None:
    """Breath intervals timed on the 4 Hz grid alone read ~21/min as 20.0 or 21.8 (at a NEWS2 limit)."""
    errors = [r.rate - truth for truth, r in _estimates(_body(resp, 100.0, seed=3)) if r.rate is not None]
    assert len(errors) == len(ENDS) and float(np.median(np.abs(errors))) <= 0.5, errors


HARDER: dict[str, dict[str, Any]] = {
    "electrode motion at 6 dB": {"snr": 6.0}, "PVCs 600/h": {"pvc": 600.0}, "atrial fibrillation": {"rhythm": "af"},
}  # fmt: skip


@pytest.mark.parametrize("condition", list(HARDER))
def test_noise_ectopy_and_af_give_the_rate_or_nothing(condition: str) -> None:
    given = 0
    for resp, hr in ((12.0, 75.0), (18.0, 90.0), (24.0, 110.0)):
        for truth, r in _estimates(_body(resp, hr, **HARDER[condition])):
            if r.rate is not None:
                given += 1
                assert abs(r.rate - truth) <= TOLERANCE + 1.0, (condition, resp, hr, truth, r)
    assert given >= 5, condition  # most windows still have one


def test_strong_noise_gives_low_quality_and_no_rate() -> None:
    for resp, hr in ((8.0, 70.0), (15.0, 70.0), (24.0, 110.0)):
        for _, r in _estimates(_body(resp, hr, snr=0.0)):
            assert r.rate is None and r.quality < USABLE, (resp, hr, r)


def test_breathing_too_fast_for_the_heart_rate_is_not_read() -> None:
    """Beats sample breathing: at 27/min and 60 bpm (2.2 beats a breath) an alias cannot be ruled out."""
    for _, r in _estimates(_body(27.0, 60.0)):
        assert r.rate is None and r.quality < USABLE, r


def test_a_gap_of_unusable_beats_is_not_read_as_slow_breathing() -> None:
    """Leaving out unusable beats must not join the beats around the gap into one long "RR interval"."""
    body = _body(16.0, 72.0)
    x = body.ecg(0.0, int(90 * FS))
    peaks = ecg_peaks(x, FS)
    inside = peaks >= 30 * FS
    usable = np.ones(peaks.size, dtype=bool)
    usable[(peaks % int(12 * FS)) < 2 * FS] = False  # 2 s of every 12 s unusable
    r = resp_rate_from_ecg(peaks[inside], x, FS, usable[inside])
    assert r.rate is not None and abs(r.rate - _truth(body, 90.0)) <= TOLERANCE, r


def _resp_alerts(windows: list[SummaryWindow], start: float = 1_700_000_000.0) -> list[str]:
    """Levels of the respiration alerts the rules raise on ``windows`` (moved to ``start``, s since epoch)."""
    shifted = [replace(w, start=w.start + start, end=w.end + start) for w in windows]
    _, actions = evaluate_windows(RuleState(), shifted, RuleConfig(hold_seconds=30.0))  # the demo's hold
    return [a.level for a in actions if a.parameter == "resp_rate"]


def test_noisy_ecg_raises_no_respiration_alert() -> None:
    """15/min at rest, with 5 min of electrode-motion noise at 0 dB: no value, hence no NEWS2 alert, in the noise."""
    scenario = Scenario("noisy", resting_hr=70, seed=2, profile=Profile(resting_hr=70, resp_rate=15),
                        segments=(Segment(at=120, duration=300, ramp=0, noise_snr_db=0.0),))
    windows = _windows(SimulatedBody(scenario, ecg_fs=FS), 480.0)
    noisy = [w for w in windows if 140 <= w.start and w.end <= 420]
    assert noisy and all(w.resp_rate is None or abs(w.resp_rate - 15) <= 3 for w in noisy), noisy
    assert _resp_alerts(windows) == []


def test_a_calm_day_raises_no_respiration_alert() -> None:
    """The demo's "calm day" (baseline scenario: rest and a 4 min walk) breathes within NEWS2's normal band."""
    scenario = load_scenario("baseline")
    body = SimulatedBody(scenario, ecg_fs=FS)
    windows = _windows(body, 720.0)
    truths = [_truth(body, w.end) for w in windows if w.end >= SPAN_S]
    assert 12 < min(truths) and max(truths) < 21, (min(truths), max(truths))
    given = [w.resp_rate for w in windows if w.resp_rate is not None]
    assert len(given) >= 0.8 * len(windows) and all(11 < v < 21 for v in given), given
    assert _resp_alerts(windows) == []
