"""Summary-level patients: the windows an ideal edge pipeline would send, without any waveform.

For fleets too large to synthesise ECG for, :class:`SummaryStream` walks the
same beat generator and breathing as the full simulation
(:mod:`simulators.rhythm`, :mod:`simulators.resp`) and turns each window's true
beats into a :class:`wire.SummaryWindow`: heart rate mean/min/max, RR mean,
SDNN, RMSSD, pNN50, the longest RR and the ectopic count from the true beats,
rhythm flags from the truth (what a perfect detector would raise), breathing
rate, activity, its intensity and steps, posture changes and falls from the
script, a quality from skin contact, the strap battery and, when the patient
shares it, the GPS position. Deterministic from the scenario's seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulators.body import RESP_FACTOR
from simulators.gps import gps_track
from simulators.resp import Respiration
from simulators.rhythm import Beat, BeatGenerator
from simulators.scenarios import Scenario
from simulators.signals import STEPS, battery_level
from wire import SummaryWindow

PAUSE_S = 2.5
INTENSITY_G = {"lying": 0.005, "sitting": 0.008, "rest": 0.01, "walk": 0.18, "run": 0.55}
WIRE_ACTIVITY = {"sitting": "rest"}
BATTERY_DRAIN_PER_HOUR = 1.0


class SummaryStream:
    """Consecutive summary windows of one simulated patient.

    Args:
        scenario: the patient's script.
        window_s: window length, s.
        duration_s: how long the stream will run (for the GPS track), s.
        start_time: s since epoch of simulated second 0.
        keep_beats: keep every beat in :attr:`beats_taken` (for the ground truth).
    """

    def __init__(
        self, scenario: Scenario, window_s: float, duration_s: float, start_time: float, *, keep_beats: bool = False
    ) -> None:
        self.scenario, self.window_s, self.start_time = scenario, window_s, start_time
        self.keep_beats = keep_beats
        self.beats_taken: list[Beat] = []
        seq = np.random.SeedSequence(scenario.seed)
        beat_rng, resp_rng, misc_rng, gps_rng = (np.random.default_rng(s) for s in seq.spawn(4))
        p = scenario.patient
        self.resp = Respiration(lambda t: p.resp_rate * RESP_FACTOR[scenario.activity_at(t)], resp_rng)
        self.beats = BeatGenerator(scenario, beat_rng, self.resp)
        self.rng = misc_rng
        self.k = 0  # next window index
        self._pending = self.beats.next_beat()
        self._gps = gps_track(scenario, duration_s + window_s, gps_rng, window_s) if p.share_location else []

    def windows_until(self, t: float) -> list[SummaryWindow]:
        """The windows that end by simulated second ``t`` and were not returned before."""
        out = []
        while (self.k + 1) * self.window_s <= t + 1e-9:
            out.append(self._window(self.k * self.window_s, (self.k + 1) * self.window_s))
            self.k += 1
        return out

    def _take_beats(self, end: float) -> list[Beat]:
        beats = []
        while self._pending.time <= end:
            beats.append(self._pending)
            self._pending = self.beats.next_beat()
        if self.keep_beats:
            self.beats_taken.extend(beats)
        return beats

    def _window(self, start: float, end: float) -> SummaryWindow:
        s = self.scenario
        beats = self._take_beats(end)
        mid = (start + end) / 2
        contact = [s.contact_at(float(x)) for x in np.arange(start, end, 1.0)]
        quality = sum(contact) / len(contact) * (0.6 if s.strap_at(mid) == "loose" else 1.0)
        activity = s.activity_at(mid)
        seconds = np.arange(start, end, 1.0)
        acts = [s.activity_at(float(x)) for x in seconds]
        steps = int(sum(STEPS.get(a, (0.0, 0.0))[0] for a in acts))
        lying = [a == "lying" for a in [s.activity_at(start - 1.0) if start >= 1 else acts[0], *acts]]
        falls = any(i.type == "fall" and start <= i.at < end for i in s.incidents)
        stats = _beat_stats(np.array([b.rr for b in beats]), [b.label for b in beats], [b.rhythm for b in beats])
        if quality == 0:
            stats = {"beats": 0}
        lat = lon = None
        if self._gps:
            fix = self._gps[min(int(start // self.window_s), len(self._gps) - 1)]
            lat, lon = round(fix.lat, 5), round(fix.lon, 5)
        return SummaryWindow(
            start=self.start_time + start, end=self.start_time + end, **stats,
            resp_rate=round(self.resp.mean_rate(start, end), 1),
            activity=WIRE_ACTIVITY.get(activity, activity),
            intensity=round(INTENSITY_G[activity] * float(self.rng.uniform(0.8, 1.2)), 4),
            quality=round(quality, 3),
            battery=battery_level(start, 100.0, BATTERY_DRAIN_PER_HOUR),
            steps=steps, posture_changes=sum(a != b for a, b in zip(lying, lying[1:])), fall=falls,
            lat=lat, lon=lon,
        )


def _beat_stats(rr: np.ndarray, labels: list[str], rhythms: list[str]) -> dict[str, Any]:
    if rr.size < 2:
        return {"beats": int(rr.size)}
    hr = 60.0 / rr
    flags: set[str] = set()
    if hr.mean() > 100:
        flags.add("tachy")
    if hr.mean() < 50:
        flags.add("brady")
    if rhythms.count("af") * 2 > len(rhythms):
        flags |= {"irregular", "af_suspected"}
    if "vt" in rhythms:
        flags.add("vt")
    if any(lab != "N" and rh == "sinus" for lab, rh in zip(labels, rhythms)):
        flags.add("ectopic")
    if rr.max() >= PAUSE_S:
        flags.add("pause")
    return {
        "beats": int(rr.size),
        "hr_mean": round(float(min(max(hr.mean(), 20), 300)), 1),
        "hr_min": round(float(min(max(hr.min(), 20), 300)), 1),
        "hr_max": round(float(min(max(hr.max(), 20), 300)), 1),
        "rr_mean": round(float(min(max(rr.mean() * 1000, 150), 6000)), 1),
        "sdnn": round(float(rr.std() * 1000), 1),
        "rmssd": round(float(np.sqrt(np.mean(np.diff(rr) ** 2)) * 1000), 1),
        "pnn50": round(float(np.mean(np.abs(np.diff(rr)) > 0.05) * 100), 1),
        "pause_max": round(float(rr.max()), 3),
        "ectopic": sum(lab != "N" and rh == "sinus" for lab, rh in zip(labels, rhythms)),
        "flags": tuple(sorted(flags)),
    }
