"""VT: QRS width, wide beats relative to the patient's own, runs of wide fast beats; MIT-BIH 106 and simulated VT."""

from __future__ import annotations

import numpy as np
import pytest

from edge.dsp import ecg_peaks, ecg_qrs_widths, ecg_wide_beats, rhythm_vt_runs
from edge.summary import VT_FLAG_BEATS, Summarizer
from simulators.body import SimulatedBody
from simulators.scenarios import Scenario, Segment
from tests.edge.dsp.records import load_record, resampled

START = 1_700_000_040.0  # a multiple of 30 s


def _vt_annotations(name: str) -> list[tuple[float, float]]:
    """(start, end) in s of the record's ``(VT`` rhythm annotations."""
    rec = load_record(name)
    marks = list(rec.rhythm)
    return [
        (s / rec.fs, (marks[i + 1][0] if i + 1 < len(marks) else rec.signal_mv.size) / rec.fs)
        for i, (s, label) in enumerate(marks) if label.startswith("(VT")
    ]  # fmt: skip


@pytest.mark.parametrize("fs", [360.0, 130.0])
def test_ventricular_beats_of_106_are_wide_and_normal_ones_narrow(fs: float) -> None:
    rec = load_record("106", 600.0)
    rec = rec if fs == rec.fs else resampled(rec, fs)
    wide = ecg_wide_beats(ecg_qrs_widths(rec.signal_mv, rec.beats, rec.fs))
    labels = np.array(rec.labels)
    assert wide[labels == "V"].mean() >= 0.9
    assert wide[labels == "N"].mean() <= 0.03


@pytest.mark.parametrize("fs", [360.0, 130.0])
def test_the_vt_run_of_106_is_found_and_no_sustained_vt_is_invented(fs: float) -> None:
    (vt_start, vt_end), = _vt_annotations("106")  # one 3-beat run at 125 bpm, 176.7 s
    rec = load_record("106", 300.0)
    rec = rec if fs == rec.fs else resampled(rec, fs)
    peaks = ecg_peaks(rec.signal_mv, rec.fs)
    runs = rhythm_vt_runs(peaks / rec.fs, ecg_wide_beats(ecg_qrs_widths(rec.signal_mv, peaks, rec.fs)))
    assert [(r.beats, r.start <= vt_end and vt_start <= r.end) for r in runs] == [(3, True)]
    assert 110 <= runs[0].value <= 140
    assert all(r.beats < VT_FLAG_BEATS for r in runs)  # a salvo, not sustained VT: no flag


@pytest.mark.parametrize("name", ["100", "101"])
def test_no_vt_in_records_without_it(name: str) -> None:
    rec = load_record(name, 600.0)
    peaks = ecg_peaks(rec.signal_mv, rec.fs)
    assert rhythm_vt_runs(peaks / rec.fs, ecg_wide_beats(ecg_qrs_widths(rec.signal_mv, peaks, rec.fs))) == []


def _simulated(segments: tuple[Segment, ...], seconds: float, seed: int = 4) -> tuple[np.ndarray, float]:
    body = SimulatedBody(Scenario("vt", resting_hr=72, seed=seed, segments=segments), ecg_fs=130.0)
    return body.ecg(0.0, int(seconds * 130)), 130.0


def _windows(x: np.ndarray, fs: float, window: float = 30.0) -> tuple[list[object], list[tuple[float, str]]]:
    s, out = Summarizer(window, ecg_fs=fs), []
    for a in range(0, x.size, 130):
        out += s.feed_ecg(START + a / fs, x[a : a + 130])
    out += s.finish()
    return out, s.take_strip_requests()


def test_simulated_vt_flags_its_windows_and_asks_for_a_strip_of_its_onset() -> None:
    # 20 s of VT at 185 bpm, then sinus tachycardia (narrow, 130 bpm) that must not be called VT
    x, fs = _simulated((Segment(at=75, duration=20, rhythm="vt", hr=185, ramp=0),
                        Segment(at=125, duration=50, hr=130, ramp=0)), 210.0)  # fmt: skip
    windows, requests = _windows(x, fs)
    flagged = [(w.start - START, w.end - START) for w in windows if "vt" in w.flags]  # type: ignore[attr-defined]
    assert flagged == [(60.0, 90.0), (90.0, 120.0)]  # the windows the run [75, 95) overlaps, and only those
    vt_requests = [t - START for t, r in requests if r == "rhythm:vt"]
    assert len(vt_requests) == 1 and 75 < vt_requests[0] <= 90  # the strip ends after the onset
    assert any("tachy" in w.flags for w in windows if w.start - START >= 150)  # type: ignore[attr-defined]


def test_vt_windows_equal_for_any_chunking() -> None:
    x, fs = _simulated((Segment(at=50, duration=15, rhythm="vt", hr=170, ramp=0),), 100.0, seed=9)

    def run(cuts: list[int]) -> list[object]:
        s, out, edges = Summarizer(20.0, ecg_fs=fs), [], [0, *cuts, x.size]
        for a, b in zip(edges[:-1], edges[1:]):
            out += s.feed_ecg(START + a / fs, x[a:b])
        return out + s.finish()

    batch = run([])
    assert any("vt" in w.flags for w in batch)  # type: ignore[attr-defined]
    rng = np.random.default_rng(5)
    for _ in range(2):
        assert run(sorted(set(rng.integers(1, x.size, 30).tolist()))) == batch


def test_slow_wide_rhythm_and_single_pvcs_are_not_vt() -> None:
    # accelerated idioventricular rhythm (wide, 80 bpm) and frequent single PVCs
    x, fs = _simulated((Segment(at=60, duration=40, rhythm="vt", hr=80, ramp=0),
                        Segment(at=110, duration=60, pvc_per_hour=1200)), 180.0)  # fmt: skip
    windows, requests = _windows(x, fs)
    assert not any("vt" in w.flags for w in windows)  # type: ignore[attr-defined]
    assert not any(r == "rhythm:vt" for _, r in requests)


def test_runs_need_three_wide_fast_usable_beats() -> None:
    t = np.arange(12) * 0.4  # 150 bpm
    wide = np.array([0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1], dtype=bool)
    assert [(r.start, r.beats) for r in rhythm_vt_runs(t, wide)] == [(1.6, 3), (3.2, 4)]
    usable = np.ones(12, dtype=bool)
    usable[10] = False  # the interval ending at beat 10 is noise: the run breaks there
    assert [(r.start, r.beats) for r in rhythm_vt_runs(t, wide, usable)] == [(1.6, 3)]
    assert rhythm_vt_runs(np.arange(12) * 0.7, np.ones(12, dtype=bool)) == []  # 86 bpm: not VT
    assert rhythm_vt_runs(t, wide[:5]) == [] and rhythm_vt_runs([], []) == []  # mismatched or empty


def test_runs_over_doubtful_signal_count_only_when_regular() -> None:
    wide, unusable = np.ones(10, dtype=bool), np.zeros(10, dtype=bool)
    doubtful = np.ones(10, dtype=bool)  # a spikiness index called it noise (fast VT can look so)
    regular = np.arange(10) * 0.33
    assert [r.beats for r in rhythm_vt_runs(regular, wide, unusable, doubtful=doubtful)] == [10]
    irregular = np.cumsum(np.random.default_rng(1).uniform(0.2, 0.55, 10))  # beats found in noise
    assert rhythm_vt_runs(irregular, wide, unusable, doubtful=doubtful) == []
    assert [r.beats for r in rhythm_vt_runs(irregular, wide)] == [10]  # in usable signal, irregular VT counts


def test_fast_vt_that_looks_like_noise_to_the_quality_index_is_still_flagged() -> None:
    x, fs = _simulated((Segment(at=90, duration=10, rhythm="vt", hr=200, ramp=0),), 180.0, seed=3)
    windows, _ = _windows(x, fs)
    assert [w.start - START for w in windows if "vt" in w.flags] == [90.0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "signal", [np.zeros(0), np.full(2000, np.nan), np.zeros(2000), np.full(2000, np.inf), np.ones(50)]
)
def test_bad_input_gives_unknown_widths_never_an_exception(signal: np.ndarray) -> None:
    peaks = np.array([-5, 100, 1000, 10_000])
    widths = ecg_qrs_widths(signal, peaks, 130.0)
    assert widths.shape == (4,) and np.isnan(widths).all()
    assert not ecg_wide_beats(widths).any()
    assert np.isnan(ecg_qrs_widths(np.random.default_rng(0).normal(size=5000), [2500], 5.0)).all()  # wrong rate
