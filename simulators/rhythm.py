"""Beat trains: R-peak times with labels, for sinus rhythm with HRV and injected arrhythmias.

:class:`BeatGenerator` walks beat by beat along a scenario:

* **Sinus rhythm**: RR = 60 / HR(t) modulated by heart-rate variability with the
  two-peak spectrum of ECGSYN (McSharry et al., IEEE TBME 50:289, 2003): a
  low-frequency (Mayer wave) component, here an AR(2) resonator at 0.1 Hz, and a
  high-frequency component that *is* the respiratory sinus arrhythmia, coupled
  to the breathing phase (RR shortens during inspiration). Their powers split
  the profile's SDNN by its LF/HF ratio; absolute HRV shrinks as HR rises.
* **Ectopy**: PVCs (coupling 0.6 RR, full compensatory pause) and PACs
  (coupling 0.7 RR, sinus node reset), at the profile's or segment's hourly
  rates, or forced by ``pvc``/``pac`` incidents.
* **AF**: irregularly irregular RR (log-normal, CV ~0.2) around the target HR.
* **VT**: wide-complex beats, nearly regular, at the segment's HR.
* **SVT**: narrow-complex, very regular beats at the segment's HR.
* **Pauses**: a ``pause`` incident delays the next beat by its duration (sinus arrest).

Labels follow the MIT-BIH convention: ``N`` normal (sinus, AF, SVT), ``A`` atrial
premature, ``V`` ventricular (PVC and VT beats).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from simulators.resp import Respiration
from simulators.scenarios import Incident, Scenario

LF_HZ = 0.1
LF_POLE = 0.94  # AR(2) pole radius at 1 Hz: ~0.02 Hz bandwidth
AF_CV = 0.2
VT_CV = 0.01
SVT_CV = 0.004
PVC_COUPLING = 0.6
PAC_COUPLING = 0.7
RR_MIN, RR_MAX = 0.22, 3.0  # s; pauses may exceed RR_MAX


@dataclass(frozen=True)
class Beat:
    """One heartbeat.

    Attributes:
        time: R peak, s from the start.
        rr: s since the previous R peak.
        label: ``N``, ``A`` or ``V``.
        rhythm: ``sinus``, ``af``, ``vt`` or ``svt``.
        cycle: s, the underlying cycle length that sets the waveform's timing.
    """

    time: float
    rr: float
    label: str
    rhythm: str
    cycle: float


class _LowFrequency:
    """An AR(2) resonator at ``LF_HZ`` sampled at 1 Hz, unit variance, read at any time."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.phi1, self.phi2 = 2 * LF_POLE * math.cos(2 * math.pi * LF_HZ), -LF_POLE**2
        var = (1 - self.phi2) / ((1 + self.phi2) * ((1 - self.phi2) ** 2 - self.phi1**2))
        self.scale = 1 / math.sqrt(var)
        self.values = [0.0, 0.0]
        for _ in range(60):  # settle
            self._step()
        self.values = self.values[-2:]
        self.first = 0

    def _step(self) -> None:
        x = self.phi1 * self.values[-1] + self.phi2 * self.values[-2] + float(self.rng.standard_normal())
        self.values.append(x)

    def at(self, t: float) -> float:
        """The unit-variance LF process at ``t`` s (monotone calls; keeps a short history)."""
        i = int(t)
        while self.first + len(self.values) <= i + 1:
            self._step()
        if len(self.values) > 600:
            drop = len(self.values) - 60
            self.values, self.first = self.values[drop:], self.first + drop
        k = i - self.first
        frac = t - i
        return self.scale * ((1 - frac) * self.values[k] + frac * self.values[k + 1])


class BeatGenerator:
    """Beat-by-beat generator following ``scenario``.

    Args:
        scenario: the script (HR profile, rhythms, ectopy, incidents).
        rng: the random generator (seeded by the caller).
        resp: the patient's breathing, for RSA.
    """

    def __init__(self, scenario: Scenario, rng: np.random.Generator, resp: Respiration) -> None:
        self.scenario, self.rng, self.resp = scenario, rng, resp
        p = scenario.patient
        self.rr_rest = 60.0 / scenario.resting_hr
        sd = p.hrv_sdnn_ms / 1000.0 / self.rr_rest  # fraction of RR
        self.lf_sd = sd * math.sqrt(p.lf_hf / (1 + p.lf_hf))
        self.rsa = sd * math.sqrt(2 / (1 + p.lf_hf))  # sine amplitude: power = rsa^2 / 2
        self.lf = _LowFrequency(rng)
        self.t = 0.0
        self.queued: deque[Beat] = deque()
        self.incidents = [i for i in scenario.incidents if i.type in ("pause", "pvc", "pac")]

    def next_beat(self) -> Beat:
        """The next beat after the previous one."""
        if self.queued:
            beat = self.queued.popleft()
        else:
            beat = self._make()
        self.t = beat.time
        return beat

    def _make(self) -> Beat:
        t = self.t
        rhythm = self.scenario.rhythm_at(t)
        base = 60.0 / self.scenario.hr_at(t)
        if rhythm != "sinus":
            return self._beat(base * self._irregular(rhythm), "V" if rhythm == "vt" else "N", rhythm, base)
        incident = self._incident_due(t + base)
        if incident is not None and incident.type == "pause":
            return self._beat(incident.duration, "N", rhythm, base, clip=False)
        rr = base * self._sinus_modulation(t, base)
        pvc_h, pac_h = self.scenario.ectopy_at(t)
        forced = incident.type if incident is not None else None
        if forced == "pvc" or (forced is None and self.rng.random() < pvc_h * rr / 3600):
            return self._premature("V", rr, PVC_COUPLING, compensatory=True, rhythm=rhythm)
        if forced == "pac" or (forced is None and self.rng.random() < pac_h * rr / 3600):
            return self._premature("A", rr, PAC_COUPLING, compensatory=False, rhythm=rhythm)
        return self._beat(rr, "N", rhythm, base)

    def _incident_due(self, until: float) -> Incident | None:
        if self.incidents and self.incidents[0].at <= until:
            return self.incidents.pop(0)
        return None

    def _irregular(self, rhythm: str) -> float:
        if rhythm == "af":
            sigma = math.sqrt(math.log(1 + AF_CV**2))
            return math.exp(sigma * float(self.rng.standard_normal()) - sigma**2 / 2)
        cv = VT_CV if rhythm == "vt" else SVT_CV
        return 1 + cv * float(self.rng.standard_normal())

    def _sinus_modulation(self, t: float, base: float) -> float:
        damp = base / self.rr_rest  # HRV shrinks with the heart rate
        breath = math.sin(float(self.resp.phase(np.array([t]))[0]))
        return 1 + damp * (self.lf_sd * self.lf.at(t) - self.rsa * breath)

    def _premature(self, label: str, rr: float, coupling: float, *, compensatory: bool, rhythm: str) -> Beat:
        early = self._beat(rr * coupling, label, rhythm, rr)
        after = rr * (2 - coupling) if compensatory else rr
        self.queued.append(Beat(early.time + after, after, "N", rhythm, rr))
        return early

    def _beat(self, rr: float, label: str, rhythm: str, cycle: float, clip: bool = True) -> Beat:
        if clip:
            rr = min(max(rr, RR_MIN), RR_MAX)
        return Beat(self.t + rr, rr, label, rhythm, cycle)
