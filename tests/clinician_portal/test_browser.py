"""The portal in a real headless Chromium: sign in, see a red alert arrive live, acknowledge it."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.fix_server import LiveServer, provision
from tests.server.helpers import publish
from wire import Event, EventType, Kind, encode, topic_for

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]


def sign_in(page: Any, server: LiveServer, password: str | None = None) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#username", server.username)
    page.fill("#password", password or server.password)
    page.click("button[type=submit]")


def test_wrong_password_is_refused_with_a_message(page: Any, live_server: LiveServer) -> None:
    sign_in(page, live_server, password="not the password")
    page.wait_for_function("document.querySelector('#login-error')?.textContent.length > 0")
    assert "/login" in page.url


def test_overview_requires_sign_in(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/")
    page.wait_for_url("**/login*")


def test_red_alert_appears_live_and_can_be_acknowledged(
    page: Any, live_server: LiveServer, db_url: str, mqtt_url: str, device_id: str
) -> None:
    provision(db_url, device_id, live_server.username, name="Marta Browser")
    sign_in(page, live_server)
    page.wait_for_selector("#live.on")  # the live alert stream is connected
    assert page.locator("#patient-rows").inner_text().count("Marta Browser") == 1
    assert page.locator("#alert-list li").count() == 0

    panic = Event(device_id, 1, EventType.PANIC, time.time())
    publish(mqtt_url, [(topic_for(device_id, Kind.EVENT), encode(panic))])

    item = page.locator("#alert-list li.red", has_text="Marta Browser")
    item.wait_for()  # arrives without a reload
    assert "Panic" in item.inner_text()
    assert "New red alert" in page.locator("#announce").inner_text()
    shot = os.environ.get("PISCES_TEST_SCREENSHOTS")
    if shot:
        page.screenshot(path=os.path.join(shot, "portal-red-alert.png"), full_page=True)

    item.get_by_role("button", name="Acknowledge").click()
    page.locator("#alert-list li.acknowledged", has_text="Marta Browser").wait_for()
    page.reload()
    page.locator("#alert-list li.acknowledged", has_text="acknowledged by").wait_for()
