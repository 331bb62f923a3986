"""The status the patient sees, as one JSON-ready dict built from the agent's state (pure read)."""

from __future__ import annotations

from typing import Any

from edge.agent import OPEN_PERIOD, EdgeAgent
from edge.reminders import Reminder


def status_of(agent: EdgeAgent) -> dict[str, Any]:
    """Connection, strap, battery, last upload, current HR, problems counted, open period, notifications,
    the dose reminders to show now and the next planned dose (times in s since epoch)."""
    health = getattr(agent.source, "health", None)
    uplink = agent.uplink
    stats = agent.outbox.stats()
    v = agent.vitals
    now = agent.clock()
    upcoming = agent.doses.next_dose(now)
    problems = {k: n for k, n in agent.report.counters.items() if n}
    if health is not None:
        counted = ("drops", "failures", "pmd_refused", "pmd_stop_refused", "pmd_stop_unanswered")
        problems.update({f"strap_{k}": getattr(health, k) for k in counted})
    if uplink is not None:
        problems.update({k: uplink.counters[k] for k in ("connect_failures", "refused_login", "puback_errors")})
    problems["outbox_dropped"] = stats.dropped
    problems["outbox_held"] = agent.held_writes  # refused by a full disk, waiting in memory
    return {
        "device": agent.device_id,
        "online": agent.online,
        "uplink_error": uplink.last_error if uplink is not None else "",
        "strap": health.state if health is not None else ("streaming" if v.last_time else "waiting"),
        "strap_error": health.last_error if health is not None else "",
        "battery": v.battery,
        "hr": v.hr,
        "hr_time": v.hr_time,
        "contact": v.contact,
        "last_upload": uplink.last_ack_time if uplink is not None else None,
        "pending": sum(stats.pending.values()),
        "pending_bytes": stats.pending_bytes,
        "open_period": agent.outbox.get_state(OPEN_PERIOD),
        "doses": [_reminder(r) for r in agent.doses.showing(now)],
        "next_dose": None if upcoming is None else {
            "drug": upcoming.drug, "dose": upcoming.dose, "planned": upcoming.planned,
            "instructions": upcoming.instructions},
        "problems": {k: n for k, n in problems.items() if n},
        "notifications": [
            {"time": n.time, "level": n.level.value, "title": n.title, "body": n.body}
            for n in reversed(agent.notifications)
        ],
    }


def _reminder(r: Reminder) -> dict[str, Any]:
    return {"drug": r.drug, "dose": r.dose, "planned": r.planned, "instructions": r.instructions,
            "state": r.state, "closes_at": r.closes_at, "late": r.on_time_until}
