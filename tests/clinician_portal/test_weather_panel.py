"""The patient page's "Vitals and weather" panel in real headless Chromium."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from server import consent, weather
from server.ingest import handle_message, rule_config
from simulators.weather import weather_hourly
from tests.clinician_portal.test_browser import sign_in
from tests.clinician_portal.test_pages import shot
from tests.fix_server import LiveServer, provision
from tests.server.test_api_analysis import HOME, HOURS, T, hourly_windows
from wire import encode, topic_for

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]

PAINTED = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n += 1;
  return n;
}"""


def seed(server: LiveServer, db_url: str, device_id: str) -> int:
    pid = provision(db_url, device_id, server.username, name="Wendy Weather")
    with psycopg.connect(db_url, autocommit=True) as conn:  # she shares her position and weather linkage
        for purpose in ("location", "weather"):
            consent.record(conn, pid, purpose, True, "patient", None, "in app")
    hours = weather_hourly(*HOME, T, HOURS, seed=9)
    msg = hourly_windows(device_id, 1, [h.temperature_c for h in hours], 2.0, 1, gps_hours=3)
    with psycopg.connect(db_url, autocommit=True) as conn:
        handle_message(conn, topic_for(device_id, msg.kind), encode(msg), rule_config(server.settings))
        with conn.transaction():
            weather.store_weather(conn, weather.from_simulator(*HOME, hours))
            weather.set_home(conn, pid, *HOME)
    return pid


def test_panel_shows_the_association_plots_table_and_csv(page: Any, live_server: LiveServer, db_url: str,
                                                         device_id: str) -> None:
    pid = seed(live_server, db_url, device_id)
    sign_in(page, live_server)
    page.wait_for_selector("#patient-rows tr")
    page.goto(f"{live_server.url}/patients/{pid}?start=2025-11-01T00:00:00Z&end=2025-11-11T00:00:00Z")
    page.wait_for_function("document.querySelector('#weather-panel')?.dataset.loaded === '1'")
    assert "heart rate ~ temperature" in page.locator("#wx-verdict").inner_text()
    # Three hours of GPS at home, two fixes 10 min apart in each: 1800 s tracked, all of it at home.
    assert "over 1 day" in page.locator("#wx-mobility").inner_text()
    assert "100 % of tracked time at home" in page.locator("#wx-mobility").inner_text()
    # The strongest weather association is shown first, as a scatter with its fitted line.
    assert page.locator("#wx-vital").input_value() == "hr"
    assert page.locator("#wx-factor").input_value() == "temperature"
    caption = page.locator("#wx-scatter-caption").inner_text()
    assert f"{HOURS} hours" in caption and "significant" in caption
    assert page.evaluate(PAINTED, "wx-scatter") > 1000 and page.evaluate(PAINTED, "wx-forest") > 500
    page.locator("#weather-panel summary").click()
    page.locator("#weather-panel").scroll_into_view_if_needed()
    shot(page, "portal-weather-panel")
    assert page.locator("#wx-rows tr").count() == 24
    assert page.locator("#wx-rows tr.significant").count() >= 2
    page.select_option("#wx-factor", "pressure")
    assert "against pressure" in page.locator("#wx-scatter-caption").inner_text()
    href = page.locator("#wx-csv").get_attribute("href")
    assert href.startswith(f"/api/patients/{pid}/analysis.csv?")
    text = page.evaluate("(u) => fetch(u).then((r) => r.text())", href)
    assert text.splitlines()[0].startswith("vital,factor,method,n_hours") and len(text.splitlines()) == 25
