"""The seam between ingest and rules: judge one stored message and carry out what the rules decide.

:func:`judge` runs inside the ingest's transaction, after the message's rows
are written. It locks the patient's rule state (so N ingest workers take turns
per patient and each alert episode is opened once), loads the limits in force
(the newest approved version, else the defaults), runs the pure evaluator,
persists the state, and writes the alert rows with their trigger: the window,
the values, the limits and the threshold version in force. Arriving data also
closes an open ``no_signal`` alert.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg

from server import records, thresholds
from server.records import AlertChange
from server.rules import AlertAction, ParamState, RuleConfig, RuleState, evaluate_event, evaluate_windows, sync_levels
from wire import Event, Summary

NO_SIGNAL = "no_signal"


def judge(conn: psycopg.Connection[Any], patient_id: int, message: Summary | Event, config: RuleConfig) -> list[AlertChange]:
    """Evaluate a stored summary or event for the patient; return the alert changes made.

    Locks, loads and saves the patient's rule state itself; a caller that already
    holds the states of a batch uses :func:`judge_state` instead.

    Args:
        conn: the ingest's connection, inside the message's transaction.
        patient_id: whose message it is.
        message: a decoded ``wire.Summary`` or ``wire.Event``.
        config: timing and quality settings; its limits are replaced by those in force.
    """
    state = sync_levels(records.lock_rule_state(conn, patient_id), records.active_levels(conn, patient_id))
    state, changes = judge_state(conn, patient_id, state, message, config)
    records.save_rule_state(conn, patient_id, state)
    return changes


def judge_state(
    conn: psycopg.Connection[Any], patient_id: int, state: RuleState, message: Summary | Event, config: RuleConfig,
    in_force: thresholds.InForce | None = None,
) -> tuple[RuleState, list[AlertChange]]:  # fmt: skip
    """Judge one message from a locked, synced state; write the alert changes; return the next state.

    The caller holds the patient's rule-state row lock and saves the returned state.

    Args:
        in_force: the patient's limits in force if the caller already read them; else read here.
    """
    if in_force is None:
        in_force = thresholds.limits_in_force(conn, patient_id)
    if config.limits is not in_force.limits or config.version != in_force.version:
        config = replace(config, limits=in_force.limits, version=in_force.version)
    state, actions = rule_actions(state, message, config)
    changes = records.apply_actions(conn, patient_id, actions, in_force.version) if actions else []
    return state, changes


def rule_actions(state: RuleState, message: Summary | Event, config: RuleConfig) -> tuple[RuleState, list[AlertAction]]:
    """The next state and the alert actions of one message (pure: ``config`` carries the limits in force).

    The ingest judges a batch's messages so, in order, and carries out all their
    actions at once (:func:`server.records.apply_actions_many`).
    """
    if isinstance(message, Summary):
        before = state.param(NO_SIGNAL).level
        state, actions = evaluate_windows(state, message.windows, config)
        actions = signal_back(before, max(w.end for w in message.windows)) + actions
        if actions and actions[0].parameter == NO_SIGNAL:
            state = replace(state, params={**state.params, NO_SIGNAL: ParamState()})
        return state, actions
    where = (message.lat, message.lon) if message.lat is not None and message.lon is not None else None
    return evaluate_event(state, message.type.value, message.time, where)


def signal_back(no_signal_level: str, newest_end: float) -> list[AlertAction]:
    """A ``resolve`` of the active no-signal alert (its level given), since data arrived (pure)."""
    if no_signal_level == "ok":
        return []
    trigger = {"data_at": newest_end, "reason": "data arrived"}
    return [AlertAction("resolve", NO_SIGNAL, no_signal_level, newest_end, trigger)]
