"""Repeated missed doses of a critical drug: a yellow alert for the patient, which the ladder takes to clinicians.

A drug marked ``critical`` in the plan in force whose newest ``min_missed``
answered doses were all **not taken** (``missed`` or ``skipped``, as the
patient's phone recorded them: see :mod:`server.adherence`) opens a yellow
alert with parameter ``dose:<drug>``. ``unconfirmed`` doses are passed over,
like pending ones: they say the phone was silent, which is the no-signal
alarm's business, and the patient may well have taken them; telling the
patient "you did not take it" would be a guess.
Like every yellow alert it goes to the patient's phone first, and the
escalation ladder promotes it to red, to the clinicians, when nobody
acknowledges it for ``promote_after_s`` (:mod:`server.escalation`). The next
dose taken resolves it, as does the drug leaving the plan or losing its mark.

:func:`dose_actions` is pure (the rule); :func:`check_doses` runs it for every
patient concerned, under the patient's rule-state lock (the lock the ingest and
the ladder take), re-reading the active alerts there, so several loops open
each alert once. The alerts go through :func:`server.records.apply_actions`:
alert rows, history and ``NOTIFY`` as for any rule alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from server import adherence, medication, records
from server.adherence import DoseOutcome
from server.records import AlertChange
from server.rules import AlertAction
from wire.medication import DOSE_PARAMETER_PREFIX

PREFIX = DOSE_PARAMETER_PREFIX  # alert parameter of a drug: "dose:<drug name>"
NO_LONGER_CRITICAL = "no longer a critical drug of the plan"  # resolve reason: the plan changed, not a dose
PASSED_OVER = frozenset({"pending", "unconfirmed"})  # neither extend nor end a run of doses not taken
LOOKBACK_S = 14 * 86_400.0  # the doses read to find the newest run (a weekly drug's last two doses)


def parameter_of(drug: str) -> str:
    """The alert parameter of a drug's missed doses."""
    return PREFIX + drug


def dose_actions(
    doses: Sequence[DoseOutcome], critical: set[str], active: Mapping[str, str], now: float, min_missed: int
) -> list[AlertAction]:
    """The alert actions at ``now`` for one patient (pure).

    Args:
        doses: the patient's dose outcomes over the lookback, any order.
        critical: names of the drugs marked critical in the plan in force.
        active: ``parameter -> level`` of the patient's unresolved alerts.
        now: s since epoch.
        min_missed: how many consecutive doses not taken open an alert (>= 1).
    """
    actions = []
    for drug in sorted(critical):
        param, answered = parameter_of(drug), _answered(doses, drug)
        run = _not_taken_run(answered)
        if param not in active and len(run) >= min_missed:
            trigger = {"source": "medication", "drug": drug, "not_taken": len(run), "min_missed": min_missed,
                       "doses": [{"planned": d.planned, "status": d.status} for d in run]}  # fmt: skip
            actions.append(AlertAction("open", param, "yellow", now, trigger))
        elif param in active and answered and not run:
            trigger = {"source": "medication", "drug": drug, "reason": "a dose was taken"}
            actions.append(AlertAction("resolve", param, active[param], now, trigger))
    for param, level in sorted(active.items()):
        if param.startswith(PREFIX) and param[len(PREFIX):] not in critical:
            actions.append(AlertAction("resolve", param, level, now,
                                       {"source": "medication", "reason": NO_LONGER_CRITICAL}))  # fmt: skip
    return actions


def _answered(doses: Sequence[DoseOutcome], drug: str) -> list[DoseOutcome]:
    """The drug's doses the phone answered (taken, skipped or missed), by planned time."""
    return sorted((d for d in doses if d.drug == drug and d.status not in PASSED_OVER), key=lambda d: d.planned)


def _not_taken_run(answered: list[DoseOutcome]) -> list[DoseOutcome]:
    """The newest answered doses that were all not taken (missed or skipped), oldest first."""
    run: list[DoseOutcome] = []
    for d in reversed(answered):
        if d.status not in ("missed", "skipped"):
            break
        run.insert(0, d)
    return run


def _concerned(conn: psycopg.Connection[Any]) -> list[int]:
    """Patients whose plan in force has a critical drug, or who have an active dose alert."""
    rows = conn.execute(
        "SELECT m.patient_id FROM medication_plans m WHERE m.version = (SELECT max(version) FROM medication_plans n"
        " WHERE n.patient_id = m.patient_id) AND m.drugs @> '[{\"critical\": true}]'"
        " UNION SELECT patient_id FROM alerts WHERE state <> 'resolved' AND parameter LIKE 'dose:%%' ORDER BY 1"
    ).fetchall()
    return [int(r[0]) for r in rows]


def check_doses(conn: psycopg.Connection[Any], now: float, min_missed: int) -> list[tuple[int, list[AlertChange]]]:
    """Open and resolve dose alerts of every patient concerned at ``now``; ``(patient, changes)`` where any."""
    made = []
    for patient_id in _concerned(conn):
        with conn.transaction():
            records.lock_rule_state(conn, patient_id)
            plan = medication.plan_in_force(conn, patient_id)
            critical = {d["name"] for d in plan.drugs if d.get("critical")} if plan is not None else set()
            doses = adherence.dose_history(conn, patient_id, now - LOOKBACK_S, now, now)
            active = records.active_levels(conn, patient_id)
            changes = records.apply_actions(conn, patient_id, dose_actions(doses, critical, active, now, min_missed))
            for change in changes:
                conn.execute("INSERT INTO alert_history (alert_id, kind, detail) VALUES (%s, %s, %s)",
                             (change.alert_id, f"dose_{change.kind}", Jsonb(change.trigger)))  # fmt: skip
        if changes:
            made.append((patient_id, changes))
    return made
