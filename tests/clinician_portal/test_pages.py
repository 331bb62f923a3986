"""The portal's pages in real headless Chromium: live red alert with sound and visual cue, trends, search, strip."""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg
import pytest

from server.ingest import handle_message, rule_config
from tests.clinician_portal.test_browser import sign_in
from tests.fix_server import LiveServer, provision
from tests.server.test_queries import MITDB
from tests.server.helpers import publish
from tests.server.test_api_portal import period, windows
from wire import Event, EventType, Kind, Strip, encode, topic_for

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]

SHOTS = os.environ.get("PISCES_TEST_SCREENSHOTS")


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_red_alert_fires_sound_and_visual_cue_and_resolves_with_a_note(
    page: Any, live_server: LiveServer, db_url: str, mqtt_url: str, device_id: str
) -> None:
    provision(db_url, device_id, live_server.username, name="Ivo Cue")
    sign_in(page, live_server)
    page.wait_for_selector("#live.on")
    sound = page.locator("#enable-sound")
    if sound.is_visible():  # browsers that want a gesture before audio: the clinician enables it once
        sound.click()
        sound.wait_for(state="hidden")
    assert page.evaluate("window.piscesCues.length") == 0

    publish(mqtt_url, [(topic_for(device_id, Kind.EVENT), encode(Event(device_id, 1, EventType.PANIC, time.time())))])
    page.locator("#alert-list li.red", has_text="Ivo Cue").wait_for()
    page.wait_for_function("window.piscesCues.length === 1")
    (cue,) = page.evaluate("window.piscesCues")
    assert (cue["level"], cue["audio"], cue["tones"]) == ("red", "running", 3)
    assert page.locator("#banner").is_visible() and "Ivo Cue" in page.locator("#banner").inner_text()
    assert page.title().startswith("(!) RED")
    shot(page, "portal-overview-red")

    item = page.locator("#alert-list li.red", has_text="Ivo Cue")
    item.get_by_role("textbox").fill("called, she is fine")
    item.get_by_role("button", name="Resolve").click()
    page.locator("#alerts-empty").wait_for(state="visible")
    assert page.locator("#banner").is_hidden()
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT state, resolve_note FROM alerts a JOIN patients p ON p.id = a.patient_id"
                           " WHERE p.device_id = %s", (device_id,)).fetchone()  # fmt: skip
    assert row == ("resolved", "called, she is fine")


def mitdb_strip_uv() -> tuple[int, ...]:
    """The first 10 s of MIT-BIH record 100 (lead MLII, 360 Hz) in µV: 13 annotated beats (one atrial premature)."""
    import wfdb

    record = wfdb.rdrecord(str(MITDB / "100"), sampto=3600, channels=[0])
    return tuple(int(round(v * 1000)) for v in record.p_signal[:, 0])


def seed(server: LiveServer, db_url: str, device: str) -> int:
    """A patient with a quiet day, a fast irregular symptom period with a strip, and a pause."""
    pid = provision(db_url, device, server.username, name="Lea Trend")
    t = time.time() // 3600 * 3600 - 12 * 3600
    ecg = mitdb_strip_uv()
    messages = [
        windows(device, 1, t, [(68.0 + (i % 7), (), 0.9) for i in range(600)]),
        *period(device, 2, "fast", t + 36000, t + 36600, tags=("palpitations",), severity=4, note="after stairs"),
        windows(device, 4, t + 36000, [(150.0, ("irregular",), 0.9)] * 10),
        Strip(device, 5, t + 36100, 360.0, "symptom", ecg, ref_seq=2),
        *period(device, 6, "dizzy", t + 39600, t + 39900, tags=("dizzy",), severity=2),
        windows(device, 8, t + 39600, [(62.0, ("pause",), 0.9)] * 5),
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        for msg in messages:
            handle_message(conn, topic_for(device, msg.kind), encode(msg), rule_config(server.settings))
    return pid


def test_patient_page_search_and_strip_viewer(page: Any, live_server: LiveServer, db_url: str, device_id: str) -> None:
    pid = seed(live_server, db_url, device_id)
    sign_in(page, live_server)
    page.wait_for_selector("#patient-rows tr")
    page.get_by_role("link", name="Lea Trend").first.click()
    page.wait_for_function("document.querySelector('#chart')?.dataset.loaded === '1'")
    assert "symptom period" in page.locator("#event-rows").inner_text()
    assert "rhythm episode" in page.locator("#event-rows").inner_text()
    # lane axis ends keep the decimals their span needs (activity in g spans ~0.3: not "0" and "0")
    assert page.evaluate("[axisValue(0.3, 0.3), axisValue(7.25, 5), axisValue(131.4, 90)]") == ["0.30", "7.3", "131"]
    shot(page, "portal-patient-24h")
    page.get_by_role("button", name="7 days").click()
    page.wait_for_function("document.querySelector('#chart')?.dataset.loaded === '2'")
    page.locator("#chart").focus()
    page.keyboard.press("+")  # keyboard zoom
    page.wait_for_function("document.querySelector('#chart')?.dataset.loaded === '3'")

    page.goto(f"{live_server.url}/search")
    page.wait_for_selector("#result-rows tr")
    assert page.locator("#result-rows tr").count() == 2
    page.fill("input[name=hr_max_above]", "140")
    page.click("#search-form button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#result-rows tr').length === 1")
    assert "palpitations" in page.locator("#result-rows").inner_text()
    page.fill("input[name=severity_min]", "4")
    page.fill("input[name=severity_max]", "2")
    page.click("#search-form button[type=submit]")  # the server's message reaches the clinician
    page.wait_for_function("document.querySelector('#search-error')?.textContent.includes('severity_max')")
    page.fill("input[name=severity_min]", "")
    page.fill("input[name=severity_max]", "")
    corr = page.locator("#corr-rows tr", has_text="Lea Trend").inner_text().split("\t")
    assert corr[1:] == ["2", "2", "2", "0"]
    page.fill("input[name=hr_max_above]", "")
    page.click("#search-form button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#result-rows tr').length === 2")
    shot(page, "portal-search")

    page.get_by_role("link", name="view strip").first.click()
    page.wait_for_function("document.querySelector('#ecg')?.dataset.seconds === '10'")
    # 25 mm/s at 4 px/mm: a 10 s strip is 1000 px wide
    assert page.evaluate("document.querySelector('#ecg').width") == 1001
    assert "13 beats" in page.locator("#strip-facts").inner_text()  # as annotated in the record
    assert f"/strips/{pid}/" in page.url
    shot(page, "portal-strip")

    page.goto(f"{live_server.url}/patients/{pid}/thresholds")
    page.wait_for_function("document.querySelector('#dist-facts')?.textContent.length > 0")
    assert "usable windows" in page.locator("#dist-facts").inner_text()
    assert "collecting" in page.locator("#th-phase").inner_text()
    page.get_by_role("button", name="Propose from the baseline").click()
    page.locator("#th-versions tr", has_text="proposed").wait_for()
    page.get_by_role("button", name="Approve").click()  # no reason: the form refuses to submit
    assert page.evaluate("document.querySelector('#th-reason').matches(':invalid')")
    assert page.locator("#th-versions tr", has_text="approved").count() == 0
    page.get_by_label("hr yellow high").first.fill("105")
    page.fill("#th-reason", "resting HR low; earlier warning wanted")
    page.get_by_role("button", name="Approve").click()
    page.locator("#th-versions tr", has_text="approved").wait_for()
    assert "version 1" in page.locator("#th-status").inner_text()
    shot(page, "portal-thresholds")
    with psycopg.connect(db_url) as conn:
        (limits, reason) = conn.execute(
            "SELECT limits, reason FROM threshold_versions WHERE patient_id = %s AND status = 'approved'", (pid,)
        ).fetchone()  # fmt: skip
    assert reason == "resting HR low; earlier warning wanted"
    assert any(k.startswith("hr") and v.get("yellow_high") == 105 for k, v in limits.items())


def test_pages_fit_a_tablet(browser: Any, live_server: LiveServer, db_url: str, device_id: str) -> None:
    """At 768 x 1024 no page scrolls sideways (wide tables scroll inside themselves)."""
    pid = seed(live_server, db_url, device_id)
    context = browser.new_context(viewport={"width": 768, "height": 1024}, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, live_server)
        page.wait_for_selector("#patient-rows tr")
        pages = {"overview": None, "patient": f"/patients/{pid}", "search": "/search",
                 "medication": f"/patients/{pid}/medication"}
        for name, path in pages.items():
            if path:
                page.goto(f"{live_server.url}{path}")
            page.wait_for_selector("#who:not(:empty)")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
            shot(page, f"portal-tablet-{name}")
    finally:
        context.close()
