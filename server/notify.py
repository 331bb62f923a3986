"""Downlink to the patient's phone: alert changes -> ``wire.Notify``, approved limits -> retained ``wire.Config``.

Clinicians are told through PostgreSQL ``NOTIFY`` (see :mod:`server.records`),
which every API process hears; this module only speaks MQTT to phones. Yellow
and red alerts, and no-signal alerts, reach the patient here; changes that only
concern clinicians (``escalate_contact``) are not sent to the phone.
"""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from server.dose_alerts import NO_LONGER_CRITICAL, PREFIX as DOSE_PREFIX
from server.records import AlertChange
from server.settings import ServerSettings
from wire import BrokerAddress, Config, Kind, Level, Notify, encode, topic_for

log = logging.getLogger(__name__)

PARAMETER_NAMES = {
    "hr": "Heart rate", "resp_rate": "Breathing rate", "panic": "Help request", "pause": "Heart pause",
    "vt": "Fast heart rhythm", "af": "Irregular heart rhythm", "no_signal": "Sensor signal",
}  # fmt: skip
PHONE_KINDS = frozenset({"open", "escalate", "resolve"})
PUBLISH_TIMEOUT_S = 5.0


def notify_for(device_id: str, change: AlertChange) -> Notify:
    """The message the patient sees for one alert change (pure)."""
    name = PARAMETER_NAMES.get(change.parameter, change.parameter)
    if change.parameter.startswith(DOSE_PREFIX):
        return _dose_notice(device_id, change)
    if change.kind == "resolve":
        title = "Receiving your data again" if change.parameter == "no_signal" else f"{name} back in your range"
        return Notify(device_id, change.time, Level.INFO, title, alert_id=change.alert_id, parameter=change.parameter)
    title, body = _wording(name, change)
    value = change.trigger.get("value")
    if isinstance(value, (int, float)) and change.parameter in ("hr", "resp_rate"):
        body = f"{name}: {value:.0f}/min. {body}"
    return Notify(device_id, change.time, Level(change.level), title, body,
                  alert_id=change.alert_id, parameter=change.parameter)  # fmt: skip


def _dose_notice(device_id: str, change: AlertChange) -> Notify:
    """The patient's message about a critical drug's missed doses (``dose:<drug>``)."""
    drug = change.parameter[len(DOSE_PREFIX):]
    if change.kind == "resolve":
        title, body = ((f"{drug}: no longer followed", "Your care team changed your medication plan.")
                       if change.trigger.get("reason") == NO_LONGER_CRITICAL
                       else (f"{drug}: thank you", "Your dose was recorded."))  # fmt: skip
        return Notify(device_id, change.time, Level.INFO, title, body, alert_id=change.alert_id,
                      parameter=change.parameter)  # fmt: skip
    n = change.trigger.get("not_taken")
    body = f"Your last {n} doses of {drug} were not taken. " if isinstance(n, int) else ""
    if change.level == "red":
        title, body = f"{drug}: your care team has been told", body + "They may call you about your medication."
    else:
        title, body = f"{drug}: doses missed", body + "Take your next dose as planned, or contact your care team."
    return Notify(device_id, change.time, Level(change.level), title, body, alert_id=change.alert_id,
                  parameter=change.parameter)  # fmt: skip


def _wording(name: str, change: AlertChange) -> tuple[str, str]:
    if change.parameter == "panic":
        return "Help request received", "Your care team has been alerted."
    if change.parameter == "no_signal":
        if change.level == "red":
            return "Still no data from your sensor", "Your care team has been told. Please check the strap and phone."
        return "No data from your sensor", "Please check that the strap is worn and the phone is on and nearby."
    if change.level == "red":
        return (f"{name} far outside your range",
                "Your care team has been alerted. Sit or lie down; call emergency services if you feel very unwell.")
    return f"{name} outside your range", "Please rest. If you feel unwell, mark it in the app or contact your care team."


def broker_login(client: mqtt.Client, settings: ServerSettings) -> BrokerAddress:
    """Set the server's broker credentials and TLS on a paho client; return the broker address."""
    address = BrokerAddress.parse(settings.mqtt_url or "")
    username = settings.mqtt_username or address.username
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else address.password
    if username:
        client.username_pw_set(username, password)
    if address.tls:
        client.tls_set(ca_certs=settings.mqtt_ca_file)
    return address


def downlink_client(settings: ServerSettings, client_id: str) -> mqtt.Client:
    """A paho client for publishing to phones, connecting in the background (call ``loop_start``)."""
    v5 = settings.mqtt_protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)  # fmt: skip
    address = broker_login(client, settings)
    client.reconnect_delay_set(1, 30)
    client.connect_async(address.host, address.port, keepalive=30)
    return client


def publish_config(client: mqtt.Client, config: Config, timeout: float = PUBLISH_TIMEOUT_S) -> bool:
    """Publish the limits in force as the device's retained config (QoS 1); True once the broker has it."""
    return publish_retained(client, topic_for(config.device, Kind.CONFIG), encode(config), timeout)


def publish_retained(client: mqtt.Client, topic: str, payload: bytes, timeout: float = PUBLISH_TIMEOUT_S) -> bool:
    """Publish retained at QoS 1 (an empty payload clears what the broker keeps); True once the broker has it."""
    info = client.publish(topic, payload, qos=1, retain=True)
    if info.rc != mqtt.MQTT_ERR_SUCCESS:
        return False
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError):
        return False
    return info.is_published()


class Notifier:
    """Publishes notifications to phones over an already-connected paho client (QoS 1)."""

    def __init__(self, client: mqtt.Client) -> None:
        self._client = client

    def send(self, device_id: str, changes: list[AlertChange]) -> int:
        """Publish one Notify per change the patient should see; return how many were queued."""
        sent = 0
        for change in changes:
            if change.kind not in PHONE_KINDS:
                continue
            topic = topic_for(device_id, Kind.NOTIFY)
            info = self._client.publish(topic, encode(notify_for(device_id, change)), qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                sent += 1
            else:  # paho keeps QoS 1 messages queued across reconnects; only a full queue lands here
                log.warning("notify for alert %s to %s not queued: rc=%s", change.alert_id, topic, info.rc)
        return sent
