"""One patient's data in every table that holds patient data, through the real write paths.

Used by the export, erasure and retention tests: summaries (and rollups), events,
a symptom period, a panic alert with a note, an ECG
strip, device status, a threshold version, a home location, a dead letter and an
audit row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg

from server import thresholds, weather
from server.ingest import handle_message, keep_dead_letter, rule_config
from server.settings import ServerSettings
from server import caregivers, consent, invitations
from server.store import (
    add_patient, add_user, assign_patient, audit, create_session, link_patient_account, session_user,
)
from wire import Event, EventType, Kind, Limits, Status, Strip, Summary, SummaryWindow, encode, topic_for

PASSWORD = "correct horse battery"
STRIP_SAMPLES = tuple(int(300 * ((i % 50) - 25) / 25) + (1200 if i % 50 == 0 else 0) for i in range(500))


@dataclass(frozen=True)
class Filled:
    """What :func:`fill_patient` made: ids, and the clinician who cares for the patient."""

    patient_id: int
    device_id: str
    name: str
    clinician: str
    clinician_id: int
    alert_id: int
    windows: int
    account: str  # the patient's own sign-in (username names her); "" without people
    account_id: int  # its user id (0 without people)
    caregiver_id: int  # the user id of a caregiver following her (0 without people)
    grant_id: int  # the caregiver's grant (caregivers.id)
    invitation_id: int  # an open caregiver invitation of hers


def fill_patient(conn: psycopg.Connection, t0: float, tag: str | None = None, windows: int = 12,
                 people: bool = True) -> Filled:  # fmt: skip
    """A patient with data starting at ``t0`` (s since epoch) in every patient table; ``conn`` autocommit.

    She consents to every purpose; with ``people`` she also has her own account, a caregiver
    following her (every scope, red alerts) and an open caregiver invitation.
    """
    tag = tag or secrets.token_hex(3)
    device, name, clinician = f"pd-{tag}", f"Petra {tag}", f"doc-{tag}"
    clinician_id = add_user(conn, clinician, PASSWORD)
    patient_id = add_patient(conn, name, device)
    assign_patient(conn, clinician, patient_id)
    config = rule_config(ServerSettings())
    seq = iter(range(1, 1_000_000))

    def send(msg: Summary | Event | Strip | Status) -> None:
        outcome = handle_message(conn, topic_for(device, msg.kind), encode(msg), config)
        assert outcome.status == "stored", outcome

    ws = tuple(SummaryWindow(start=t0 + 10 * i, end=t0 + 10 * (i + 1), beats=12, hr_mean=70.0 + i, hr_min=60.0,
                             hr_max=90.0, rr_mean=850.0, sdnn=40.0, rmssd=30.0, resp_rate=15.0, activity="rest",
                             quality=0.9, battery=80, lat=46.05, lon=14.5) for i in range(windows))  # fmt: skip
    send(Summary(device, next(seq), ws))
    send(Event(device, next(seq), EventType.SYMPTOM_START, t0 + 5, period="p1", tags=("palpitations",), severity=3,
               note="fluttering"))  # fmt: skip
    send(Event(device, next(seq), EventType.SYMPTOM_STOP, t0 + 60, period="p1"))
    send(Event(device, next(seq), EventType.PANIC, t0 + 70, lat=46.05, lon=14.5))
    send(Strip(device, next(seq), t0 + 40, 250.0, "panic", STRIP_SAMPLES, ref_seq=4))
    send(Status(device, next(seq), t0 + 100, online=True, sensor="connected", battery=55))
    row = conn.execute("SELECT id FROM alerts WHERE patient_id = %s", (patient_id,)).fetchone()
    assert row is not None, "the panic opened no alert"
    with conn.transaction():
        conn.execute("INSERT INTO alert_history (alert_id, kind, user_id, detail) VALUES (%s, 'note', %s,"
                     " '{\"note\": \"called her\"}')", (row[0], clinician_id))  # fmt: skip
        limits = {"hr": Limits(yellow_low=50.0, yellow_high=110.0, red_low=40.0, red_high=150.0)}
        thresholds.approve(conn, patient_id, clinician_id, limits, "her usual")
        weather.set_home(conn, patient_id, 46.05, 14.51)
    keep_dead_letter(conn, topic_for(device, Kind.SUMMARY), b"{not json", "not_json", "test")
    token, _ = create_session(conn, clinician_id, 1.0)
    user = session_user(conn, token)
    assert user is not None
    audit(conn, user, "read:patient", [patient_id])
    for purpose in consent.PURPOSES:
        consent.record(conn, patient_id, purpose, True, "clinician", clinician_id, "signed form")
    if not people:
        return Filled(patient_id, device, name, clinician, clinician_id, row[0], windows, "", 0, 0, 0, 0)
    account = f"petra-{tag}"
    account_id = add_user(conn, account, PASSWORD, "patient")
    link_patient_account(conn, account_id, patient_id)
    caregiver_id = add_user(conn, f"son-of-petra-{tag}", PASSWORD, "caregiver")
    joined, _ = invitations.create(conn, "caregiver", patient_id, account_id, 72.0, "son", ("alerts",))
    grant = caregivers.add(conn, patient_id, caregiver_id, f"Petra {tag}'s son", ["alerts", "status", "trends"], "red",
                           joined.id)  # he joined with an invitation, as through the API  # fmt: skip
    create_session(conn, caregiver_id, 1.0)
    invitation, _ = invitations.create(conn, "caregiver", patient_id, account_id, 72.0, "daughter", ("status",))
    return Filled(patient_id, device, name, clinician, clinician_id, row[0], windows, account, account_id,
                  caregiver_id, grant.id, invitation.id)


__all__ = ["Filled", "PASSWORD", "STRIP_SAMPLES", "fill_patient"]
