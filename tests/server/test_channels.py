"""Delivery to channels: a webhook on a local HTTP server, e-mail to a local aiosmtpd, claims on the real database."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from server import channels
from server.channels import AlertNotice, ChannelSettings, DeliveryError
from server.embedded import free_port
from server.store import add_patient, add_user, assign_patient

NOTICE = AlertNotice(41, 7, "red", "hr", "open", "2026-11-23T10:00:00+00:00", 0, 142.0, "http://portal/alerts/41")


class Hook:
    """A local webhook receiver answering with ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.mails.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, ChannelSettings]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, ChannelSettings(smtp_host="127.0.0.1", smtp_port=controller.port, smtp_starttls=False,
                                 mail_from="alerts@example.org")  # fmt: skip
    controller.stop()


def test_the_webhook_gets_the_alert_as_json(hook: Hook) -> None:
    channels.send_webhook(hook.url, NOTICE)
    assert hook.bodies == [{"type": "pisces.alert", "alert_id": 41, "patient_id": 7, "level": "red",
                            "parameter": "hr", "state": "open", "opened_at": "2026-11-23T10:00:00+00:00",
                            "step": 0, "value": 142.0, "link": "http://portal/alerts/41"}]  # fmt: skip


def test_a_refusing_or_absent_webhook_is_a_delivery_error() -> None:
    refusing = Hook(status=500)
    try:
        with pytest.raises(DeliveryError, match="HTTP 500"):
            channels.send_webhook(refusing.url, NOTICE)
    finally:
        refusing.server.shutdown()
        refusing.server.server_close()
    with pytest.raises(DeliveryError, match="unreachable"):
        channels.send_webhook(f"http://127.0.0.1:{free_port()}/", NOTICE, timeout=1)


def test_the_email_reaches_the_smtp_server(smtp: tuple[Inbox, ChannelSettings]) -> None:
    inbox, settings = smtp
    channels.send_email(settings, "oncall@example.org", NOTICE)
    (mail,) = inbox.mails
    text = mail.content.decode()
    assert mail.rcpt_tos == ["oncall@example.org"] and mail.mail_from == "alerts@example.org"
    assert "Subject: [pisces RED] patient 7: hr (142)" in text and "http://portal/alerts/41" in text
    with pytest.raises(DeliveryError, match="no SMTP server"):
        channels.send_email(ChannelSettings(), "x@example.org", NOTICE)


def test_each_channel_hears_a_red_alert_once_by_step(db_url: str, device_id: str, hook: Hook,
                                                      smtp: tuple[Inbox, ChannelSettings]) -> None:  # fmt: skip
    inbox, settings = smtp
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "P", device_id)
        first, second = add_user(conn, f"a-{device_id}", "pw-123456789"), add_user(conn, f"b-{device_id}", "pw-123456789")
        assign_patient(conn, f"a-{device_id}", patient)
        assign_patient(conn, f"b-{device_id}", patient)
        conn.execute("UPDATE care_assignments SET contact_rank = 2 WHERE user_id = %s", (second,))
        channels.add_channel(conn, "webhook", hook.url, first)
        channels.add_channel(conn, "email", f"b-{device_id}@example.org", second)
        alert = conn.execute("INSERT INTO alerts (patient_id, level, parameter, opened_at, trigger) VALUES"
                             " (%s, 'red', 'hr', now(), '{\"value\": 150}') RETURNING id", (patient,)).fetchone()[0]  # fmt: skip

        def deliver() -> list[str]:
            claims = [c for c in channels.claim_due(conn) if c.alert_id == alert]
            for c in claims:
                channels.record_result(conn, c, channels.send(c, settings))
            return [c.kind for c in claims]

        assert deliver() == ["webhook"] and deliver() == []  # step 0: first contact, once
        conn.execute("UPDATE alerts SET escalation_step = 1 WHERE id = %s", (alert,))
        assert deliver() == ["email"] and deliver() == []  # step 1: the second contact
    assert [b["alert_id"] for b in hook.bodies] == [alert] and len(inbox.mails) == 1


def test_a_channel_set_to_yellow_also_hears_yellow_alerts_and_a_red_only_one_does_not(
    db_url: str, device_id: str, hook: Hook, smtp: tuple[Inbox, ChannelSettings]
) -> None:
    inbox, settings = smtp
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "P", device_id)
        nurse = add_user(conn, f"n-{device_id}", "pw-123456789")
        assign_patient(conn, f"n-{device_id}", patient)
        channels.add_channel(conn, "webhook", hook.url, nurse, min_level="yellow")
        channels.add_channel(conn, "email", f"n-{device_id}@example.org", nurse)  # default: red only
        yellow = conn.execute("INSERT INTO alerts (patient_id, level, parameter, opened_at, trigger) VALUES"
                              " (%s, 'yellow', 'resp_rate', now(), '{\"value\": 22}') RETURNING id",
                              (patient,)).fetchone()[0]  # fmt: skip
        claims = [c for c in channels.claim_due(conn) if c.alert_id == yellow]
        for c in claims:
            channels.record_result(conn, c, channels.send(c, settings))
        again = [c for c in channels.claim_due(conn) if c.alert_id == yellow]
    assert [c.kind for c in claims] == ["webhook"] and again == []
    assert [(b["alert_id"], b["level"], b["parameter"]) for b in hook.bodies] == [(yellow, "yellow", "resp_rate")]
    assert inbox.mails == []
