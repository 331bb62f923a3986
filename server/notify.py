"""Downlink to the patient's phone: alert changes -> ``wire.Notify`` on ``pisces/v1/<device>/notify``.

Clinicians are told through PostgreSQL ``NOTIFY`` (see :mod:`server.records`),
which every API process hears; this module only speaks MQTT to phones.
"""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt

from server.records import AlertChange
from wire import Kind, Level, Notify, encode, topic_for

log = logging.getLogger(__name__)

PARAMETER_NAMES = {"hr": "Heart rate", "resp_rate": "Breathing rate", "panic": "Help request"}


def notify_for(device_id: str, change: AlertChange) -> Notify:
    """The message the patient sees for one alert change (pure)."""
    name = PARAMETER_NAMES.get(change.parameter, change.parameter)
    if change.kind == "resolve":
        return Notify(device_id, change.time, Level.INFO, f"{name} back in your range",
                      alert_id=change.alert_id, parameter=change.parameter)  # fmt: skip
    if change.parameter == "panic":
        title, body = "Help request received", "Your care team has been alerted."
    elif change.level == "red":
        title = f"{name} far outside your range"
        body = "Your care team has been alerted. Sit or lie down; call emergency services if you feel very unwell."
    else:
        title = f"{name} outside your range"
        body = "Please rest. If you feel unwell, mark it in the app or contact your care team."
    value = change.trigger.get("value")
    if isinstance(value, (int, float)):
        body = f"{name}: {value:.0f}/min. {body}"
    return Notify(device_id, change.time, Level(change.level), title, body,
                  alert_id=change.alert_id, parameter=change.parameter)  # fmt: skip


class Notifier:
    """Publishes notifications to phones over an already-connected paho client (QoS 1)."""

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client

    def send(self, device_id: str, changes: list[AlertChange]) -> int:
        """Publish one Notify per change; return how many were queued to the broker."""
        sent = 0
        for change in changes:
            topic = topic_for(device_id, Kind.NOTIFY)
            info = self._client.publish(topic, encode(notify_for(device_id, change)), qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                sent += 1
            else:  # paho keeps QoS 1 messages queued across reconnects; only a full queue lands here
                log.warning("notify for alert %s to %s not queued: rc=%s", change.alert_id, topic, info.rc)
        return sent
