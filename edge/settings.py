"""The edge agent's configuration: one typed object read from ``PISCES_EDGE_*`` variables.

Built by :func:`get_settings` at startup (or constructed directly), never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire.topics import validate_device_id


def default_outbox_path(device_id: str) -> Path:
    """``~/.local/share/pisces/edge/<device>.sqlite3`` (``$XDG_DATA_HOME`` if set)."""
    import os

    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "pisces" / "edge" / f"{device_id}.sqlite3"


class EdgeSettings(BaseSettings):
    """Everything the phone agent needs to know."""

    model_config = SettingsConfigDict(env_prefix="PISCES_EDGE_", extra="ignore")

    device_id: str = Field(description="this phone's device id, 1-64 of [A-Za-z0-9_-]")
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = Field(default=None, description="PEM of the CA that signed the broker's certificate")
    mqtt_tls: bool = Field(default=False, description="TLS even for an mqtt:// URL (mqtts:// always uses it)")
    mqtt_allow_plain: bool = Field(
        default=False, description="allow plain mqtt:// to a broker on another host (loopback is always allowed)"
    )
    app_host: str = Field(default="127.0.0.1", description="the patient app listens here (loopback: the phone only)")
    app_port: int = Field(default=8765, ge=0, le=65535, description="the patient app's port; 0: no app")
    outbox_path: Path | None = Field(default=None, description="None: default_outbox_path(device_id)")
    window_seconds: float = Field(default=60.0, ge=1, le=3600)
    batch_windows: int = Field(default=5, ge=1, le=1000)
    strip_seconds: float = Field(default=30.0, gt=0, le=120)
    outbox_max_bytes: int = Field(default=50_000_000, ge=10_000, description="bound of the outbox file's payloads")

    @field_validator("device_id")
    @classmethod
    def _valid_device(cls, value: str) -> str:
        return validate_device_id(value)

    @model_validator(mode="after")
    def _fill_outbox_path(self) -> EdgeSettings:
        if self.outbox_path is None:
            self.outbox_path = default_outbox_path(self.device_id)
        return self

    @property
    def outbox(self) -> Path:
        """The outbox file path (always set after validation)."""
        assert self.outbox_path is not None
        return self.outbox_path


def get_settings(**overrides: object) -> EdgeSettings:
    """Read the settings from the environment, with explicit overrides (e.g. from the CLI)."""
    return EdgeSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
