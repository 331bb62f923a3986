"""Alert actions carried out in bulk (``apply_actions_many``) against the real database.

The oracle is the plain definition, written here with one statement per
action: every action in turn, items in order. The bulk path must leave the same
alert rows, report the same changes and notify listeners in the same order.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from server.records import ALERT_CHANNEL, AlertChange, apply_actions, apply_actions_many, ts
from server.rules import AlertAction
from server.store import add_patient

pytestmark = pytest.mark.db

T0 = 1_763_900_000.0
PARAMETERS = ("hr", "resp_rate", "pause")


def _one_at_a_time(conn: psycopg.Connection[Any], patient: int, a: AlertAction, version: int | None) -> int | None:
    """The oracle: one action, one statement (and an escalate with nothing active opens)."""
    if a.kind == "resolve":
        row = conn.execute(
            "UPDATE alerts SET state = 'resolved', closed_at = %s, resolve_note = %s"
            " WHERE patient_id = %s AND parameter = %s AND state <> 'resolved' RETURNING id",
            (ts(a.time), a.trigger.get("reason", "back within limits"), patient, a.parameter),
        ).fetchone()
        return row[0] if row else None
    if a.kind == "escalate":
        row = conn.execute(
            "UPDATE alerts SET level = %s, state = 'open', escalated_at = %s,"
            " trigger = trigger || jsonb_build_object('escalation', %s::jsonb)"
            " WHERE patient_id = %s AND parameter = %s AND state <> 'resolved' RETURNING id",
            (a.level, ts(a.time), Jsonb(a.trigger), patient, a.parameter),
        ).fetchone()
        if row:
            return row[0]
    row = conn.execute(
        "INSERT INTO alerts (patient_id, level, parameter, opened_at, trigger, threshold_version)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (patient_id, parameter) WHERE state <> 'resolved'"
        " DO UPDATE SET level = EXCLUDED.level, state = 'open',"
        " threshold_version = COALESCE(EXCLUDED.threshold_version, alerts.threshold_version) RETURNING id",
        (patient, a.level, a.parameter, ts(a.time), Jsonb(a.trigger), version),
    ).fetchone()
    return row[0] if row else None


def _oracle(conn: psycopg.Connection[Any], work: list[tuple[int, list[AlertAction], int | None]]) -> list[list[AlertChange]]:
    made: list[list[AlertChange]] = []
    for patient, actions, version in work:
        made.append([])
        for a in actions:
            alert_id = _one_at_a_time(conn, patient, a, version)
            if alert_id is not None:
                conn.execute("SELECT pg_notify(%s, %s)", (ALERT_CHANNEL, str(alert_id)))
                made[-1].append(AlertChange(alert_id, a.kind, a.level, a.parameter, a.time, a.trigger))
    return made


def _random_work(rng: random.Random, patients: list[int]) -> list[tuple[int, list[AlertAction], int | None]]:
    """Items of 0-4 actions on a few patients and parameters: the same alert is opened, escalated,
    resolved and opened again within one call, and escalates and resolves find nothing active."""
    work = []
    t = T0
    for _ in range(40):
        actions = []
        for _ in range(rng.randint(0, 4)):
            t += rng.choice((0, 1, 10))
            kind = rng.choice(("open", "escalate", "resolve"))
            level = "red" if kind == "escalate" else rng.choice(("yellow", "red"))
            trigger: dict[str, Any] = {"value": rng.randint(30, 200), "window": [t - 10, t]}
            if kind == "resolve" and rng.random() < 0.5:
                trigger["reason"] = "data arrived"
            actions.append(AlertAction(kind, rng.choice(PARAMETERS), level, t, trigger))  # type: ignore[arg-type]
        work.append((rng.choice(patients), actions, rng.choice((None, 1, 2))))
    return work


def _rows(conn: psycopg.Connection[Any], patients: list[int]) -> list[tuple[Any, ...]]:
    """Each patient's alerts by patient rank, parameter and id (ids follow the actions' order for each
    parameter; across parameters a bulk call may number them otherwise)."""
    out = []
    for rank, patient in enumerate(patients):
        out += [(rank, *row) for row in conn.execute(
            "SELECT parameter, level, state, opened_at, escalated_at, closed_at, trigger, resolve_note,"
            " threshold_version FROM alerts WHERE patient_id = %s ORDER BY parameter, id", (patient,)).fetchall()]  # fmt: skip
    return out


def _by_rank(conn: psycopg.Connection[Any], patients: list[int]) -> dict[int, tuple[int, int]]:
    """Alert id -> (patient rank, rank among that patient's alerts by parameter and id)."""
    ranks = {}
    for rank, patient in enumerate(patients):
        ids = [r[0] for r in conn.execute("SELECT id FROM alerts WHERE patient_id = %s ORDER BY parameter, id",
                                                (patient,))]
        ranks |= {alert_id: (rank, i) for i, alert_id in enumerate(ids)}
    return ranks


def _patients(conn: psycopg.Connection[Any], n: int) -> list[int]:
    tag = uuid.uuid4().hex[:8]
    return [add_patient(conn, f"Alerts {tag} {i}", f"alerts-{tag}-{i}") for i in range(n)]


def _run(db_url: str, apply: Any, work: list[tuple[int, list[AlertAction], int | None]]) -> tuple[Any, list[str]]:
    """Apply ``work`` in one transaction; what it returned and the notifications listeners got."""
    with psycopg.connect(db_url, autocommit=True) as listener, psycopg.connect(db_url, autocommit=True) as conn:
        listener.execute(f"LISTEN {ALERT_CHANNEL}")
        with conn.transaction():
            made = apply(conn, work)
        mine = {str(c.alert_id) for changes in made for c in changes}
        heard = [n.payload for n in listener.notifies(timeout=0.5) if n.payload in mine]
    return made, heard


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_actions_in_bulk_do_what_each_action_in_turn_does(db_url: str, seed: int) -> None:
    rng = random.Random(seed)
    with psycopg.connect(db_url, autocommit=True) as conn:
        bulk, each = _patients(conn, 3), _patients(conn, 3)
    work = _random_work(rng, bulk)
    same = [(each[bulk.index(p)], actions, version) for p, actions, version in work]
    got, heard = _run(db_url, apply_actions_many, work)
    want, heard_want = _run(db_url, _oracle, same)
    with psycopg.connect(db_url) as conn:
        assert _rows(conn, bulk) == _rows(conn, each)
        got_ranks, want_ranks = _by_rank(conn, bulk), _by_rank(conn, each)
    assert len(got) == len(work)
    assert [[(got_ranks[c.alert_id], c.kind, c.level, c.parameter, c.time, c.trigger) for c in changes] for changes in got] == [
        [(want_ranks[c.alert_id], c.kind, c.level, c.parameter, c.time, c.trigger) for c in changes] for changes in want
    ]  # fmt: skip
    assert [got_ranks[int(n)] for n in heard] == [want_ranks[int(n)] for n in heard_want]
    assert sum(map(len, got)) > 20  # the draw made many changes (a resolve of nothing makes none)


def test_one_call_reopens_what_it_resolved_and_an_escalate_with_nothing_active_opens(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        (patient,) = _patients(conn, 1)
        actions = [
            AlertAction("open", "hr", "yellow", T0, {"value": 120}),
            AlertAction("escalate", "hr", "red", T0 + 60, {"value": 150}),
            AlertAction("resolve", "hr", "red", T0 + 120, {}),
            AlertAction("resolve", "hr", "red", T0 + 130, {}),  # nothing active: no change
            AlertAction("open", "hr", "yellow", T0 + 180, {"value": 121}),
            AlertAction("escalate", "pause", "red", T0 + 200, {"value": 3.5}),
        ]
        with conn.transaction():
            changes = apply_actions(conn, patient, actions, 7)
        rows = conn.execute("SELECT id, parameter, level, state, resolve_note, threshold_version,"
                            " trigger->'escalation'->>'value' FROM alerts WHERE patient_id = %s ORDER BY parameter, id",
                            (patient,)).fetchall()  # fmt: skip
    first, second, pause = (r[0] for r in rows)
    assert [(c.alert_id, c.kind) for c in changes] == [
        (first, "open"), (first, "escalate"), (first, "resolve"), (second, "open"), (pause, "escalate"),
    ]  # fmt: skip
    assert [r[1:] for r in rows] == [
        ("hr", "red", "resolved", "back within limits", 7, "150"),
        ("hr", "yellow", "open", None, 7, None),
        ("pause", "red", "open", None, 7, None),  # opened by the escalate: tagged as any alert it opens
    ]
