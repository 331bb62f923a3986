"""Threshold versions on the real database: proposals from the baseline, approval, history, burden."""

from __future__ import annotations

import psycopg
import pytest

from server import records, thresholds
from server.baseline import BaselinePolicy
from server.store import add_patient, add_user
from server.thresholds import ThresholdError
from wire import Limits, Summary, SummaryWindow

T0 = 1_700_000_000.0
POLICY = BaselinePolicy(days=1, min_good_hours=2, min_context_hours=1)


@pytest.fixture
def world(db_url: str, device_id: str) -> tuple[int, int]:
    with psycopg.connect(db_url) as conn:
        return add_patient(conn, f"P {device_id}", device_id), add_user(conn, f"dr-{device_id}", "pw-123456789")


def store_windows(db_url: str, patient: int, device: str, hours: float, hr: float) -> None:
    """Store an hour's windows per message through the ingest's own write path."""
    with psycopg.connect(db_url) as conn:
        for seq, hour in enumerate(range(int(hours))):
            msg = Summary(device, seq, tuple(
                SummaryWindow(start=T0 + 3600 * hour + 60 * i, end=T0 + 3600 * hour + 60 * (i + 1), beats=60,
                              hr_mean=hr + (i % 5) - 2, activity="rest", quality=0.9)
                for i in range(60)))  # fmt: skip
            records.ensure_partitions(conn, records.summary_days(msg))
            records.store_summaries(conn, [(patient, msg)])


def test_a_proposal_comes_from_the_stored_baseline(db_url: str, device_id: str, world: tuple[int, int]) -> None:
    patient, _ = world
    store_windows(db_url, patient, device_id, hours=3, hr=95)
    with psycopg.connect(db_url) as conn:
        assert thresholds.status(conn, patient, T0 + 3600, POLICY).phase == "collecting"
        assert thresholds.status(conn, patient, T0 + 86400 + 1, POLICY).phase == "ready"
        row_id, proposal = thresholds.propose(conn, patient, POLICY)
        stored = thresholds.get_version(conn, row_id)
    assert stored is not None and stored.status == "proposed" and stored.version is None
    assert stored.limits["hr@rest"]["yellow_high"] == proposal.limits["hr@rest"].yellow_high > 100
    assert stored.baseline["stats"]["hr@rest"]["windows"] == 180


def test_approval_makes_versions_in_order_and_keeps_who_when_why(db_url: str, world: tuple[int, int]) -> None:
    patient, user = world
    with psycopg.connect(db_url) as conn:
        assert thresholds.limits_in_force(conn, patient).version is None
        thresholds.approve(conn, patient, user, {"hr@rest": Limits(40, 100, 35, 131)}, "first look")
        thresholds.approve(conn, patient, user, {"hr@rest": Limits(40, 105, 35, 131)}, "too many yellows at 100")
        in_force = thresholds.limits_in_force(conn, patient)
        versions = thresholds.list_versions(conn, patient)
    assert in_force.version == 2 and in_force.limits["hr@rest"].yellow_high == 105
    assert [(v.version, v.status, v.reason) for v in versions] == [
        (2, "approved", "too many yellows at 100"), (1, "superseded", "first look")]  # fmt: skip
    assert versions[0].approved_by == versions[0].created_by and versions[0].approved_at is not None


def test_limits_laxer_than_the_hard_limits_or_without_a_reason_are_refused(db_url: str, world: tuple[int, int]) -> None:
    patient, user = world
    with psycopg.connect(db_url) as conn:
        with pytest.raises(ThresholdError) as refused:
            thresholds.approve(conn, patient, user, {"hr": Limits(40, 100, 20, 200)}, " ")
        assert len(refused.value.problems) == 3
        assert thresholds.list_versions(conn, patient) == []
