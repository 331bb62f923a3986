"""Medication in the portal, in real headless Chromium: the overview flags low adherence, the patient page
shows adherence per drug and the doses beside the heart rate, and the plan editor saves a new version."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from server import medication
from server.ingest import handle_message, rule_config
from tests.clinician_portal.test_browser import sign_in
from tests.clinician_portal.test_pages import shot
from tests.fix_server import LiveServer, provision
from tests.server.test_api_portal import windows
from wire import Event, EventType, encode, topic_for
from wire.medication import Drug, MedicationPlan, schedule

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]


def hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M")


def seed(server: LiveServer, db_url: str, device: str) -> tuple[int, float]:
    """A day of heart rate that drops after each bisoprolol dose taken; one of its doses missed, apixaban
    skipped once and taken late once."""
    pid = provision(db_url, device, server.username, name="Rok Dose")
    t = time.time() // 3600 * 3600 - 24 * 3600
    bisoprolol = Drug("bisoprolol", "5 mg", (hhmm(t + 2 * 3600), hhmm(t + 14 * 3600)), critical=True)
    plan = MedicationPlan(1, t, "UTC", (bisoprolol, Drug("apixaban", "5 mg", (hhmm(t + 3 * 3600), hhmm(t + 15 * 3600)))))
    bis_am, apx_am, bis_pm, apx_pm = schedule(plan, t, t + 24 * 3600)
    hr = [(68.0 if 2.1 * 60 <= i < 8 * 60 else 82.0, (), 0.9) for i in range(24 * 60)]  # minute by minute
    messages = [
        windows(device, 1, t, hr[:720]), windows(device, 2, t + 720 * 60, hr[720:]),
        Event(device, 3, EventType.DOSE_TAKEN, bis_am.planned + 300, drug="bisoprolol", planned=bis_am.planned),
        Event(device, 4, EventType.DOSE_SKIPPED, apx_am.planned + 200, note="side effects", drug="apixaban",
              planned=apx_am.planned),
        Event(device, 5, EventType.DOSE_MISSED, bis_pm.closes_at, drug="bisoprolol", planned=bis_pm.planned),
        Event(device, 6, EventType.DOSE_TAKEN, apx_pm.planned + 5400, drug="apixaban", planned=apx_pm.planned),
    ]  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        medication.record_plan(conn, pid, None, plan, "started", since=datetime.fromtimestamp(t, timezone.utc))
        for msg in messages:
            handle_message(conn, topic_for(device, msg.kind), encode(msg), rule_config(server.settings))
    return pid, t


def test_adherence_in_the_overview_the_patient_page_and_the_plan_editor(
    page: Any, live_server: LiveServer, db_url: str, device_id: str
) -> None:
    pid, t = seed(live_server, db_url, device_id)
    sign_in(page, live_server)
    row = page.locator("#patient-rows tr", has_text="Rok Dose")
    row.locator("td[data-low=true]").wait_for()  # apixaban: skipped once, late once
    assert "0 % on time, 7 days (apixaban) · low" in row.inner_text()  # the drug taken on time least often
    shot(page, "portal-overview-adherence")

    row.get_by_role("link", name="Rok Dose").click()
    page.wait_for_function("document.querySelector('#chart')?.dataset.loaded === '1'")
    table = {r.locator("th").inner_text(): r.locator("td").all_inner_texts()
             for r in page.locator("#adherence-rows tr").all()}  # fmt: skip
    assert table == {"apixaban": ["2", "0", "1", "1", "0", "0", "0 %", "1"],
                     "bisoprolol (critical)": ["2", "1", "0", "0", "1", "0", "50 %", "1"]}  # fmt: skip
    assert page.evaluate("document.querySelector('#chart').dataset.doses") == "4"
    events = page.locator("#event-rows").inner_text()
    assert "dose missed" in events and "dose skipped" in events and "side effects" in events
    assert "dose taken late" in events
    shot(page, "portal-patient-doses")

    page.get_by_role("link", name="Medication plan").click()
    page.wait_for_function("document.querySelector('#med-status')?.textContent.includes('Version 1')")
    assert page.get_by_label("Drug of drug 1").input_value() == "bisoprolol"
    page.get_by_label("Dose of drug 1").fill("2.5 mg")
    page.get_by_role("button", name="Add a drug").click()
    page.keyboard.type("furosemide")  # the new row's first field has the focus
    page.get_by_label("Dose of drug 3").fill("40 mg")
    page.get_by_label("Times of day of drug 3").fill("07:00")
    page.get_by_label("Time zone (IANA)").fill("Mars/Base")
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_function("document.querySelector('#med-error')?.textContent.includes('time_zone')")
    page.get_by_label("Time zone (IANA)").fill("Europe/Ljubljana")
    page.get_by_label("Reason for the change").fill("heart rate low at night")
    page.get_by_role("button", name="Save as a new version").click()
    page.wait_for_function("document.querySelector('#med-status')?.textContent.includes('Version 2')")
    assert page.locator("#med-versions tr").count() == 2
    shot(page, "portal-medication-editor")
    with psycopg.connect(db_url) as conn:
        (drugs, tz, reason) = conn.execute(
            "SELECT drugs, time_zone, reason FROM medication_plans WHERE patient_id = %s AND version = 2", (pid,)
        ).fetchone()  # fmt: skip
    assert [(d["name"], d["dose"], d["times"]) for d in drugs] == [
        ("bisoprolol", "2.5 mg", [hhmm(t + 2 * 3600), hhmm(t + 14 * 3600)]),
        ("apixaban", "5 mg", [hhmm(t + 3 * 3600), hhmm(t + 15 * 3600)]), ("furosemide", "40 mg", ["07:00"])]
    assert drugs[0]["critical"] is True and (tz, reason) == ("Europe/Ljubljana", "heart rate low at night")
