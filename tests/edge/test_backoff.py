"""The retry policy as data: exponential back-off with a cap, deterministic jitter, a long wait for a refused login."""

from __future__ import annotations

import pytest

from edge.backoff import (
    AUTH_DELAY_S,
    BLE_POLICY,
    MQTT_POLICY,
    NotAuthorized,
    Policy,
    backoff_for,
)


def test_delays_double_from_the_base_up_to_the_cap_within_the_jitter() -> None:
    for policy in (BLE_POLICY, MQTT_POLICY):
        for attempt in range(1, 40):
            nominal = min(policy.cap, policy.base * 2 ** (attempt - 1))
            delay = backoff_for(attempt, policy=policy, salt="dev-001")
            assert nominal * (1 - policy.jitter) <= delay <= min(policy.cap, nominal * (1 + policy.jitter))
    assert backoff_for(1000, policy=MQTT_POLICY) <= MQTT_POLICY.cap  # no overflow after a week of failures
    assert backoff_for(0) == backoff_for(1)  # no failure yet counts as the first


def test_jitter_is_the_same_for_the_same_device_and_spread_between_devices() -> None:
    delays = [backoff_for(3, salt=f"dev-{i:03d}") for i in range(50)]
    assert delays == [backoff_for(3, salt=f"dev-{i:03d}") for i in range(50)]  # a test can predict every delay
    assert len(set(delays)) == 50 and max(delays) - min(delays) > 0.5 * 2.0 * BLE_POLICY.jitter
    assert backoff_for(3, policy=Policy(jitter=0.0), salt="x") == pytest.approx(2.0)  # base 0.5 s doubled twice


def test_refused_credentials_wait_long_whatever_the_attempt() -> None:
    for attempt in (1, 2, 10):
        assert backoff_for(attempt, NotAuthorized("bad password"), policy=MQTT_POLICY) == AUTH_DELAY_S
    assert backoff_for(1, OSError("connection refused"), policy=MQTT_POLICY) < 1.0  # a broker down is retried soon
