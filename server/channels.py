"""Alert delivery to configured channels: webhook (HTTP POST of JSON) and e-mail (SMTP).

Which channels hear an alert depends on its escalation step
(:mod:`server.escalation`): step 0 the channels for everyone and those of the
patient's first contacts (care assignment rank 1), step 1 those of the second
contacts (rank 2), step 2 those of every on-call clinician. A channel hears
yellow alerts too only if its ``min_level`` is ``yellow``.

Each (alert, step, channel) is claimed in ``alert_deliveries`` before sending,
so several loops never send twice; a failed send is retried on later ticks up
to :data:`MAX_ATTEMPTS` times, and a claim whose sender died is taken over after
:data:`STALE_CLAIM_S`. Messages carry the patient's id, never their name or
location: the receiving end looks the patient up in the portal.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_ATTEMPTS = 5
STALE_CLAIM_S = 60
RETRY_AFTER_S = 15
TIMEOUT_S = 5.0


class ChannelSettings(BaseSettings):
    """Where e-mail goes out and how the portal is reached (``PISCES_ALERT_*`` variables)."""

    model_config = SettingsConfigDict(env_prefix="PISCES_ALERT_", extra="ignore")

    smtp_host: str | None = Field(default=None, description="SMTP server; None: e-mail channels fail visibly")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "pisces-alerts@localhost"
    portal_url: str = Field(default="", description="base URL of the portal, for links in messages")


class DeliveryError(Exception):
    """A channel refused or could not be reached; ``reason`` is short and stored."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AlertNotice:
    """What a channel is told about an alert (JSON body of the webhook)."""

    alert_id: int
    patient_id: int
    level: str
    parameter: str
    state: str
    opened_at: str  # ISO 8601, UTC
    step: int
    value: float | None
    link: str


def webhook_body(notice: AlertNotice) -> bytes:
    """The webhook's JSON body (pure)."""
    return json.dumps({"type": "pisces.alert", **asdict(notice)}, sort_keys=True).encode()


def email_for(notice: AlertNotice, sender: str, to: str) -> EmailMessage:
    """The e-mail for an alert (pure)."""
    msg = EmailMessage()
    value = "" if notice.value is None else f" ({notice.value:g})"
    msg["Subject"] = f"[pisces {notice.level.upper()}] patient {notice.patient_id}: {notice.parameter}{value}"
    msg["From"], msg["To"] = sender, to
    lines = [f"Alert {notice.alert_id}: {notice.level} {notice.parameter}{value}, opened {notice.opened_at}.",
             f"Escalation step {notice.step}. State: {notice.state}."]  # fmt: skip
    if notice.link:
        lines.append(f"Open it in the portal: {notice.link}")
    msg.set_content("\n".join(lines) + "\n")
    return msg


def send_webhook(url: str, notice: AlertNotice, timeout: float = TIMEOUT_S) -> None:
    """POST the notice; any status other than 2xx, or no answer, raises DeliveryError."""
    request = urllib.request.Request(url, webhook_body(notice), {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL set by an admin
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"unreachable: {exc}") from exc


def send_email(settings: ChannelSettings, to: str, notice: AlertNotice, timeout: float = TIMEOUT_S) -> None:
    """Send the notice by SMTP (STARTTLS and login when configured); failures raise DeliveryError."""
    if settings.smtp_host is None:
        raise DeliveryError("no SMTP server configured (PISCES_ALERT_SMTP_HOST)")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(email_for(notice, settings.mail_from, to))
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {exc}") from exc


@dataclass(frozen=True)
class Claim:
    """A delivery this process has claimed and must now send."""

    alert_id: int
    step: int
    channel_id: int
    kind: str
    target: str
    notice: AlertNotice


# Deliveries due: unresolved alerts x the channels of their step, not yet sent nor given up.
DUE_SQL = """
SELECT a.id, a.escalation_step, c.id, c.kind, c.target, a.patient_id, a.level, a.parameter, a.state,
       a.opened_at, (a.trigger->>'value')::float8
FROM alerts a JOIN alert_channels c ON c.enabled AND (a.level = 'red' OR c.min_level = 'yellow')
WHERE a.state <> 'resolved' AND (
    (a.escalation_step >= 0 AND (c.user_id IS NULL OR c.user_id IN (SELECT user_id FROM care_assignments
        WHERE patient_id = a.patient_id AND contact_rank = 1)))
 OR (a.escalation_step >= 1 AND c.user_id IN (SELECT user_id FROM care_assignments
        WHERE patient_id = a.patient_id AND contact_rank = 2))
 OR (a.escalation_step >= 2 AND c.user_id IN (SELECT id FROM users WHERE on_call)))
AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.channel_id = c.id
                AND (d.status = 'sent' OR d.attempts >= %(max)s))
ORDER BY a.level = 'red' DESC, a.id
"""

CLAIM_SQL = """
INSERT INTO alert_deliveries (alert_id, step, channel_id, attempts) VALUES (%s, %s, %s, 1)
ON CONFLICT (alert_id, channel_id) DO UPDATE SET attempts = alert_deliveries.attempts + 1,
    claimed_at = now(), status = 'pending', step = EXCLUDED.step
WHERE alert_deliveries.attempts < %s AND (
    (alert_deliveries.status = 'failed' AND alert_deliveries.claimed_at < now() - make_interval(secs => %s))
 OR (alert_deliveries.status = 'pending' AND alert_deliveries.claimed_at < now() - make_interval(secs => %s)))
RETURNING 1
"""


def claim_due(conn: psycopg.Connection[Any], portal_url: str = "") -> list[Claim]:
    """Claim every delivery now due (one short transaction); each is this process's to send."""
    claims = []
    with conn.transaction():
        rows = conn.execute(DUE_SQL, {"max": MAX_ATTEMPTS}).fetchall()
        for alert_id, step, channel_id, kind, target, pid, level, param, state, opened, value in rows:
            claim = (alert_id, step, channel_id, MAX_ATTEMPTS, RETRY_AFTER_S, STALE_CLAIM_S)
            if conn.execute(CLAIM_SQL, claim).fetchone() is None:
                continue
            link = f"{portal_url.rstrip('/')}/alerts/{alert_id}" if portal_url else ""
            notice = AlertNotice(alert_id, pid, level, param, state, opened.isoformat(), step, value, link)
            claims.append(Claim(alert_id, step, channel_id, kind, target, notice))
    return claims


def send(claim: Claim, settings: ChannelSettings) -> str | None:
    """Send one claimed delivery; return the error reason, None when it went out."""
    try:
        if claim.kind == "webhook":
            send_webhook(claim.target, claim.notice)
        else:
            send_email(settings, claim.target, claim.notice)
    except DeliveryError as exc:
        return exc.reason
    return None


def record_result(conn: psycopg.Connection[Any], claim: Claim, error: str | None) -> None:
    """Store how a delivery went, in the delivery row and the alert's history."""
    status = "failed" if error else "sent"
    with conn.transaction():
        conn.execute(
            "UPDATE alert_deliveries SET status = %s, error = %s WHERE alert_id = %s AND channel_id = %s",
            (status, error or "", claim.alert_id, claim.channel_id),
        )
        conn.execute(
            "INSERT INTO alert_history (alert_id, kind, detail) VALUES (%s, %s, %s)",
            (claim.alert_id, "delivered" if error is None else "delivery_failed",
             Jsonb({"channel": claim.channel_id, "kind": claim.kind, "step": claim.step, "error": error})),
        )  # fmt: skip


def add_channel(conn: psycopg.Connection[Any], kind: str, target: str, user_id: int | None = None,
                min_level: str = "red") -> int:  # fmt: skip
    """Configure a channel (idempotent on kind, target and user); return its id."""
    row = conn.execute(
        "INSERT INTO alert_channels (kind, target, user_id, min_level) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (kind, target, user_id) DO UPDATE SET min_level = EXCLUDED.min_level, enabled = true"
        " RETURNING id",
        (kind, target, user_id, min_level),
    ).fetchone()
    assert row is not None
    return int(row[0])
