"""A simulated patient: a virtual strap and scripted actions driving the real edge agent.

:func:`run_patient` builds the same :class:`edge.agent.EdgeAgent`, outbox and
MQTT uplink a phone would use, feeds it a :class:`VirtualWearable`, performs
the scenario's actions (symptom marks, panic) through the public
:func:`edge.agent.mark_symptom` / :func:`edge.agent.press_panic` at their
simulated times, taps its dose reminders as the ground truth says (through the
agent's :class:`edge.doses.DoseKeeper`, as the app does), and finally waits
until the outbox is drained. A scenario with medication starts with its plan
on the phone, as if the server's retained config had arrived before (give
``plan`` to use the server's own version of it); the agent's clock is the
simulated one. Several
patients can run concurrently in one event loop.

While the scenario has the phone offline (``"phone": "offline"`` segments), the
uplink publishes nothing: messages wait in the outbox, as on a phone without a
network, and go out when it is back (the MQTT session itself stays up, so the
broker sees no last will; a dropped session is the uplink's own business).

The phone has the scenario's GPS track as its location source
(:func:`simulators.gps.track_source`); positions leave it only while the
server's ``config`` says the patient consented (``share_location``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from edge.agent import EdgeAgent, mark_symptom, press_panic
from edge.doses import DoseError, DoseKeeper
from edge.outbox import Outbox
from edge.sensors import Notification
from edge.uplink import Uplink
from simulators.gps import track_source
from simulators.medication import DoseTruth, hr_offsets
from simulators.scenarios import Action, Scenario
from simulators.truth import scenario_doses
from simulators.wearable import VirtualWearable
from wire import BrokerAddress, Config
from wire.medication import MedicationPlan

DRAIN_TIMEOUT_S = 30.0
STRIP_SECONDS = 30.0


@dataclass(frozen=True)
class PatientRunReport:
    """What one simulated patient run did."""

    device_id: str
    windows: int
    summaries: int
    strips: int
    events: int
    published: int
    acked: int
    pending: int  # messages left in the outbox at the end (0 when drained)
    bad_frames: int
    drained: bool
    dose_taps: int = 0  # dose reminders tapped (taken or skipped)
    dose_errors: int = 0  # taps the phone refused (none expected)


class _PhoneUplink(Uplink):
    """The real uplink, silent while the simulated phone has no network."""

    def __init__(self, *args: object, online: Callable[[], bool], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._online = online

    def pump(self) -> int:
        """Publish and ack as the real uplink does, unless the phone is offline."""
        if not self._online():
            return 0
        return super().pump()


class _ActingSource:
    """Wraps a wearable; performs the patient's actions and dose taps when simulated time reaches them."""

    def __init__(self, wearable: VirtualWearable, outbox: Outbox, device_id: str, taps: list[DoseTruth]) -> None:
        self.wearable, self.outbox, self.device_id = wearable, outbox, device_id
        self.todo = [a for a in wearable.scenario.actions if a.at < wearable.duration_s]
        self.locate: Callable[[float], tuple[float, float] | None] | None = None  # the agent's panic_position
        self.taps = sorted((t for t in taps if t.tap is not None and t.tap < wearable.start_time + wearable.duration_s),
                           key=lambda t: t.tap or 0.0)  # fmt: skip
        self.doses: DoseKeeper | None = None  # the agent's, set once it exists
        self.done = self.tapped = self.refused = 0

    async def notifications(self) -> AsyncIterator[Notification]:
        async for note in self.wearable.notifications():
            while self.todo and self.wearable.start_time + self.todo[0].at <= note.time:
                self._act(self.todo.pop(0))
            while self.taps and (self.taps[0].tap or 0.0) <= note.time:
                self._tap(self.taps.pop(0))
            yield note

    def _act(self, action: Action) -> None:
        perform_action(self.outbox, self.device_id, action, self.wearable.start_time, self.locate)
        self.done += 1

    def _tap(self, dose: DoseTruth) -> None:
        assert self.doses is not None and dose.tap is not None and dose.action is not None
        try:
            self.doses.confirm(dose.drug, dose.planned, dose.action, dose.tap, dose.reason)
            self.tapped += 1
        except DoseError:
            self.refused += 1


def perform_action(
    outbox: Outbox, device_id: str, action: Action, start_time: float,
    locate: Callable[[float], tuple[float, float] | None] | None = None,
) -> None:
    """Do what the patient does in ``action`` (panic or symptom mark) through the edge's public calls.

    ``locate`` gives a panic its position (None: none), as the phone's app does.
    """
    at = start_time + action.at
    if action.type == "panic":
        press_panic(outbox, device_id, time=at, where=locate(at) if locate else None)
    else:
        verb = "start" if action.type == "symptom_start" else "stop"
        mark_symptom(outbox, device_id, verb, None, action.tags, action.severity, action.note, time=at)


async def run_patient(
    scenario: Scenario,
    device_id: str,
    mqtt_url: str,
    outbox_path: str | Path,
    *,
    start_time: float,
    duration_s: float,
    speed: float,
    window_seconds: float,
    batch_windows: int,
    mqtt_username: str | None = None,
    mqtt_password: str | None = None,
    drain_timeout_s: float = DRAIN_TIMEOUT_S,
    ground_truth_path: str | Path | None = None,
    strap: str = "h10",
    seed: int | None = None,
    plan: MedicationPlan | None = None,
) -> PatientRunReport:
    """Play ``scenario`` through a real edge agent to the broker at ``mqtt_url``.

    Args:
        scenario: the patient's script.
        device_id: the simulated phone's device id.
        mqtt_url: ``mqtt://[user:pass@]host:port``.
        outbox_path: the agent's SQLite outbox file.
        start_time: s since epoch of simulated second 0 (``now - duration_s``
            to produce a past record as fast as possible).
        duration_s: simulated seconds.
        speed: simulated seconds per real second; 0 or inf: as fast as possible.
        window_seconds, batch_windows: the agent's summary cadence.
        mqtt_username, mqtt_password: override the URL's credentials.
        drain_timeout_s: real seconds to wait for the broker's acks at the end.
        ground_truth_path: where to write the wearable's ground truth JSON, if anywhere.
        strap: ``"h10"`` (ECG and accelerometer too) or ``"hrs"`` (heart rate only).
        seed: overrides the scenario's seed.
        plan: the medication plan on the phone from the start (default: the scenario's, version 1,
            in force from ``start_time``); the taps follow the scenario's ground truth.

    Returns:
        Counts of what was produced, sent and acknowledged.
    """
    if plan is None and scenario.medication is not None:
        plan = scenario.medication.plan_at(start_time)
    taps = scenario_doses(scenario, start_time, duration_s, plan)
    if scenario.medication is not None:  # the drugs taken act on the heart rate
        scenario = replace(scenario, hr_offsets=hr_offsets(scenario.medication, taps, start_time))
    outbox = Outbox(outbox_path)
    wearable = VirtualWearable(
        scenario, start_time=start_time, duration_s=duration_s, speed=speed, strap=strap, seed=seed
    )
    source = _ActingSource(wearable, outbox, device_id, taps)
    uplink = _PhoneUplink(
        device_id, BrokerAddress.parse(mqtt_url), outbox, username=mqtt_username, password=mqtt_password,
        online=lambda: scenario.phone_online_at(wearable.now),
    )
    agent = EdgeAgent(
        device_id, source, outbox, uplink,
        window_seconds=window_seconds, batch_windows=batch_windows, strip_seconds=STRIP_SECONDS,
        location=track_source(scenario, start_time, duration_s),
        clock=lambda: wearable.start_time + wearable.now,
    )
    source.locate = agent.panic_position
    source.doses = agent.doses
    if plan is not None:
        agent.apply_config(Config(device_id, plan.version, start_time, window_seconds, batch_windows, medication=plan))
    try:
        report = await agent.run()
        drained = await agent.drain(drain_timeout_s)
        if ground_truth_path is not None:
            wearable.write_ground_truth(ground_truth_path, plan)
        return PatientRunReport(
            device_id=device_id,
            windows=report.windows,
            summaries=report.summaries,
            strips=report.strips,
            events=source.done,
            published=uplink.counters["published"],
            acked=uplink.counters["acked"],
            pending=outbox.pending_count(),
            bad_frames=report.counters["bad_frames"],
            drained=drained,
            dose_taps=source.tapped,
            dose_errors=source.refused,
        )
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(uplink.stop)
        outbox.close()
