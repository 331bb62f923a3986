"""Pure parts of the portal's reads: overview state, bucket choice, histogram bins, strip beats."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pathlib import Path

import numpy as np
import wfdb

from server.api.strips import strip_beats
from server.queries import Phases, patient_state
from server.settings import ServerSettings
from server.trends import MAX_POINTS, fill_bins, series_bucket

MITDB = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ecg" / "mitdb"
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def test_overview_state_precedence() -> None:
    recent, old = NOW - timedelta(minutes=2), NOW - timedelta(days=30)
    assert patient_state("red", None, None, NOW) == "red"  # an alert outranks a silent phone
    assert patient_state("yellow", recent, old, NOW) == "yellow"
    assert patient_state("ok", None, None, NOW) == "no_signal"
    assert patient_state("ok", NOW - timedelta(minutes=11), old, NOW) == "no_signal"
    assert patient_state("ok", recent, NOW - timedelta(days=3), NOW) == "baseline"
    assert patient_state("ok", recent, old, NOW) == "ok"
    assert patient_state("ok", recent, old, NOW, monitoring=False) == "paused"  # consent withdrawn
    assert patient_state("red", recent, old, NOW, monitoring=False) == "red"


def test_overview_phases_follow_the_settings() -> None:
    """A deployment's no-signal time and baseline length change the overview as they change the alerts."""
    settings = ServerSettings(no_signal_after_seconds=60, no_signal_red_after_seconds=600, baseline_days=14)
    phases = Phases.from_settings(settings)
    assert phases == Phases(timedelta(minutes=1), timedelta(days=14))
    assert Phases() == Phases.from_settings(ServerSettings())  # the defaults agree
    two_minutes_ago, ten_days_ago = NOW - timedelta(minutes=2), NOW - timedelta(days=10)
    assert patient_state("ok", two_minutes_ago, NOW - timedelta(days=30), NOW) == "ok"
    assert patient_state("ok", two_minutes_ago, NOW - timedelta(days=30), NOW, phases=phases) == "no_signal"
    assert patient_state("ok", NOW, ten_days_ago, NOW) == "ok"
    assert patient_state("ok", NOW, ten_days_ago, NOW, phases=phases) == "baseline"


def test_series_bucket_keeps_charts_small() -> None:
    assert series_bucket(3600) == 60
    assert series_bucket(6 * 3600) == 60
    assert series_bucket(7 * 86400) == 900
    assert series_bucket(30 * 86400) == 3600
    assert series_bucket(5 * 365 * 86400) == 86400
    for span in (1e3, 1e5, 1e6, 1e7):
        assert span / series_bucket(span) <= MAX_POINTS


def test_fill_bins_makes_contiguous_edges() -> None:
    assert fill_bins([], 2.0) == ([], [])
    assert fill_bins([(60.0, 3), (66.0, 1)], 2.0) == ([60.0, 62.0, 64.0, 66.0, 68.0], [3, 0, 0, 1])


def test_strip_beats_match_the_annotated_beats_of_a_real_record() -> None:
    """MIT-BIH record 100, first 30 s: every annotated beat is found within 50 ms, nothing else."""
    record = wfdb.rdrecord(str(MITDB / "100"), sampto=30 * 360, channels=[0])
    notes = wfdb.rdann(str(MITDB / "100"), "atr", sampto=30 * 360)
    truth = np.array([s for s, sym in zip(notes.sample, notes.symbol) if sym in BEAT_SYMBOLS])
    found = np.array(strip_beats([int(round(v * 1000)) for v in record.p_signal[:, 0]], record.fs))
    assert len(found) == len(truth)
    assert np.max(np.abs(found - truth)) / record.fs < 0.05
