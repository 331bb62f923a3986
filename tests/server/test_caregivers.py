"""Caregivers: invitation codes, quiet hours and levels (pure), and their alert e-mails through the channels."""

from __future__ import annotations

from datetime import datetime, time, timezone

import psycopg
import pytest

from server import caregiver_notify, caregivers, channels, consent, invitations
from server.caregivers import Settings, in_quiet_hours, wants
from server.channels import ChannelSettings
from server.store import add_patient, add_user
from tests.server.test_channels import Inbox, smtp  # noqa: F401 - `smtp` is a fixture

# 2026-11-01 23:30 UTC = 2026-11-02 00:30 in Berlin (CET, UTC+1).
LATE = datetime(2026, 11, 1, 23, 30, tzinfo=timezone.utc).timestamp()
NOON = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc).timestamp()


def test_codes_are_grouped_random_and_read_forgivingly() -> None:
    code = invitations.new_code()
    assert len(code) == 14 and code.count("-") == 2 and invitations.normalise(code) == code.replace("-", "")
    assert invitations.new_code() != code
    assert invitations.normalise(" abcd-efgh-jkmn ") == "ABCDEFGHJKMN"
    assert invitations.normalise("O1IL-0000-0000") == "0111" + "0" * 8  # O reads as 0, I and L as 1
    assert invitations.code_hash("abcd efgh jkmn") == invitations.code_hash("ABCD-EFGH-JKMN")
    for bad in ("ABCD-EFGH-JKM", "ABCD-EFGH-JKMNP", "ABCD-EFGH-JKMU", ""):
        assert invitations.normalise(bad) is None, bad


def test_quiet_hours_are_local_and_may_pass_midnight() -> None:
    night = (time(22, 0), time(7, 0))
    assert in_quiet_hours(*night, "Europe/Berlin", LATE)  # 00:30 local
    assert not in_quiet_hours(*night, "Europe/Berlin", NOON)  # 13:00 local
    assert not in_quiet_hours(time(0, 0), time(0, 15), "Europe/Berlin", LATE)
    assert in_quiet_hours(time(0, 0), time(1, 0), "Europe/Berlin", LATE)
    assert not in_quiet_hours(time(0, 0), time(1, 0), "UTC", LATE)  # 23:30 in UTC
    assert not in_quiet_hours(None, None, "UTC", LATE)
    with pytest.raises(caregivers.CaregiverError, match="timezone"):
        caregivers.check_timezone("Mars/Olympus")


def test_the_notify_level_says_which_alerts_reach_a_caregiver() -> None:
    assert [wants(n, "red") for n in ("none", "red", "yellow")] == [False, True, True]
    assert [wants(n, "yellow") for n in ("none", "red", "yellow")] == [False, False, True]


@pytest.mark.db
def test_a_caregiver_gets_the_alerts_they_may_have_by_e_mail_after_quiet_hours(
    db_url: str, device_id: str, smtp: tuple[Inbox, ChannelSettings]  # noqa: F811
) -> None:
    inbox, settings = smtp
    address = f"{device_id}@example.org"
    with psycopg.connect(db_url, autocommit=True) as conn:
        pid = add_patient(conn, "P", device_id)
        consent.record(conn, pid, "caregivers", True, "patient", None, "in app")
        carer = add_user(conn, f"c-{device_id}", "pw-123456789", "caregiver")
        grant = caregivers.add(conn, pid, carer, "son", ["alerts"], "red", None)
        caregivers.set_settings(conn, carer, Settings(address, time(22, 0), time(7, 0), "Europe/Berlin"))

        def alert(level: str, parameter: str) -> int:
            return int(conn.execute("INSERT INTO alerts (patient_id, level, parameter, opened_at, trigger) VALUES"
                                    " (%s, %s, %s, now(), '{\"value\": 150}') RETURNING id",
                                    (pid, level, parameter)).fetchone()[0])  # type: ignore[index]  # fmt: skip

        def due(now: float) -> list[int]:
            claims = [c for c in caregiver_notify.claim_due(conn, now, "http://portal") if c.notice.patient_id == pid]
            for c in claims:
                channels.record_result(conn, c, channels.send(c, settings))
            return [c.alert_id for c in claims]

        yellow, red = alert("yellow", "resp_rate"), alert("red", "hr")
        assert due(LATE) == []  # quiet hours: it waits
        assert due(NOON) == [red] and due(NOON) == []  # red only, and once
        conn.execute("UPDATE alerts SET level = 'red' WHERE id = %s", (yellow,))
        consent.record(conn, pid, "caregivers", False, "patient", None, "in app")
        assert due(NOON) == []  # consent withdrawn: nothing
        consent.record(conn, pid, "caregivers", True, "patient", None, "in app")
        caregivers.revoke(conn, pid, grant.id, carer)
        assert due(NOON) == []  # revoked: nothing
        history = conn.execute("SELECT kind FROM alert_history WHERE alert_id = %s", (red,)).fetchall()
    (mail,) = inbox.mails
    assert mail.rcpt_tos == [address] and b"http://portal/caregiver" in mail.content
    assert history == [("delivered",)]


@pytest.mark.db
def test_set_settings_keeps_one_enabled_address(db_url: str, device_id: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        carer = add_user(conn, f"c-{device_id}", "pw-123456789", "caregiver")
        assert caregivers.get_settings(conn, carer) == Settings(None, None, None, "UTC")
        caregivers.set_settings(conn, carer, Settings("a@example.org", None, None, "UTC"))
        got = caregivers.set_settings(conn, carer, Settings("b@example.org", time(21), time(6), "Europe/Rome"))
        enabled = conn.execute("SELECT target FROM alert_channels WHERE user_id = %s AND enabled", (carer,)).fetchall()
        none = caregivers.set_settings(conn, carer, Settings(None, None, None, "UTC"))
        left = conn.execute("SELECT count(*) FROM alert_channels WHERE user_id = %s AND enabled", (carer,)).fetchone()
    assert got == Settings("b@example.org", time(21), time(6), "Europe/Rome") and enabled == [("b@example.org",)]
    assert none.email is None and left == (0,)
