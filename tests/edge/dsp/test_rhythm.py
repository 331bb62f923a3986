"""Rhythm episodes: pauses, brady/tachy runs, AF-suspicious irregularity and ectopic beats, streaming = batch."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.dsp import ecg_peaks
from edge.dsp.rhythm import Episode, RhythmStream, rhythm_episodes, rr_cosen
from tests.edge.dsp.records import RECORDS, load_record, spliced


def _times(rr: list[float] | np.ndarray, t0: float = 100.0) -> np.ndarray:
    return t0 + np.concatenate([[0.0], np.cumsum(rr)])


def _kind(episodes: list[Episode], kind: str) -> list[Episode]:
    return [e for e in episodes if e.kind == kind]


def _sinus(n: int, rng: np.random.Generator, mean: float = 0.85) -> np.ndarray:
    t = np.arange(n) * mean
    return mean * (1 + 0.04 * np.sin(2 * np.pi * t / 4.5) + 0.015 * rng.standard_normal(n))


def test_pauses_two_and_three_seconds_with_times() -> None:
    rr = [0.8] * 10 + [2.4] + [0.8] * 10 + [3.6] + [0.8] * 10
    t = _times(rr)
    pauses = _kind(rhythm_episodes(t), "pause")
    assert [(p.start, p.end) for p in pauses] == [(t[10], t[11]), (t[21], t[22])]
    assert [p.long for p in pauses] == [False, True]
    assert pauses[1].value == 3.6


def test_unusable_interval_is_no_pause_and_breaks_runs() -> None:
    rr = [1.5] * 12 + [4.0] + [1.5] * 12
    t = _times(rr)
    usable = np.ones(t.size, dtype=bool)
    usable[13] = False  # the 4 s interval lies over a lead-off
    episodes = rhythm_episodes(t, usable)
    assert _kind(episodes, "pause") == []
    brady = _kind(episodes, "brady")
    assert [(b.start, b.end, b.beats) for b in brady] == [(t[0], t[12], 12), (t[13], t[25], 12)]
    assert all(b.value == 40.0 for b in brady)


def test_tachy_run_tolerates_one_ectopic_and_short_runs_are_not_reported() -> None:
    rr = [0.8] * 10 + [0.5] * 6 + [0.8] * 10 + [0.5] * 10 + [0.3, 0.9] + [0.5] * 10 + [0.8] * 10
    t = _times(rr)
    tachy = _kind(rhythm_episodes(t), "tachy")
    assert len(tachy) == 1
    assert (tachy[0].start, tachy[0].end) == (t[26], t[48])


def test_ectopic_beats_are_found_at_the_premature_beat() -> None:
    rng = np.random.default_rng(1)
    rr = _sinus(60, rng)
    for i in (20, 40):
        rr[i], rr[i + 1] = 0.55 * rr[i], 1.45 * rr[i + 1]
    t = _times(rr)
    ectopic = _kind(rhythm_episodes(t), "ectopic")
    assert [e.start for e in ectopic] == [t[21], t[41]]
    assert all(e.start == e.end and e.value < 0.8 for e in ectopic)


def test_af_episode_start_and_end_and_no_af_in_regular_or_geminal_rhythms() -> None:
    rng = np.random.default_rng(2)
    af = 0.75 * np.exp(0.2 * rng.standard_normal(240))
    rr = np.concatenate([_sinus(200, rng), af, _sinus(200, rng)])
    t = _times(rr)
    found = _kind(rhythm_episodes(t), "af")
    assert len(found) == 1
    assert abs(found[0].start - t[200]) < 15 and abs(found[0].end - t[440]) < 15
    bigeminy = _sinus(400, rng)
    bigeminy[::2] *= 0.6
    bigeminy[1::2] *= 1.4
    trigeminy = _sinus(400, rng)
    trigeminy[::3] *= 0.6
    trigeminy[1::3] *= 1.4
    for regular in (_sinus(400, rng), bigeminy, trigeminy):
        assert _kind(rhythm_episodes(_times(regular)), "af") == []


def test_cosen_separates_random_from_regular_intervals() -> None:
    rng = np.random.default_rng(3)
    assert rr_cosen(0.8 * np.exp(0.2 * rng.standard_normal(48))) > -1.4
    assert rr_cosen(_sinus(48, rng)) < -1.4
    assert rr_cosen([0.8, 0.8]) == float("-inf")


def test_af_on_real_beats_detected_from_ecg_and_none_on_the_shared_records() -> None:
    """MIT-BIH beats re-timed: 3 min sinus, 4 min AF-like, 3 min sinus; then the three full records.

    100 and 101 are sinus rhythm: no AF at all. 106 has bigeminy, trigeminy, runs of VT and
    long stretches of ventricular couplets in irregular order, none of them AF; the couplets
    look random to the entropy, and the ectopy filters catch most but not all of it: a known
    limitation, bounded here at 10 % of the record (docs/dsp.md)."""
    rng = np.random.default_rng(4)
    rr = np.concatenate([_sinus(210, rng), 0.7 * np.exp(0.2 * rng.standard_normal(340)), _sinus(210, rng)])
    rec = spliced(load_record("100", 300.0), rr, seed=5)
    beats = ecg_peaks(rec.signal_mv, rec.fs) / rec.fs
    truth = rec.beats / rec.fs
    found = _kind(rhythm_episodes(beats), "af")
    assert len(found) == 1
    assert abs(found[0].start - truth[210]) < 15 and abs(found[0].end - truth[550]) < 15
    for name in RECORDS:
        full = load_record(name)
        beats = ecg_peaks(full.signal_mv, full.fs) / full.fs
        af = _kind(rhythm_episodes(beats), "af")
        bound = 0.10 if name == "106" else 0.0
        assert sum(e.duration for e in af) <= bound * full.signal_mv.size / full.fs, (name, af)


RR = st.lists(st.floats(0.25, 4.0), min_size=0, max_size=300)


@settings(max_examples=40, deadline=None)
@given(RR, st.lists(st.integers(0, 300), max_size=12), st.lists(st.integers(0, 300), max_size=5))
def test_streaming_equals_batch_for_any_chunking(rr: list[float], cuts: list[int], bad: list[int]) -> None:
    t = _times(rr)
    usable = np.ones(t.size, dtype=bool)
    usable[[b for b in bad if b < t.size]] = False
    stream, got, edges = RhythmStream(), [], [0, *sorted(set(c for c in cuts if c < t.size)), t.size]
    for a, b in zip(edges[:-1], edges[1:]):
        got.extend(stream.feed(t[a:b], usable[a:b]))
    got.extend(stream.flush())
    assert got == rhythm_episodes(t, usable)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=100))
def test_bad_times_never_raise(times: list[float]) -> None:
    episodes = rhythm_episodes(np.asarray(times, dtype=float))
    assert all(e.end >= e.start for e in episodes)


def test_no_pause_where_a_rejected_artefact_may_hide_a_beat() -> None:
    """101 at 856 s: an electrode-motion burst hides a beat; the detector rejects the step, and the
    2 s interval around it is not a pause (nor anywhere else in the three records)."""
    from edge.dsp.qrs import ecg_peaks_and_artefacts
    from edge.dsp.rhythm import intervals_clear

    for name in RECORDS:
        rec = load_record(name)
        peaks, artefacts = ecg_peaks_and_artefacts(rec.signal_mv, rec.fs)
        clear = intervals_clear(peaks, artefacts)
        assert _kind(rhythm_episodes(peaks / rec.fs, clear), "pause") == [], name
        if name == "101":
            assert artefacts.size >= 2 and _kind(rhythm_episodes(peaks / rec.fs), "pause") != []


def test_intervals_clear() -> None:
    from edge.dsp.rhythm import intervals_clear

    assert intervals_clear([10, 20, 30, 40], [25, 40]).tolist() == [True, True, False, True]
    assert intervals_clear([], [1]).size == 0
