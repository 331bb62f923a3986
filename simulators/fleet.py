"""Fleets: many simulated patients at once, for load tests and demos.

Two levels, both through the real uplink code and deterministic from a seed:

* ``agent``: every patient is a full simulation (virtual strap, ECG and all)
  driving its own real :class:`edge.agent.EdgeAgent`, outbox and uplink
  (:func:`simulators.patient.run_patient`), all in one event loop.
* ``summary``: for large N, every patient is a :class:`SummaryStream` whose
  windows go, batched as the agent batches them, into a real
  :class:`edge.outbox.Outbox` and out through a real :class:`edge.uplink.Uplink`
  (one MQTT connection per patient, as phones have). Patient actions (panic,
  symptom marks) go in through the same :func:`edge.agent.press_panic` and
  :func:`edge.agent.mark_symptom` as in the full simulation; phone-offline
  segments hold the uplink.

:func:`fleet_roster` picks each patient's scenario and profile from the seed,
with a resting heart rate varied by up to +-8 bpm.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge.outbox import Outbox
from edge.uplink import Uplink
from simulators.patient import PatientRunReport, perform_action, run_patient
from simulators.profiles import list_profiles, load_profile
from simulators.scenarios import Action, Scenario, load_scenario
from simulators.summaries import SummaryStream
from simulators.truth import ground_truth, write_ground_truth
from wire import BrokerAddress, Summary, SummaryWindow

DEFAULT_SCENARIOS = ("baseline", "tachy_episode", "deterioration", "baseline", "baseline")
HR_JITTER_BPM = 8.0
CONNECT_WAVE = 50  # uplinks started together; a broker's listen backlog is often ~100
CONNECT_WAVE_WAIT_S = 5.0
# Patients per process at summary level: each costs ~6 file descriptors (MQTT socket and wake-up
# pair, SQLite file, WAL and shared memory), and paho's select() loop cannot watch descriptors
# from 1024 up (such connections drop silently), so larger fleets are split across processes.
PATIENTS_PER_PROCESS = 150


@dataclass(frozen=True)
class FleetPatient:
    """One member of a fleet: its phone's device id and its script."""

    device_id: str
    scenario: Scenario


@dataclass(frozen=True)
class FleetReport:
    """What a fleet run did, summed over its patients."""

    patients: int
    windows: int
    messages: int  # put into the outboxes
    published: int  # PUBLISH packets sent (re-sends after a reconnect count again)
    acked: int
    pending: int  # left unacknowledged at the end
    drained: bool


def fleet_roster(
    n: int, seed: int, *, scenarios: Sequence[str] = DEFAULT_SCENARIOS, device_prefix: str = "sim"
) -> list[FleetPatient]:
    """``n`` patients chosen deterministically from ``seed``."""
    if n < 1:
        raise ValueError("a fleet needs at least one patient")
    rng = np.random.default_rng(seed)
    base = [load_scenario(name) for name in scenarios]
    profiles = [load_profile(name) for name in list_profiles()]
    roster = []
    for i in range(n):
        scenario = base[int(rng.integers(len(base)))]
        profile = profiles[int(rng.integers(len(profiles)))]
        resting = float(np.clip(scenario.resting_hr + rng.uniform(-HR_JITTER_BPM, HR_JITTER_BPM), 45, 110))
        patient = replace(profile, resting_hr=round(resting, 1))
        s = replace(scenario, seed=int(rng.integers(2**31)), resting_hr=patient.resting_hr, profile=patient)
        roster.append(FleetPatient(f"{device_prefix}-{seed}-{i:05d}", s))
    return roster


async def run_agent_fleet(
    patients: Sequence[FleetPatient], mqtt_url: str, outbox_dir: Path, *, start_time: float, duration_s: float,
    speed: float, window_seconds: float, batch_windows: int, truth_dir: Path | None = None,
) -> FleetReport:
    """Every patient through the full simulation and the real edge agent, concurrently.

    Args:
        truth_dir: where to write ``<device id>.json`` ground truth per patient, if anywhere.
    """
    reports: list[PatientRunReport] = await asyncio.gather(
        *(
            run_patient(
                p.scenario, p.device_id, mqtt_url, outbox_dir / f"{p.device_id}.sqlite3", start_time=start_time,
                duration_s=duration_s, speed=speed, window_seconds=window_seconds, batch_windows=batch_windows,
                ground_truth_path=truth_dir / f"{p.device_id}.json" if truth_dir else None,
            )
            for p in patients
        )
    )
    return FleetReport(
        patients=len(reports), windows=sum(r.windows for r in reports),
        messages=sum(r.summaries + r.strips + r.events for r in reports),
        published=sum(r.published for r in reports), acked=sum(r.acked for r in reports),
        pending=sum(r.pending for r in reports), drained=all(r.drained for r in reports),
    )


class _SummaryPhone:
    """One summary-level patient: stream, batching, actions, outbox and uplink."""

    def __init__(self, p: FleetPatient, address: BrokerAddress, outbox_path: Path, start_time: float,
                 duration_s: float, window_s: float, batch: int, keep_beats: bool = False) -> None:
        self.p, self.start_time, self.batch_size, self.duration_s = p, start_time, batch, duration_s
        self.stream = SummaryStream(p.scenario, window_s, duration_s, start_time, keep_beats=keep_beats)
        self.outbox = Outbox(outbox_path)
        self.uplink = Uplink(p.device_id, address, self.outbox)
        self.todo = [a for a in p.scenario.actions if a.at < duration_s]
        self.batch: list[SummaryWindow] = []
        self.windows = self.messages = 0
        self.sim_t = 0.0

    def advance(self, t: float) -> None:
        """Produce everything due by simulated second ``t`` and let the uplink work."""
        self.sim_t = t
        for w in self.stream.windows_until(t):
            self._act_until(w.end - self.start_time)
            self.batch.append(w)
            self.windows += 1
            if len(self.batch) >= self.batch_size or set(w.flags) - {"ectopic"}:
                self.flush()
        self._act_until(t)
        self.pump()

    def _act_until(self, t: float) -> None:
        while self.todo and self.todo[0].at <= t:
            self._act(self.todo.pop(0))

    def _act(self, a: Action) -> None:
        perform_action(self.outbox, self.p.device_id, a, self.start_time)
        self.messages += 1

    def flush(self) -> None:
        """Put the batched windows into the outbox as one summary."""
        if self.batch:
            batch, self.batch = tuple(self.batch), []
            self.outbox.put(lambda seq: Summary(self.p.device_id, seq, batch), created=batch[-1].end)
            self.messages += 1

    def write_truth(self, truth_dir: Path) -> None:
        """Write this patient's ground truth (beats as generated, episodes, events, actions)."""
        truth = ground_truth(self.p.scenario, self.stream.beats_taken, self.start_time, self.duration_s, strap="summary")
        write_ground_truth(truth, truth_dir / f"{self.p.device_id}.json")

    def pump(self) -> None:
        """Let the uplink publish and ack, unless the phone is offline."""
        if self.p.scenario.phone_online_at(self.sim_t):
            self.uplink.pump()


def _connect_in_waves(uplinks: Sequence[Uplink]) -> None:
    """Start the uplinks ``CONNECT_WAVE`` at a time, each wave waiting (a while) for its connections.

    Phones in the field do not all connect in the same millisecond; starting
    hundreds at once overflows the broker's listen backlog, and the dropped
    SYNs then wait out TCP's retransmission back-off.
    """
    for i in range(0, len(uplinks), CONNECT_WAVE):
        wave = uplinks[i : i + CONNECT_WAVE]
        for u in wave:
            u.start()
        deadline = time.monotonic() + CONNECT_WAVE_WAIT_S
        for u in wave:
            u.wait_connected(max(0.0, deadline - time.monotonic()))


def run_summary_fleet(
    patients: Sequence[FleetPatient], mqtt_url: str, outbox_dir: Path, *, start_time: float, duration_s: float,
    speed: float, window_seconds: float, batch_windows: int, drain_timeout_s: float = 60.0,
    truth_dir: Path | None = None,
) -> FleetReport:
    """Every patient at summary level through real outboxes and uplinks (blocking).

    Fleets above :data:`PATIENTS_PER_PROCESS` run in that many patients per
    worker process, all started together, and their reports are summed.

    Args:
        speed: simulated s per real s; 0 or inf: as fast as possible.
        drain_timeout_s: real seconds to wait for acks after the last window.
        truth_dir: where to write ``<device id>.json`` ground truth per patient, if anywhere.
    """
    kwargs = dict(start_time=start_time, duration_s=duration_s, speed=speed, window_seconds=window_seconds,
                  batch_windows=batch_windows, drain_timeout_s=drain_timeout_s, truth_dir=truth_dir)
    if len(patients) <= PATIENTS_PER_PROCESS:
        return _run_summary_shard(list(patients), mqtt_url, outbox_dir, **kwargs)  # type: ignore[arg-type]
    shards = [list(patients[i : i + PATIENTS_PER_PROCESS]) for i in range(0, len(patients), PATIENTS_PER_PROCESS)]
    with multiprocessing.get_context("spawn").Pool(len(shards)) as pool:
        reports = pool.starmap(_shard_entry, [(shard, mqtt_url, outbox_dir, kwargs) for shard in shards])
    return FleetReport(
        patients=sum(r.patients for r in reports), windows=sum(r.windows for r in reports),
        messages=sum(r.messages for r in reports), published=sum(r.published for r in reports),
        acked=sum(r.acked for r in reports), pending=sum(r.pending for r in reports),
        drained=all(r.drained for r in reports),
    )


def _shard_entry(patients: list[FleetPatient], mqtt_url: str, outbox_dir: Path, kwargs: dict[str, object]) -> FleetReport:
    return _run_summary_shard(patients, mqtt_url, outbox_dir, **kwargs)  # type: ignore[arg-type]


def _run_summary_shard(
    patients: Sequence[FleetPatient], mqtt_url: str, outbox_dir: Path, *, start_time: float, duration_s: float,
    speed: float, window_seconds: float, batch_windows: int, drain_timeout_s: float, truth_dir: Path | None,
) -> FleetReport:
    address = BrokerAddress.parse(mqtt_url)
    phones = [
        _SummaryPhone(p, address, outbox_dir / f"{p.device_id}.sqlite3", start_time, duration_s, window_seconds,
                      batch_windows, keep_beats=truth_dir is not None)
        for p in patients
    ]
    try:
        _connect_in_waves([ph.uplink for ph in phones])
        real0 = time.monotonic()
        paced = 0 < speed < float("inf")
        for t in np.arange(window_seconds, duration_s + window_seconds, window_seconds):
            t = min(float(t), duration_s)
            if paced:
                time.sleep(max(0.0, real0 + t / speed - time.monotonic()))
            for phone in phones:
                phone.advance(t)
        for phone in phones:
            phone.flush()
            if truth_dir is not None:
                phone.write_truth(truth_dir)
        deadline = time.monotonic() + drain_timeout_s
        while any(ph.outbox.pending_count() for ph in phones) and time.monotonic() < deadline:
            for phone in phones:
                phone.pump()
            time.sleep(0.02)
        return FleetReport(
            patients=len(phones), windows=sum(ph.windows for ph in phones),
            messages=sum(ph.messages for ph in phones),
            published=sum(ph.uplink.counters["published"] for ph in phones),
            acked=sum(ph.uplink.counters["acked"] for ph in phones),
            pending=sum(ph.outbox.pending_count() for ph in phones),
            drained=all(ph.outbox.pending_count() == 0 for ph in phones),
        )
    finally:
        for phone in phones:
            phone.uplink.stop()
            phone.outbox.close()
