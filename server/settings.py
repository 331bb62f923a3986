"""The server's configuration: one typed object read from ``PISCES_*`` variables.

Built by :func:`get_settings` (or passed to ``create_app``), never at import
time. Defaults work on a laptop; in ``production`` mode the server refuses to
start with a default or missing secret, without broker credentials, or with a
plain (non-TLS) broker URL to another host.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire.broker import BrokerAddress

DEFAULT_SECRET = "change-me"


class ServerSettings(BaseSettings):
    """Everything the server, the ingest workers and the demo need to know."""

    model_config = SettingsConfigDict(env_prefix="PISCES_", extra="ignore")

    mode: Literal["dev", "demo", "production"] = "dev"
    database_url: str | None = Field(default=None, description="PostgreSQL URL; None: embedded (demo only)")
    mqtt_url: str | None = Field(default=None, description="mqtt://user:pass@host:port; None: embedded")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser (empty: CORS off)"
    )
    csp_enforce: bool | None = Field(
        default=None, description="enforce the Content-Security-Policy (None: in production; else report-only)"
    )
    invitation_hours: float = Field(
        default=72.0, gt=0, le=24 * 30, description="one-time invitation codes (accounts, caregivers) expire after"
    )
    login_max_failures: int = Field(default=5, ge=1, le=1000, description="failed sign-ins per user/address")
    login_window_seconds: float = Field(default=900.0, gt=0, description="...within this window, then 429")
    ingest_in_server: bool = Field(default=True, description="run one ingest worker inside `pisces server`")
    max_body_bytes: int = Field(
        default=5_000_000, ge=1_000, le=100_000_000, description="larger HTTP request bodies get 413"
    )
    escalation_in_server: bool = Field(
        default=True, description="run the no-signal/escalation/config-push loop inside `pisces server`"
    )
    mqtt_client_id: str = "pisces-server"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: str | None = Field(
        default=None, description="PEM of the CA that signed the broker's certificate (mqtts://; None: system CAs)"
    )
    mqtt_protocol: Literal["3.1.1", "5"] = Field(
        default="3.1.1", description="MQTT version of the ingest client (amqtt speaks 3.1.1 only)"
    )
    mqtt_shared_group: str | None = Field(
        default=None, description="subscribe as $share/<group>/... so N workers split the uplink"
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="API connection pool size")
    ingest_batch_size: int = Field(default=500, ge=1, le=10_000, description="most messages per transaction")
    ingest_receive_maximum: int = Field(
        default=2000, ge=1, le=65_535, description="MQTT 5: unacked messages the broker may send us at once"
    )
    ingest_workers: int = Field(default=1, ge=1, le=64, description="worker processes of `pisces ingest`")
    ingest_partitions: int = Field(
        default=4, ge=1, le=256,
        description="devices hashed into this many partitions; a batch holds one partition's messages, and"
        " workers take turns per partition, so they do not queue on each other's patients; 1: no turns",
    )  # fmt: skip
    ingest_partition_min: int = Field(
        default=100, ge=1, description="fewer messages than this held: one batch of them all, without turns"
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(
        default=None, ge=0, le=65_535, description="serve /metrics here (worker i of `pisces ingest`: port + i)"
    )
    # Retention per kind of data, days (0: keep forever); enforced by server.retention, reasons in docs/security.md.
    # The clinical record is kept unless the operator sets a limit (medical-record law differs by country).
    retention_summaries_days: float = Field(default=0, ge=0, description="raw summary windows (whole days)")
    retention_rollups_days: float = Field(default=0, ge=0, description="1-minute and 1-hour rollups")
    retention_events_days: float = Field(default=0, ge=0, description="phone events and closed symptom periods")
    retention_strips_days: float = Field(default=0, ge=0, description="ECG strips")
    retention_alerts_days: float = Field(default=0, ge=0, description="resolved alerts with their history")
    retention_dead_letters_days: float = Field(default=90, ge=0, description="rejected messages and weather lines")
    retention_audit_days: float = Field(default=6 * 365, ge=0, description="audit log (HIPAA: 6 years)")
    retention_sessions_days: float = Field(default=7, ge=0, description="sessions, counted from their expiry")
    retention_uplink_keys_days: float = Field(default=0, ge=0, description="idempotency keys (device, seq)")
    retention_every_s: float = Field(default=3600, gt=0, description="how often the ingest worker runs retention")
    erasure_keep: list[str] = Field(
        default_factory=list, description="tables an erasure keeps (pseudonymised), e.g. records the law requires"
    )
    broker_password_file: str | None = Field(
        default=None, description="Mosquitto password file that `pisces devices` edits"
    )
    alert_hold_seconds: float = Field(default=60.0, ge=0, description="a level must hold this long to open")
    alert_clear_seconds: float = Field(default=120.0, ge=0, description="back within limits this long to clear")
    min_quality: float = Field(default=0.5, ge=0, le=1, description="windows below it raise no alerts")
    alert_max_gap_seconds: float = Field(
        default=300.0, gt=0, description="longer without usable windows restarts the hold/clear timers"
    )
    report_default_days: int = Field(
        default=30, ge=1, le=400, description="a visit report of a patient never visited covers this many days"
    )
    # the initial phase (defaults judge while the baseline grows) and the alert ladder, s
    baseline_days: float = Field(default=7.0, ge=1, le=365, description="initial data-collection phase, days")
    baseline_min_good_hours: float = Field(default=48.0, ge=1, description="good data the phase needs, h")
    no_signal_after_seconds: float = Field(default=600.0, gt=0, description="silent: yellow (the phone)")
    no_signal_red_after_seconds: float = Field(default=1800.0, gt=0, description="silent: red (clinicians)")
    escalate_after_seconds: float = Field(default=300.0, gt=0, description="red unacked: second contact")
    escalate_all_after_seconds: float = Field(default=600.0, gt=0, description="red unacked: all on call")
    promote_yellow_after_seconds: float = Field(default=1800.0, gt=0, description="yellow unacked: red")
    adherence_low_share: float = Field(
        default=0.8, ge=0, le=1, description="the overview flags a drug taken on time less often than this"
    )
    adherence_low_days: float = Field(default=7.0, gt=0, le=90, description="...over this many days")

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServerSettings:
        if self.mode == "production" and self.secret_key.get_secret_value() in ("", DEFAULT_SECRET):
            raise ValueError("PISCES_SECRET_KEY must be set to a non-default value in production mode")
        if self.mode == "production" and (self.database_url is None or self.mqtt_url is None):
            raise ValueError("production mode needs PISCES_DATABASE_URL and PISCES_MQTT_URL")
        if self.mode == "production" and self.mqtt_url is not None:
            _refuse_plain_broker(self.mqtt_url)
            if not (self.mqtt_username or BrokerAddress.parse(self.mqtt_url).username):
                raise ValueError("production mode needs the broker's server account: PISCES_MQTT_USERNAME / _PASSWORD")
        return self

    @model_validator(mode="after")
    def _ladder_in_order(self) -> ServerSettings:
        if self.no_signal_red_after_seconds <= self.no_signal_after_seconds:
            raise ValueError("PISCES_NO_SIGNAL_RED_AFTER_SECONDS must exceed PISCES_NO_SIGNAL_AFTER_SECONDS")
        if self.escalate_all_after_seconds <= self.escalate_after_seconds:
            raise ValueError("PISCES_ESCALATE_ALL_AFTER_SECONDS must exceed PISCES_ESCALATE_AFTER_SECONDS")
        if self.baseline_min_good_hours > 24 * self.baseline_days:
            raise ValueError("PISCES_BASELINE_MIN_GOOD_HOURS cannot exceed the hours of PISCES_BASELINE_DAYS")
        return self


def _refuse_plain_broker(url: str) -> None:
    """In production the broker link leaves this host only over TLS (plain TCP on loopback is fine)."""
    address = BrokerAddress.parse(url)
    if not address.tls and not address.is_loopback:
        raise ValueError(
            f"production mode needs TLS to a broker on another host: use mqtts:// (got {address.url()}); "
            "plain mqtt:// only to 127.0.0.1 / localhost"
        )


def get_settings() -> ServerSettings:
    """Read the settings from the environment (call once, at startup)."""
    return ServerSettings()
