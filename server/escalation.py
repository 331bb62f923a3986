"""Time-driven alert work: no-signal alerts, escalation of unacknowledged red, promotion of persisting yellow.

:func:`plan` is pure: it takes the alerts and data times as views plus ``now``
(s since epoch, the server clock read at the edge) and returns the
:class:`Step` s due. :func:`apply_step` carries one out in the database under
the patient's rule-state lock (the same lock the ingest takes), re-checking in
SQL, so any number of loops on any number of servers do each step once.
:func:`run_escalation` is the thin loop around them, which also delivers red alerts to
the configured channels (:mod:`server.channels`) and alerts to caregivers
(:mod:`server.caregiver_notify`), pushes each phone's retained config when it
changes (:mod:`server.phone_config`: approved limits, medication plan, location
consent), raises the alerts of critical drugs missed repeatedly
(:mod:`server.dose_alerts`) and stores baseline proposals when a patient's
initial phase is complete. Patients whose monitoring is paused (consent
withdrawn) get no no-signal alerts.

The ladder (times from :class:`EscalationPolicy`):

- no data for ``no_signal_after_s``: a yellow ``no_signal`` alert, which the
  patient's phone shows first; still none after ``no_signal_red_after_s``: it
  turns red and reaches the clinicians. Data arriving resolves it.
- red and not acknowledged ``escalate_after_s`` after it turned red: step 1,
  the patient's second contact (care assignment rank 2); after
  ``all_on_call_after_s``: step 2, every on-call clinician.
- yellow and not acknowledged for ``promote_after_s``: promoted to red. This is
  also how a yellow ``dose:<drug>`` alert (the patient's phone first) reaches
  the clinicians.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import paho.mqtt.client as mqtt
import psycopg
from psycopg.types.json import Jsonb

from server import caregiver_notify, channels, dose_alerts, phone_config, records, thresholds
from server.alerting import NO_SIGNAL
from server.baseline import BaselinePolicy
from server.channels import ChannelSettings
from server.notify import Notifier, downlink_client, publish_config
from server.records import AlertChange
from server.rules import AlertAction

log = logging.getLogger(__name__)

StepKind = Literal["no_signal", "no_signal_red", "promote", "escalate_contact"]
STEP_NAMES = {0: "first contacts", 1: "second contact", 2: "all on-call clinicians"}
LAST_STEP = 2


@dataclass(frozen=True)
class EscalationPolicy:
    """Timings of the ladder, in seconds (all > 0)."""

    no_signal_after_s: float = 600.0
    no_signal_red_after_s: float = 1800.0
    escalate_after_s: float = 300.0
    all_on_call_after_s: float = 600.0
    promote_after_s: float = 1800.0
    tick_s: float = 1.0  # longest sleep between rounds; alert and threshold NOTIFYs wake the loop at once
    propose_every_s: float = 600.0  # how often to look for patients whose initial phase is complete
    dose_check_every_s: float = 60.0  # how often to look for critical drugs missed repeatedly
    critical_missed_doses: int = 2  # consecutive doses of a critical drug not taken that raise a yellow alert

    @classmethod
    def from_settings(cls, settings: Any) -> EscalationPolicy:
        """The ladder a deployment configured (``ServerSettings.no_signal_after_seconds`` and the rest)."""
        return cls(
            no_signal_after_s=settings.no_signal_after_seconds,
            no_signal_red_after_s=settings.no_signal_red_after_seconds,
            escalate_after_s=settings.escalate_after_seconds,
            all_on_call_after_s=settings.escalate_all_after_seconds,
            promote_after_s=settings.promote_yellow_after_seconds,
        )


@dataclass(frozen=True)
class AlertView:
    """An unresolved alert as the planner sees it (times in s since epoch)."""

    id: int
    patient_id: int
    parameter: str
    level: str
    state: str  # open, acknowledged
    opened_at: float
    red_since: float | None  # when it turned red
    escalation_step: int


@dataclass(frozen=True)
class SignalView:
    """When a patient's data last arrived and whether that gap was already alerted."""

    patient_id: int
    last_data_at: float | None
    gap_alerted: bool  # a no-signal alert of this gap exists (active or resolved by hand)


@dataclass(frozen=True)
class Step:
    """One thing the loop must do now."""

    kind: StepKind
    patient_id: int
    alert_id: int | None
    time: float
    detail: dict[str, Any]


def plan(alerts: list[AlertView], signals: list[SignalView], now: float, policy: EscalationPolicy) -> list[Step]:
    """The steps due at ``now`` (pure)."""
    steps = [s for v in signals if (s := _no_signal(v, now, policy)) is not None]
    for a in alerts:
        if a.parameter == NO_SIGNAL and a.level == "yellow":
            gap = _gap(signals, a.patient_id, now)
            if gap is not None and gap >= policy.no_signal_red_after_s:
                steps.append(Step("no_signal_red", a.patient_id, a.id, now, {"silent_s": round(gap, 1)}))
        elif a.state == "open" and a.level == "yellow" and now - a.opened_at >= policy.promote_after_s:
            steps.append(Step("promote", a.patient_id, a.id, now, {"yellow_s": round(now - a.opened_at, 1)}))
        elif a.state == "open" and a.level == "red" and a.red_since is not None:
            step = _due_step(now - a.red_since, policy)
            if step > a.escalation_step:
                steps.append(Step("escalate_contact", a.patient_id, a.id, now,
                                  {"step": step, "to": STEP_NAMES[step], "unacked_s": round(now - a.red_since, 1)}))
    return steps


def _gap(signals: list[SignalView], patient_id: int, now: float) -> float | None:
    for v in signals:
        if v.patient_id == patient_id and v.last_data_at is not None:
            return now - v.last_data_at
    return None


def _no_signal(v: SignalView, now: float, policy: EscalationPolicy) -> Step | None:
    if v.last_data_at is None or v.gap_alerted or now - v.last_data_at < policy.no_signal_after_s:
        return None
    return Step("no_signal", v.patient_id, None, now, {"last_data_at": v.last_data_at,
                                                        "silent_s": round(now - v.last_data_at, 1)})


def _due_step(unacked_s: float, policy: EscalationPolicy) -> int:
    if unacked_s >= policy.all_on_call_after_s:
        return LAST_STEP
    return 1 if unacked_s >= policy.escalate_after_s else 0


ALERT_VIEWS = (
    "SELECT id, patient_id, parameter, level, state, extract(epoch FROM opened_at)::float8,"
    " CASE WHEN level = 'red' THEN extract(epoch FROM coalesce(escalated_at, opened_at))::float8 END,"
    " escalation_step FROM alerts WHERE state <> 'resolved' ORDER BY id"
)
# Patients whose monitoring is paused (consent withdrawn) send nothing on purpose: no no-signal alert.
SIGNAL_VIEWS = (
    "SELECT p.id, extract(epoch FROM p.last_data_at)::float8, EXISTS (SELECT 1 FROM alerts a"
    " WHERE a.patient_id = p.id AND a.parameter = %s AND a.opened_at >= p.last_data_at)"
    " FROM patients p WHERE p.last_data_at IS NOT NULL AND pisces_consented(p.id, 'monitoring') ORDER BY p.id"
)


def load_views(conn: psycopg.Connection[Any]) -> tuple[list[AlertView], list[SignalView]]:
    """The unresolved alerts and every patient's data time, for :func:`plan`."""
    alerts = [AlertView(*row) for row in conn.execute(ALERT_VIEWS).fetchall()]
    signals = [SignalView(*row) for row in conn.execute(SIGNAL_VIEWS, (NO_SIGNAL,)).fetchall()]
    return alerts, signals


def apply_step(conn: psycopg.Connection[Any], step: Step) -> list[AlertChange]:
    """Carry out one step once (re-checked under the patient's rule-state lock); return the changes."""
    with conn.transaction():
        records.lock_rule_state(conn, step.patient_id)
        changes = _APPLY[step.kind](conn, step)
        for change in changes:
            conn.execute(
                "INSERT INTO alert_history (alert_id, kind, detail) VALUES (%s, %s, %s)",
                (change.alert_id, step.kind, Jsonb(step.detail)),
            )
    return changes


def _open_no_signal(conn: psycopg.Connection[Any], step: Step) -> list[AlertChange]:
    row = conn.execute("SELECT extract(epoch FROM last_data_at)::float8 FROM patients WHERE id = %s",
                       (step.patient_id,)).fetchone()  # fmt: skip
    if row is None or row[0] != step.detail["last_data_at"] or NO_SIGNAL in records.active_levels(conn, step.patient_id):
        return []  # data arrived meanwhile, or another loop was first
    trigger = {"source": "no signal", **step.detail}
    version = thresholds.limits_in_force(conn, step.patient_id).version  # recorded on the alert
    return records.apply_actions(conn, step.patient_id, [AlertAction("open", NO_SIGNAL, "yellow", step.time, trigger)],
                                 version)  # fmt: skip


def _to_red(conn: psycopg.Connection[Any], step: Step) -> list[AlertChange]:
    row = conn.execute("SELECT parameter, level, state FROM alerts WHERE id = %s", (step.alert_id,)).fetchone()
    if row is None or row[1] != "yellow" or row[2] == "resolved" or (step.kind == "promote" and row[2] != "open"):
        return []
    trigger = {"source": "promotion", "reason": step.kind, **step.detail}
    return records.apply_actions(conn, step.patient_id, [AlertAction("escalate", row[0], "red", step.time, trigger)])


def _next_contact(conn: psycopg.Connection[Any], step: Step) -> list[AlertChange]:
    to = int(step.detail["step"])
    row = conn.execute(
        "UPDATE alerts SET escalation_step = %s WHERE id = %s AND state = 'open' AND escalation_step < %s"
        " RETURNING parameter, level",
        (to, step.alert_id, to),
    ).fetchone()
    if row is None or step.alert_id is None:
        return []
    conn.execute("SELECT pg_notify(%s, %s)", (records.ALERT_CHANNEL, str(step.alert_id)))
    return [AlertChange(step.alert_id, "escalate_contact", row[1], row[0], step.time, dict(step.detail))]


_APPLY = {"no_signal": _open_no_signal, "no_signal_red": _to_red, "promote": _to_red,
          "escalate_contact": _next_contact}  # fmt: skip


THRESHOLD_CHANNEL = phone_config.CONFIG_CHANNEL  # NOTIFY of approvals, plan versions and location consent


@dataclass
class Watch:
    """The loop's running totals (read by health checks and tests)."""

    rounds: int = 0
    steps: int = 0
    phone_notices: int = 0
    deliveries: int = 0
    delivery_failures: int = 0
    configs_pushed: int = 0
    proposals: int = 0
    dose_alerts: int = 0
    errors: int = 0
    last_proposal_check: float = field(default=0.0, repr=False)
    last_dose_check: float = field(default=0.0, repr=False)


def run_round(conn: psycopg.Connection[Any], client: mqtt.Client, now: float, policy: EscalationPolicy,
              channel_settings: ChannelSettings, baseline: BaselinePolicy, watch: Watch) -> None:  # fmt: skip
    """One round at ``now``: due steps, phone notices, channel deliveries, config pushes, dose alerts, proposals."""
    alerts, signals = load_views(conn)
    devices = dict(conn.execute("SELECT id, device_id FROM patients").fetchall())
    notifier = Notifier(client)
    for step in plan(alerts, signals, now, policy):
        changes = apply_step(conn, step)
        watch.steps += bool(changes)
        watch.phone_notices += notifier.send(devices[step.patient_id], changes)
    claims = channels.claim_due(conn, channel_settings.portal_url)
    for claim in claims + caregiver_notify.claim_due(conn, now, channel_settings.portal_url):
        error = channels.send(claim, channel_settings)
        channels.record_result(conn, claim, error)
        watch.deliveries += error is None
        watch.delivery_failures += error is not None
    for due in phone_config.due_configs(conn, now):
        if publish_config(client, due.config):
            phone_config.mark_pushed(conn, due, now)
            watch.configs_pushed += 1
    if now - watch.last_dose_check >= policy.dose_check_every_s:
        watch.last_dose_check = now
        for patient_id, changes in dose_alerts.check_doses(conn, now, policy.critical_missed_doses):
            watch.dose_alerts += len(changes)
            watch.phone_notices += notifier.send(devices[patient_id], changes)
    if now - watch.last_proposal_check >= policy.propose_every_s:
        watch.last_proposal_check = now
        watch.proposals += propose_when_ready(conn, now, baseline)
    watch.rounds += 1


def propose_when_ready(conn: psycopg.Connection[Any], now: float, policy: BaselinePolicy) -> int:
    """Store a proposal for each patient whose initial phase is complete and who has none yet."""
    rows = conn.execute(
        "SELECT p.id FROM patients p WHERE NOT EXISTS (SELECT 1 FROM threshold_versions t WHERE t.patient_id = p.id)"
        " AND (SELECT min(start_at) FROM summaries s WHERE s.patient_id = p.id) <= %s",
        (records.ts(now - policy.days * 86_400.0),),
    ).fetchall()
    made = 0
    for (patient_id,) in rows:
        with conn.transaction():
            if thresholds.status(conn, patient_id, now, policy).phase == "ready":
                thresholds.propose(conn, patient_id, policy)
                made += 1
    return made


def run_escalation(settings: Any, stop: threading.Event, policy: EscalationPolicy | None = None,
                   channel_settings: ChannelSettings | None = None, baseline: BaselinePolicy | None = None,
                   watch: Watch | None = None) -> Watch:  # fmt: skip
    """Run rounds until ``stop`` is set; survives database and broker outages (retries, logs).

    Args:
        settings: ``server.settings.ServerSettings`` (database_url, mqtt_url, mqtt_client_id).
        stop: set it to end the loop (within ``policy.tick_s``).
        policy, channel_settings, baseline: from ``settings`` when None (channels read ``PISCES_ALERT_*``).
        watch: counters to update (a fresh one when None); also returned.
    """
    policy, watch = policy or EscalationPolicy.from_settings(settings), watch or Watch()
    channel_settings = channel_settings or ChannelSettings()
    baseline = baseline or BaselinePolicy.from_settings(settings)
    client = downlink_client(settings, f"{settings.mqtt_client_id}-escalation")
    client.loop_start()
    try:
        while not stop.is_set():
            try:
                with psycopg.connect(settings.database_url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {records.ALERT_CHANNEL}")
                    conn.execute(f"LISTEN {THRESHOLD_CHANNEL}")
                    while not stop.is_set():
                        run_round(conn, client, time.time(), policy, channel_settings, baseline, watch)
                        for _ in conn.notifies(timeout=policy.tick_s, stop_after=1):
                            pass
            except psycopg.Error as exc:
                watch.errors += 1
                log.warning("escalation round failed (%s); retrying", exc)
                stop.wait(min(5.0, policy.tick_s * 5))
    finally:
        client.disconnect()
        client.loop_stop()
    return watch
