"""The visit report page in real headless Chromium: content of every section, the ECG strip on paper, a visit
recorded from the page, the print layout, and a PDF of it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from server import consent, medication
from server.ingest import handle_message, rule_config
from tests.clinician_portal.test_browser import sign_in
from tests.clinician_portal.test_pages import mitdb_strip_uv, shot
from tests.fix_server import LiveServer, provision
from tests.server.test_api_report import block
from wire import Event, EventType, Strip, encode, topic_for
from wire.medication import Drug, MedicationPlan, schedule

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]

H = 3600.0
ZONE = "Europe/Ljubljana"


def seed(server: LiveServer, db_url: str, device: str) -> int:
    """Yesterday and today: quiet hours, an hour of AF with a marked period and its strip, a fast half hour,
    a pause, a panic press; a plan since the day before with two drugs and the phone's answers."""
    pid = provision(db_url, device, server.username, name="Vera Report")
    t = time.time() // 3600 * 3600 - 30 * H
    messages = [
        block(device, 1, t, 36, 70.0, ectopic=1),
        Event(device, 2, EventType.SYMPTOM_START, t + 6 * H + 600, period="af", tags=("palpitations",), severity=4,
              note="heart racing on the stairs"),
        block(device, 3, t + 6 * H, 6, 96.0, flags=("af_suspected", "irregular")),
        Strip(device, 4, t + 6 * H + 900, 360.0, "symptom", mitdb_strip_uv(), ref_seq=2),
        Event(device, 5, EventType.SYMPTOM_STOP, t + 6 * H + 2400, period="af"),
        block(device, 6, t + 7 * H, 3, 118.0),
        block(device, 7, t + 7.5 * H, 3, 70.0),
        block(device, 8, t + 8 * H, 1, 62.0, flags=("pause",), pause_max=3.2),
        block(device, 9, t + 20 * H, 24, 72.0),
        Event(device, 10, EventType.PANIC, t + 26 * H),
        *dose_answers(pid, db_url, device, t - 24 * H),
    ]  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        for msg in messages:
            handle_message(conn, topic_for(device, msg.kind), encode(msg), rule_config(server.settings))
    return pid


def dose_answers(pid: int, db_url: str, device: str, since: float) -> list[Event]:
    """Record a plan from ``since`` and answer its doses: bisoprolol (critical) taken, skipped for a reason,
    missed, then taken on time; apixaban always on time. Doses of the last minutes stay unanswered (open)."""
    plan = MedicationPlan(1, since, ZONE, (Drug("bisoprolol", "2.5 mg", ("08:00", "20:00"), critical=True),
                                           Drug("apixaban", "5 mg", ("09:00", "21:00"))))  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        medication.record_plan(conn, pid, None, plan, "after the echo", since=datetime.fromtimestamp(since, timezone.utc))
    events, biso = [], 0
    for seq, d in enumerate(schedule(plan, since, time.time() - 600), start=100):
        kind, at, note = EventType.DOSE_TAKEN, d.planned + 300, ""
        if d.drug == "bisoprolol":
            biso += 1
            kind, at, note = {2: (EventType.DOSE_SKIPPED, d.planned + 900, "felt dizzy"),
                              3: (EventType.DOSE_MISSED, d.closes_at, "")}.get(biso, (kind, at, note))  # fmt: skip
        events.append(Event(device, seq, kind, at, drug=d.drug, planned=d.planned, note=note))
    return events


def pct(v: float | None) -> str:
    return "—" if v is None else f"{v:g} %"


def adherence_cells(drug: dict[str, Any]) -> list[str]:
    """A drug's row as the page should show it, from the report model."""
    open_ = f" ({drug['pending']} still open)" if drug["pending"] else ""
    return [f"{drug['planned']}{open_}", f"{pct(drug['on_time_pct'])} ({drug['taken_on_time']})",
            pct(drug["recent_on_time_pct"]), *(str(drug[k]) for k in ("taken_late", "skipped", "missed", "unconfirmed")),
            str(drug["longest_missed_streak"])]  # fmt: skip


@pytest.fixture
def report_page(browser: Any) -> Iterator[Any]:
    """A page whose browser lives in Ljubljana (the report's days follow the browser's time zone)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=ZONE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def test_report_page_shows_every_section_records_a_visit_and_prints(
    report_page: Any, live_server: LiveServer, db_url: str, device_id: str
) -> None:
    page = report_page
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text))
    pid = seed(live_server, db_url, device_id)
    sign_in(page, live_server)
    page.wait_for_selector("#patient-rows tr")
    with psycopg.connect(db_url) as conn:
        (panic,) = conn.execute("SELECT id FROM alerts WHERE patient_id = %s AND parameter = 'panic'", (pid,)).fetchone()
    assert page.request.post(f"{live_server.url}/api/alerts/{panic}/acknowledge", data={"note": "phone dropped"}).ok

    page.goto(f"{live_server.url}/patients/{pid}")
    page.wait_for_function("document.querySelector('#report-link')?.href.endsWith('/report')")
    page.get_by_role("link", name="Visit report").click()
    page.wait_for_selector("#report[data-loaded='1']")
    assert page.url.endswith(f"/patients/{pid}/report")
    assert "no visit recorded" in page.locator("#r-period").inner_text()  # the last 30 days
    assert f"days in {ZONE}" in page.locator("#r-facts").inner_text()

    glance = page.locator("#r-headlines").inner_text()
    assert re.search(r"AF burden \d+(\.\d+)? % over \d+\.\d h monitored", glance), glance
    assert "1 with an arrhythmia flag" in glance
    # low adherence is raised first at a glance, marked
    first = page.locator("#r-headlines > div").first
    assert first.get_attribute("class") == "glance-adherence r-flagged"
    assert first.inner_text().lower().startswith("medication adherence low adherence")
    assert "Below 80 % on time: bisoprolol (critical)" in first.inner_text()
    assert "last 7 days" not in first.inner_text()  # every dose lies in them: the same share is not said twice
    sections = page.locator("#r-sections section")
    assert [sections.nth(i).get_attribute("data-key") for i in range(sections.count())] == [
        "trends", "alerts", "symptoms", "rhythm", "adherence", "completeness"]

    alerts = page.locator("section[data-key=alerts]").inner_text()
    assert f"acknowledged by {live_server.username} after" in alerts and "“phone dropped”" in alerts
    assert "resolved by the rules" in alerts  # the fast half hour's alert
    trends = page.locator("section[data-key=trends]")
    assert "Heart rate" in trends.inner_text() and "(NEWS2)" in trends.inner_text()
    assert page.evaluate("document.querySelector('.r-chart').width") >= 480

    symptoms = page.locator("section[data-key=symptoms]")
    assert "palpitations · severity 4/5 · “heart racing on the stairs”" in symptoms.inner_text()
    assert "HR 96 bpm (88–108), AF suspected, irregular rhythm" in symptoms.inner_text()
    figure = symptoms.locator("figure.r-strip")
    figure.locator("canvas").nth(1).wait_for()
    # MIT-BIH 100, 10 s: the last 14 s of it are two rows, 7 s and 3 s, at 25 mm/s (6 px a paper mm)
    rows = figure.locator("canvas")
    assert [rows.nth(i).get_attribute("data-seconds") for i in range(rows.count())] == ["7", "3"]
    assert rows.nth(0).evaluate("c => [c.width, c.style.width]") == [7 * 25 * 6 + 1, "175mm"]
    assert figure.get_attribute("data-beats") == "13"  # as annotated in the record
    adherence = page.locator("section[data-key=adherence]")
    model = page.request.get(f"{live_server.url}/api/patients/{pid}/report", params={"tz": ZONE}).json()
    drugs = next(s["body"] for s in model["sections"] if s["key"] == "adherence")["drugs"]
    rows = adherence.locator("tbody tr")
    assert [rows.nth(i).locator("th").inner_text() for i in range(rows.count())] == [
        "apixaban 5 mg", "bisoprolol 2.5 mg critical"]
    for i, drug in enumerate(drugs):
        assert rows.nth(i).locator("td").all_inner_texts() == adherence_cells(drug)
    biso = drugs[1]
    assert (biso["skipped"], biso["missed"], biso["longest_missed_streak"], biso["taken_late"]) == (1, 1, 2, 0)
    assert (biso["low"], drugs[0]["low"], drugs[0]["on_time_pct"]) == (True, False, 100.0)
    assert rows.nth(1).get_attribute("class") == "low" and rows.nth(0).get_attribute("class") is None
    assert adherence.locator("th", has_text="Last 7 days").is_visible()  # a 30-day report: the overview's window too
    assert "bisoprolol skipped: “felt dizzy”" in adherence.inner_text()
    assert "version 1 since" in adherence.inner_text() and "“after the echo”" in adherence.inner_text()
    assert re.search(r"\d+ short days", page.locator("section[data-key=completeness]").inner_text())
    shot(page, "portal-report")
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet: nothing scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.fill("#visit-note", "AF burden discussed; bisoprolol 2.5 mg")
    page.get_by_role("button", name="Record visit").click()
    page.wait_for_function("document.querySelector('#visit-status')?.textContent.length > 0")
    assert page.locator("#visit-status").inner_text().startswith("Visit of"), page.locator("#visit-status").inner_text()
    page.locator("#visit-rows tr", has_text="bisoprolol 2.5 mg").wait_for()
    assert "start=" in page.url  # the report shown keeps its period
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT v.note, u.username FROM visits v JOIN users u ON u.id = v.recorded_by"
                           " WHERE v.patient_id = %s", (pid,)).fetchone()  # fmt: skip
    assert row == ("AF burden discussed; bisoprolol 2.5 mg", live_server.username)

    page.emulate_media(media="print")
    for hidden in ("header", "#visit-panel", "#period-form"):
        assert page.locator(hidden).is_hidden(), hidden
    assert page.locator("#r-headlines").is_visible() and page.locator("figure.r-strip canvas").first.is_visible()
    shot(page, "portal-report-print")
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 20_000
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) >= 1

    page.goto(f"{live_server.url}/patients/{pid}/report")  # the next report starts at the visit
    page.wait_for_selector("#report[data-loaded='1']")
    assert "since the visit of" in page.locator("#r-period").inner_text()
    assert "bisoprolol 2.5 mg" in page.locator("#r-period").inner_text()
    # the policy is report-only here; the harness's own string evaluations (wait_for_function) are the only reports
    csp = [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
    assert [m for m in csp if "Evaluating a string as JavaScript" not in m] == []


def test_an_alert_closed_by_a_consent_pause_reads_so_not_as_resolved_by_the_rules(
    report_page: Any, live_server: LiveServer, db_url: str, device_id: str
) -> None:
    page = report_page
    pid = provision(db_url, device_id, live_server.username, name="Rui Paused")
    t = time.time() // 3600 * 3600 - 3 * H
    with psycopg.connect(db_url, autocommit=True) as conn:
        msg = block(device_id, 1, t, 1, 62.0, flags=("pause",), pause_max=3.2)  # a red pause alert
        handle_message(conn, topic_for(device_id, msg.kind), encode(msg), rule_config(live_server.settings))
        consent.record(conn, pid, "monitoring", False, "patient", None, "in app")  # closes it
    sign_in(page, live_server)
    page.wait_for_selector("#patient-rows tr")
    page.goto(f"{live_server.url}/patients/{pid}/report")
    page.wait_for_selector("#report[data-loaded]", state="attached")
    assert page.get_attribute("#report", "data-loaded") == "1", page.locator("#r-period").inner_text()
    alerts = page.locator("section[data-key=alerts]")
    assert "closed: monitoring paused (the patient withdrew consent)" in alerts.inner_text()
    assert "resolved by the rules" not in alerts.inner_text()
    header = alerts.locator("table").first.locator("th")
    cells = alerts.locator("table").first.locator("tbody tr").first.locator("td")
    row = dict(zip(header.all_inner_texts(), cells.all_inner_texts()))
    assert (row["Resolved by the rules"], row["Closed by a consent pause"], row["Still active"]) == ("0", "1", "0")
