"""The patient's app: its API in-process, then the page in real headless Chromium at phone size.

The browser test runs the whole chain: a virtual strap in real time -> the
agent -> its app (uvicorn on loopback) <- Chromium taps; the marks, the panic
and the feedback go through the outbox and the real broker to the real server,
where the test reads them back from the database; a yellow notification sent
by the server's notifier comes back down through the broker onto the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import httpx

from edge.agent import EdgeAgent
from edge.app import create_app, make_server
from edge.outbox import Outbox
from edge.uplink import Uplink
from server.embedded import free_port, wait_for_port
from server.notify import Notifier
from server.records import AlertChange
from simulators.scenarios import load_scenario
from simulators.wearable import VirtualWearable
from tests.fix_server import LiveServer, provision
from tests.server.helpers import mqtt_client
from wire import BrokerAddress, Config, EventType, Limits, decode


class AppClient:
    """A synchronous view of the ASGI app (one request per call, on a private event loop)."""

    def __init__(self, agent: EdgeAgent) -> None:
        self.app = create_app(agent)

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://phone") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, json: Any) -> httpx.Response:
        return self.request("POST", path, json=json)


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def test_api_refuses_unconfirmed_panic_and_unknown_tags(tmp_path: Path) -> None:
    wearable = VirtualWearable(load_scenario("baseline"), start_time=1_700_000_000.0, duration_s=5, speed=0)
    with Outbox(tmp_path / "o.sqlite3") as box:
        agent = EdgeAgent("dev-app", wearable, box)
        with AppClient(agent) as client:
            assert client.post("/api/panic", json={}).status_code == 409
            assert client.post("/api/symptom", json={"action": "start", "tags": ["itchy"]}).status_code == 422
            assert client.post("/api/symptom", json={"action": "start", "severity": 9}).status_code == 422
            assert box.pending_count() == 0  # nothing was recorded by refused requests
            assert client.post("/api/panic", json={"confirmed": True}).json() == {"seq": 0}
            started = client.post("/api/symptom", json={"action": "start", "tags": ["dizziness"]}).json()
            assert client.get("/api/status").json()["open_period"] == started["period"]
            assert client.post("/api/feedback", json={"text": "bigger letters please"}).status_code == 200
            page = client.get("/")
            assert page.status_code == 200 and "I don't feel well" in page.text and "http" not in page.text
        types = [decode(p.payload).type for p in box.pending(10)]  # type: ignore[union-attr]
    assert types == [EventType.PANIC, EventType.SYMPTOM_START, EventType.FEEDBACK]


def test_offline_status_shows_local_warning_and_problems(tmp_path: Path) -> None:
    wearable = VirtualWearable(load_scenario("tachy_episode"), start_time=1_700_000_000.0, duration_s=240, speed=0)
    with Outbox(tmp_path / "o.sqlite3") as box:
        agent = EdgeAgent("dev-app", wearable, box, window_seconds=10)
        agent.apply_config(Config("dev-app", 1, 1_700_000_000.0, limits=(("hr", Limits(yellow_high=85, red_high=130)),)))
        asyncio.run(agent.run())
        with AppClient(agent) as client:
            status = client.get("/api/status").json()
    assert status["online"] is False and status["pending"] > 0 and status["last_upload"] is None
    assert status["hr"] is not None and status["battery"] is not None
    assert status["notifications"] and status["notifications"][-1]["level"] == "yellow"
    assert "local_warnings" in status["problems"]


class RunningAgent:
    """An agent with uplink and app on its own event loop in a thread (Playwright owns the main loop)."""

    def __init__(self, agent: EdgeAgent, port: int) -> None:
        self.agent, self.port = agent, port
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except asyncio.CancelledError:
            pass  # stopped by __exit__
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self.server = make_server(self.agent, port=self.port)
        self._task = asyncio.create_task(self.agent.run())
        await asyncio.gather(self.server.serve(), self._task, return_exceptions=True)

    def _stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            self._task.cancel()

    def __enter__(self) -> RunningAgent:
        self.thread.start()
        wait_for_port("127.0.0.1", self.port, 15)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self._stop)
        self.thread.join(timeout=15)
        assert self.agent.uplink is not None
        self.agent.uplink.stop()


def _events(db_url: str, device: str) -> list[tuple[int, str, list[str], int | None]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT seq, type, tags, severity FROM events WHERE device_id = %s ORDER BY seq", (device,)
        ).fetchall()
    return [(int(s), str(t), list(tags or []), sev) for s, t, tags, sev in rows]


def _wait(cond: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    return cond()


@pytest.fixture
def running(live_server: LiveServer, db_url: str, mqtt_url: str, device_id: str, tmp_path: Path) -> Iterator[RunningAgent]:
    provision(db_url, device_id, live_server.username)
    box = Outbox(tmp_path / "o.sqlite3")
    wearable = VirtualWearable(load_scenario("baseline"), start_time=time.time(), duration_s=600, speed=1)
    uplink = Uplink(device_id, BrokerAddress.parse(mqtt_url), box, session_expiry_s=60)
    agent = EdgeAgent(device_id, wearable, box, uplink, window_seconds=5, batch_windows=1)
    with RunningAgent(agent, free_port()) as running:
        yield running
    box.close()


@pytest.mark.mqtt
@pytest.mark.db
@pytest.mark.e2e
def test_phone_page_marks_and_panic_reach_the_server(
    browser: Any, running: RunningAgent, db_url: str, mqtt_url: str
) -> None:
    device = running.agent.device_id
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    server_side = mqtt_client(mqtt_url)
    try:
        page.goto(f"http://127.0.0.1:{running.port}/")
        page.get_by_text("Online").wait_for()  # the status tile follows the broker link
        heights = [b.bounding_box()["height"] for b in page.get_by_role("button").all() if b.is_visible()]
        assert len(heights) >= 3 and min(heights) >= 56  # touch targets, one thumb
        page.locator("#hr").filter(has_text="7").wait_for()  # a current heart rate around 70
        # a yellow alert, sent by the server's own notifier, reaches the page through the broker
        yellow = AlertChange(41, "open", "yellow", "hr", time.time(), {"value": 118})
        assert Notifier(server_side).send(device, [yellow]) == 1
        page.locator("#alerts .alert.yellow", has_text="Heart rate outside your range").wait_for()
        assert "118/min" in page.locator("#alerts").inner_text()
        unwell = page.get_by_role("button", name="I don't feel well")
        box = unwell.bounding_box()
        assert box is not None and box["height"] >= 90 and box["width"] >= 300  # one thumb, arm's length
        unwell.tap()
        page.get_by_label("Palpitations").check()
        page.get_by_label("Dizziness").check()
        page.get_by_label("Note (optional)").fill("climbing stairs")
        page.get_by_role("button", name="Start now").tap()
        page.get_by_role("button", name="I feel better now").wait_for()
        page.get_by_role("button", name="Emergency").tap()
        page.get_by_role("button", name="No, cancel").tap()  # the confirmation step guards against pocket presses
        page.get_by_role("button", name="Emergency").tap()
        page.get_by_role("button", name="Yes, send for help").tap()
        page.get_by_text("Help has been called").wait_for()
        page.get_by_role("button", name="I feel better now").tap()
        page.get_by_role("button", name="I don't feel well").wait_for()
        page.get_by_label("Tell us how the service could be better").fill("bigger letters please")
        page.get_by_role("button", name="Send feedback").tap()
        page.get_by_text("Thank you for your feedback.").wait_for()
        events = _wait(lambda: len(_events(db_url, device)) >= 4 and _events(db_url, device))
    finally:
        context.close()
        server_side.disconnect()
        server_side.loop_stop()
    assert fetched and all(url.startswith(f"http://127.0.0.1:{running.port}/") for url in fetched)  # no CDN
    assert [e[1] for e in events] == [
        EventType.SYMPTOM_START.value, EventType.PANIC.value, EventType.SYMPTOM_STOP.value, EventType.FEEDBACK.value
    ]
    assert events[0][2] == ["palpitations", "dizziness"] and events[0][3] == 3
    assert [e[0] for e in events] == sorted(e[0] for e in events)


def _doses(db_url: str, device: str) -> list[tuple[str, str, float]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT type, drug, extract(epoch FROM planned_at) FROM events WHERE device_id = %s AND drug IS NOT NULL"
            " ORDER BY seq", (device,),
        ).fetchall()  # fmt: skip
    return [(str(t), str(d), float(p)) for t, d, p in rows]


@pytest.mark.mqtt
@pytest.mark.db
@pytest.mark.e2e
def test_phone_page_shows_the_reminder_of_a_plan_from_the_server_and_a_taken_tap_reaches_it(
    browser: Any, running: RunningAgent, db_url: str
) -> None:
    from datetime import datetime, timezone

    from server import medication
    from server.records import device_patient
    from wire.medication import Drug, MedicationPlan

    device = running.agent.device_id
    now = time.time()
    due = datetime.fromtimestamp(now - 300, timezone.utc).strftime("%H:%M")  # planned five minutes ago
    plan = MedicationPlan(1, 0.0, "UTC", (Drug("bisoprolol", "5 mg", (due,), instructions="with water"),))
    with psycopg.connect(db_url, autocommit=True) as conn:  # as a clinician's plan, in force for two hours
        patient = device_patient(conn, device)
        assert patient is not None
        medication.record_plan(conn, patient, None, plan, since=datetime.fromtimestamp(now - 7200, timezone.utc))
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"http://127.0.0.1:{running.port}/")
        page.get_by_text("Online").wait_for()
        card = page.get_by_role("group", name="Time for bisoprolol")  # the retained config brought the plan
        card.wait_for()
        assert "5 mg" in card.inner_text() and "with water" in card.inner_text()
        taken = card.get_by_role("button", name="Taken: bisoprolol 5 mg")
        box = taken.bounding_box()
        assert box is not None and box["height"] >= 90  # the one-tap answer is the big button
        taken.tap()
        page.get_by_text("Recorded: bisoprolol taken.").wait_for()
        card.wait_for(state="detached")
        stored = _wait(lambda: _doses(db_url, device))
    finally:
        context.close()
    (planned,) = [d.planned for d in running.agent.doses.book.entries.values()]
    assert stored == [("dose_taken", "bisoprolol", planned)]
    assert abs(planned - (now - 300)) < 60
