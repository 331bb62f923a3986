"""The report's alerts section: every alert active in the period, its outcome, and who did what.

All alerts are counted, by parameter and level (:class:`AlertGroup`). Listed
one by one are those that matter at a visit: every red alert and every alert a
person acted on (acknowledged, noted, resolved by hand), at most
:data:`MAX_LISTED` (red first, then the newest); the others, typically yellow
alerts the rules resolved by themselves, appear in their group only.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from server.consent import PAUSED_KIND
from server.queries import AlertRow, HistoryEntry
from server.report.inputs import ReportData

MAX_LISTED = 20
ESCALATION_KINDS = ("escalate_contact", "promote", "no_signal_red")


@dataclass(frozen=True)
class AlertNote:
    """A note a person added to an alert."""

    at: datetime
    by: str | None
    note: str


@dataclass(frozen=True)
class ReportAlert:
    """An alert and its outcome: who acknowledged it and how fast, who resolved it (or the rules), notes."""

    id: int
    level: str
    parameter: str
    state: str
    opened_at: datetime
    escalated_at: datetime | None
    closed_at: datetime | None
    value: float | None  # what the rule judged (bpm, /min, s); None for panic and no-signal alerts
    acked_by: str | None
    acked_at: datetime | None
    ack_note: str | None
    seconds_to_ack: float | None
    resolved_by: str | None
    resolved_by_rules: bool  # closed by the rules (back within limits, data again)
    closed_by_pause: bool  # closed because the patient withdrew consent to monitoring (not the rules)
    resolve_note: str | None
    escalation_steps: int
    notes: list[AlertNote]

    @property
    def touched(self) -> bool:
        """A person acknowledged it, added a note or resolved it."""
        return self.acked_at is not None or bool(self.notes) or self.resolved_by is not None


@dataclass(frozen=True)
class AlertGroup:
    """The alerts of one parameter and level: how many, and what became of them."""

    parameter: str
    level: str
    alerts: int
    acknowledged: int
    median_seconds_to_ack: float | None
    resolved_by_rules: int
    resolved_by_person: int
    closed_by_pause: int  # closed because monitoring was paused (consent withdrawn)
    active: int


@dataclass(frozen=True)
class AlertsBody:
    """The period's alerts: groups of all of them, the listed ones oldest first, and totals.

    ``median_seconds_to_ack`` is over the acknowledged alerts; ``not_listed``
    counts the alerts that appear in their group only.
    """

    groups: list[AlertGroup]
    alerts: list[ReportAlert]
    not_listed: int
    total: int
    red: int
    acknowledged: int
    never_acknowledged: int
    active: int
    median_seconds_to_ack: float | None
    more: bool = False  # the period has more alerts than the report read: the figures cover those read


def report_alert(a: AlertRow, history: list[HistoryEntry]) -> ReportAlert:
    """One alert with its time to acknowledge, notes and escalation steps."""
    value = a.trigger.get("value")
    to_ack = None if a.acked_at is None else round((a.acked_at - a.opened_at).total_seconds(), 1)
    notes = [AlertNote(h.at, h.by, str(h.detail.get("note", ""))) for h in history if h.kind == "note"]
    paused = a.state == "resolved" and a.resolved_by is None and any(h.kind == PAUSED_KIND for h in history)
    return ReportAlert(
        a.id, a.level, a.parameter, a.state, a.opened_at, a.escalated_at, a.closed_at,
        float(value) if isinstance(value, (int, float)) else None, a.acked_by, a.acked_at, a.ack_note, to_ack,
        a.resolved_by, a.state == "resolved" and a.resolved_by is None and not paused, paused, a.resolve_note,
        sum(h.kind in ESCALATION_KINDS for h in history), notes,
    )  # fmt: skip


def _median_wait(alerts: Sequence[ReportAlert]) -> float | None:
    waits = [a.seconds_to_ack for a in alerts if a.seconds_to_ack is not None]
    return round(statistics.median(waits), 1) if waits else None


def alert_groups(alerts: Sequence[ReportAlert]) -> list[AlertGroup]:
    """Alerts by parameter and level: red groups first, then the largest."""
    keys = sorted({(a.parameter, a.level) for a in alerts})
    groups = []
    for parameter, level in keys:
        of = [a for a in alerts if (a.parameter, a.level) == (parameter, level)]
        groups.append(AlertGroup(
            parameter, level, len(of), sum(a.acked_at is not None for a in of), _median_wait(of),
            sum(a.resolved_by_rules for a in of), sum(a.resolved_by is not None for a in of),
            sum(a.closed_by_pause for a in of), sum(a.state != "resolved" for a in of),
        ))  # fmt: skip
    return sorted(groups, key=lambda g: (g.level != "red", -g.alerts, g.parameter))


def listed(alerts: Sequence[ReportAlert]) -> list[ReportAlert]:
    """The red alerts and those a person acted on, at most MAX_LISTED (red first, then newest), oldest first."""
    chosen = [a for a in alerts if a.level == "red" or a.touched]
    chosen = sorted(chosen, key=lambda a: (a.level != "red", -a.opened_at.timestamp()))[:MAX_LISTED]
    return sorted(chosen, key=lambda a: (a.opened_at, a.id))


def alerts_section(data: ReportData) -> tuple[str, AlertsBody]:
    """Every alert active in the period, in groups, the ones that matter one by one, with outcome figures."""
    items = [report_alert(a, data.notes.get(a.id, [])) for a in sorted(data.alerts, key=lambda a: (a.opened_at, a.id))]
    shown = listed(items)
    acked = sum(a.acked_at is not None for a in items)
    body = AlertsBody(
        alert_groups(items), shown, len(items) - len(shown), len(items), sum(a.level == "red" for a in items),
        acked, len(items) - acked, sum(a.state != "resolved" for a in items), _median_wait(items), data.alerts_more,
    )  # fmt: skip
    return _alerts_headline(body), body


def duration_text(seconds: float) -> str:
    """A duration as a person says it: 45 s, 12 min, 4 h 10 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest} min"


def _alerts_headline(b: AlertsBody) -> str:
    if not b.total:
        return "No alerts in this period."
    text = f"{b.total}{'+' if b.more else ''} alert{'s' if b.total != 1 else ''} ({b.red} red, {b.total - b.red} yellow)"
    text += f"; {b.acknowledged} acknowledged"
    if b.median_seconds_to_ack is not None:
        text += f", median {duration_text(b.median_seconds_to_ack)} to acknowledge"
    if b.active:
        text += f"; {b.active} still active"
    return text + "."
