"""Alerts to caregivers through the existing channels (:mod:`server.channels`): e-mail or webhook.

A caregiver hears an unresolved alert of a patient they follow when the grant
has the ``alerts`` scope, its notify level takes the alert's level
(:func:`server.caregivers.wants`), the patient's caregiver-access consent is in
force, and the caregiver has an enabled channel of their own. Inside their
quiet hours nothing is claimed: the delivery waits and goes out when they
end if the alert is still unresolved (a resolved one is only listed in their
view). Claims, retries and the alert history are those of the clinicians'
channels: one delivery per (alert, channel), ever.
"""

from __future__ import annotations

from typing import Any

import psycopg

from server.caregivers import in_quiet_hours, wants
from server.channels import (
    CLAIM_SQL,
    MAX_ATTEMPTS,
    RETRY_AFTER_S,
    STALE_CLAIM_S,
    AlertNotice,
    Claim,
)

DUE_SQL = """
SELECT a.id, c.id, c.kind, c.target, a.patient_id, a.level, a.parameter, a.state, a.opened_at,
       (a.trigger->>'value')::float8, g.notify_level, s.quiet_start, s.quiet_end, coalesce(s.timezone, 'UTC')
FROM alerts a
JOIN caregivers g ON g.patient_id = a.patient_id AND g.revoked_at IS NULL AND 'alerts' = ANY(g.scopes)
JOIN alert_channels c ON c.user_id = g.user_id AND c.enabled
LEFT JOIN caregiver_settings s ON s.user_id = g.user_id
WHERE a.state <> 'resolved' AND g.notify_level <> 'none' AND pisces_consented(a.patient_id, 'caregivers')
AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id AND d.channel_id = c.id
                AND (d.status = 'sent' OR d.attempts >= %(max)s))
ORDER BY a.level = 'red' DESC, a.id
"""


def claim_due(conn: psycopg.Connection[Any], now: float, portal_url: str = "") -> list[Claim]:
    """Claim every caregiver delivery due at ``now`` (s since epoch) outside the caregiver's quiet hours."""
    claims = []
    link = f"{portal_url.rstrip('/')}/caregiver" if portal_url else ""
    with conn.transaction():
        for row in conn.execute(DUE_SQL, {"max": MAX_ATTEMPTS}).fetchall():
            alert_id, channel_id, kind, target, pid, level, param, state, opened, value = row[:10]
            notify_level, quiet_start, quiet_end, tz = row[10:]
            if not wants(notify_level, level) or in_quiet_hours(quiet_start, quiet_end, tz, now):
                continue
            if conn.execute(CLAIM_SQL, (alert_id, 0, channel_id, MAX_ATTEMPTS, RETRY_AFTER_S, STALE_CLAIM_S)).fetchone() is None:
                continue
            notice = AlertNotice(alert_id, pid, level, param, state, opened.isoformat(), 0, value, link)
            claims.append(Claim(alert_id, 0, channel_id, kind, target, notice))
    return claims
