"""The patient's page, the caregiver's view and the clinician's consent panel in real headless Chromium,
under the enforced Content-Security-Policy: accounts from codes, consent, caregivers, a live alert, revocation.

(Selectors only, no script evaluation in the page: the enforced policy would refuse it.)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from server.app import create_app
from server.ingest import handle_message, rule_config
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient
from tests.server.test_security_routes import serve
from wire import Event, EventType, encode, topic_for

pytestmark = [pytest.mark.e2e, pytest.mark.db]

PASSWORD = "correct horse battery"
SHOTS = os.environ.get("PISCES_TEST_SCREENSHOTS")


@dataclass(frozen=True)
class Site:
    url: str
    db_url: str
    settings: ServerSettings
    nurse: str
    patient: int
    device: str
    name: str
    tag: str


@pytest.fixture
def site(db_url: str) -> Iterator[Site]:
    tag = secrets.token_hex(3)
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, f"nurse-{tag}", PASSWORD)
        patient = add_patient(conn, f"Nora {tag}", f"np-{tag}")
        assign_patient(conn, f"nurse-{tag}", patient)
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False,
                              csp_enforce=True)  # fmt: skip
    with serve(create_app(settings)) as url:
        yield Site(url, db_url, settings, f"nurse-{tag}", patient, f"np-{tag}", f"Nora {tag}", tag)


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def watch(page: Any, messages: list[str]) -> Any:
    page.on("console", lambda msg: messages.append(msg.text))
    page.on("pageerror", lambda exc: messages.append(str(exc)))
    return page


def join(page: Any, site: Site, code: str, username: str) -> None:
    page.goto(f"{site.url}/join")
    page.fill("#code", code)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.click("#join-form button[type=submit]")


def account_code(site: Site) -> str:
    r = httpx.post(f"{site.url}/api/auth/login", json={"username": site.nurse, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    made = httpx.post(f"{site.url}/api/patients/{site.patient}/account-invitation", headers=headers)
    assert made.status_code == 201, made.text
    return str(made.json()["code"])


def test_a_patient_manages_consent_and_caregivers_and_the_caregiver_follows_live(
    page: Any, browser: Any, site: Site
) -> None:
    messages: list[str] = []
    watch(page, messages)
    join(page, site, "WRONG-CODE-0000", f"nora-{site.tag}")
    page.locator("#join-error", has_text="unknown").wait_for()
    join(page, site, account_code(site), f"nora-{site.tag}")
    page.wait_for_url("**/me")
    page.locator("#me-status", has_text=site.name).wait_for()
    page.locator("#main[data-loaded]").wait_for(state="attached")
    page.locator("#consent-rows tr[data-purpose=monitoring][data-granted=true]").wait_for()
    assert page.locator("#invite-form button[type=submit]").is_disabled()  # no caregiver consent yet

    page.get_by_role("button", name="Allow caregiver access").click()
    page.locator("#consent-rows tr[data-purpose=caregivers][data-granted=true]").wait_for()
    page.locator("#consent-history tr", has_text="caregivers").wait_for(state="attached")
    page.fill("#invite-label", "my son")
    page.check("#invite-form input[value=alerts]")
    page.select_option("#invite-notify", "yellow")
    page.click("#invite-form button[type=submit]")
    page.locator("#invite-code[data-code]").wait_for()
    code = page.locator("#invite-code").get_attribute("data-code")
    assert code and code in page.locator("#invite-code").inner_text()
    page.locator("#invitation-rows li[data-status=pending]").wait_for()
    shot(page, "patient-page")

    carer = watch(browser.new_context(viewport={"width": 1280, "height": 800}).new_page(), messages)
    carer.set_default_timeout(15_000)
    join(carer, site, code, f"tom-{site.tag}")
    carer.wait_for_url("**/caregiver")
    card = carer.locator(f"article[data-patient='{site.patient}']")
    card.locator("h3", has_text=f"{site.name} (my son)").wait_for()
    card.locator("p[data-state]").wait_for()
    carer.locator("#live.on").wait_for()
    assert card.locator("table.trends").count() == 0  # trends were not shared

    with psycopg.connect(site.db_url, autocommit=True) as conn:  # Nora presses the panic button
        panic = Event(site.device, 1, EventType.PANIC, 1_700_000_000.0)
        handle_message(conn, topic_for(site.device, panic.kind), encode(panic), rule_config(site.settings))
    card.locator("li.alert.red", has_text="panic").wait_for()  # arrives without a reload
    shot(carer, "caregiver-view")

    page.reload()
    row = page.locator("#caregiver-rows tr", has_text=f"tom-{site.tag}")
    row.get_by_role("button", name="Revoke").click()
    page.locator("#caregiver-rows tr.revoked", has_text=f"tom-{site.tag}").wait_for()
    carer.reload()
    carer.locator("#none").wait_for(state="visible")
    assert carer.locator("article.followed").count() == 0

    page.get_by_role("button", name="Withdraw monitoring by the care team").click()
    page.locator("#me-status", has_text="monitoring is paused").wait_for()
    carer.context.close()
    violations = [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
    assert violations == []


def test_the_clinician_sees_consent_records_it_and_the_weather_panel_keeps_within_it(
    page: Any, site: Site
) -> None:
    messages: list[str] = []
    watch(page, messages)
    page.goto(f"{site.url}/login")
    page.fill("#username", site.nurse)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(f"#patient-rows >> text={site.name}")
    page.goto(f"{site.url}/patients/{site.patient}")
    page.locator("#consent-rows tr[data-purpose=monitoring][data-granted=true]").wait_for()
    page.locator("#wx-verdict", has_text="weather linkage (purpose weather)").wait_for()
    page.select_option("#consent-purpose", "weather")
    page.fill("#consent-method", "signed form")
    page.click("#consent-form button[type=submit]")
    page.locator("#consent-rows tr[data-purpose=weather][data-granted=true]", has_text="signed form").wait_for()
    page.select_option("#consent-purpose", "monitoring")
    page.select_option("#consent-granted", "false")
    page.click("#consent-form button[type=submit]")
    page.locator("#consent-rows tr[data-purpose=monitoring][data-granted=false]").wait_for()
    page.get_by_role("button", name="Code for the patient's own account").click()
    page.locator("#account-code", has_text="/join").wait_for()
    page.goto(f"{site.url}/")
    page.locator("#patient-rows tr[data-state=paused]", has_text=site.name).wait_for()
    assert "monitoring paused" in page.locator("#patient-rows tr[data-state=paused]").inner_text().lower()
    shot(page, "clinician-consent")
    assert [m for m in messages if "Content Security Policy" in m or "Refused to" in m] == []
