"""ECG-derived respiration rate against the simulators' true breathing, ours and simple references side by side.

Ground truth: simulated patients (:class:`simulators.body.SimulatedBody`, a
Polar H10's 130 Hz lead) breathing at 8-30 breaths/min (with the simulator's
~8 % breath-to-breath wobble) at heart rates of 50-120 bpm, with the
breathing in the ECG three ways at once, as in ECGSYN: R-amplitude
modulation (8 %), baseline (0.15 mV) and respiratory sinus arrhythmia.
Conditions: a clean lead (baseline wander and muscle noise only),
electrode-motion noise at 12, 6, 3 and 0 dB, frequent PVCs (600/h), weak RSA
(SDNN 15 ms, LF/HF 3), atrial fibrillation.

Ours is the whole edge path: the ECG fed to :class:`edge.summary.Summarizer`
in 1 s chunks, 10 s windows, each window's ``resp_rate`` (the last 60 s of
usable beats; None when the estimate is unusable). Its truth is the mean
breathing rate over those 60 s. References, on the same R peaks (ours) and
the same 60 s:

* ``count``: the R-amplitude series at 4 Hz band-passed 0.1-0.7 Hz, breaths
  counted as its peaks: 60 (n - 1) / (time from the first to the last);
* ``nk-default`` and ``nk-sarkar``: NeuroKit2's ``ecg_rsp`` (the heart-rate
  series band-passed 0.1-0.4 Hz, vangent2019, its default; 0.1-0.7 Hz,
  sarkar2015), breaths counted by ``rsp_peaks`` the same way.

References always give a value; ours withholds unusable ones. Figures per
condition: share of windows with a value, median and 90th percentile of
|error| of those (breaths/min), share within +-2/min, and the errors that
matter for the NEWS2 alarm (yellow <= 11 or >= 21): **false** = a value
beyond a yellow limit while the truth is >= 2/min inside (13-19), **missed**
= a value inside (12-20) while the truth is >= 2/min beyond (<= 9 or >= 23).

    .venv/bin/python bench/bench_resp.py [--seconds 300] [--seeds 1] [--no-reference] [--only CONDITION]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, find_peaks, sosfiltfilt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.dsp import ecg_peaks  # noqa: E402
from edge.summary import Summarizer  # noqa: E402
from simulators.body import SimulatedBody  # noqa: E402
from simulators.profiles import Profile  # noqa: E402
from simulators.scenarios import Scenario, Segment  # noqa: E402

FS = 130.0
RESP_RATES = (8.0, 10.0, 12.0, 15.0, 18.0, 21.0, 24.0, 27.0, 30.0)
HEART_RATES = (50.0, 70.0, 90.0, 120.0)
WINDOW_S = 10.0
RESP_S = 60.0  # the summariser's respiration span
CONDITIONS: dict[str, dict[str, Any]] = {
    "clean": {},
    "em 12 dB": {"snr": 12.0},
    "em 6 dB": {"snr": 6.0},
    "em 3 dB": {"snr": 3.0},
    "em 0 dB": {"snr": 0.0},
    "PVCs 600/h": {"pvc": 600.0},
    "weak RSA": {"profile": {"hrv_sdnn_ms": 15.0, "lf_hf": 3.0}},
    "AF": {"rhythm": "af"},
}

Estimator = Callable[[NDArray[np.int64], NDArray[np.float64]], float | None]


def scenario(resp: float, hr: float, seed: int, seconds: float, condition: dict[str, Any]) -> Scenario:
    """A patient at rest breathing at ``resp`` with resting heart rate ``hr``, under ``condition``."""
    profile = Profile(resting_hr=hr, resp_rate=resp, **condition.get("profile", {}))
    seg = Segment(at=0, duration=seconds + 10, ramp=0, noise_snr_db=condition.get("snr"),
                  pvc_per_hour=condition.get("pvc"), rhythm=condition.get("rhythm", "sinus"))
    return Scenario("resp", resting_hr=hr, seed=seed, profile=profile, segments=(seg,))


def ours(x: NDArray[np.float64]) -> dict[float, float | None]:
    """Window end (s) -> the summariser's respiration rate (the whole edge path, 1 s chunks)."""
    s = Summarizer(WINDOW_S, ecg_fs=FS)
    step = int(FS)
    windows = [w for a in range(0, x.size, step) for w in s.feed_ecg(a / FS, x[a : a + step])] + s.finish()
    return {w.end: w.resp_rate for w in windows}


def count_reference(peaks: NDArray[np.int64], x: NDArray[np.float64]) -> float | None:
    """Plain band-pass peak count of the R-amplitude series (no quality, no outlier handling)."""
    t = peaks / FS
    base = int(0.08 * FS)
    amp = x[peaks] - np.array([np.median(x[max(0, i - base) : i + 1]) for i in peaks])
    grid = np.arange(t[0], t[-1], 0.25)
    band = sosfiltfilt(butter(2, [0.1, 0.7], btype="bandpass", fs=4.0, output="sos"), np.interp(grid, t, amp))
    found, _ = find_peaks(band, distance=int(4.0 * 60 / 45))
    return breaths_per_min(grid[found])


def neurokit_reference(method: str) -> Estimator:
    def estimate(peaks: NDArray[np.int64], x: NDArray[np.float64]) -> float | None:
        import neurokit2 as nk

        lo = int(peaks[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rate = nk.ecg_rate(peaks - lo, sampling_rate=FS, desired_length=int(peaks[-1] - lo + 1))
            edr = nk.ecg_rsp(rate, sampling_rate=FS, method=method)
            _, info = nk.rsp_peaks(edr, sampling_rate=FS)
        return breaths_per_min(np.asarray(info["RSP_Peaks"], dtype=float) / FS)

    return estimate


def breaths_per_min(times: NDArray[np.float64]) -> float | None:
    """60 (n - 1) / (last - first) for breath times (s); None for fewer than 3."""
    if times.size < 3 or times[-1] <= times[0]:
        return None
    return 60.0 * (times.size - 1) / float(times[-1] - times[0])


@dataclass
class Tally:
    """Errors of one method under one condition."""

    windows: int = 0
    errors: list[float] = field(default_factory=list)
    false_alarms: int = 0
    missed: int = 0

    def add(self, truth: float, value: float | None) -> None:
        self.windows += 1
        if value is None:
            return
        self.errors.append(abs(value - truth))
        beyond = value >= 21 or value <= 11
        self.false_alarms += int(beyond and 13 <= truth <= 19)
        self.missed += int(12 <= value <= 20 and (truth >= 23 or truth <= 9))

    def row(self) -> str:
        e = np.asarray(self.errors)
        given = e.size / max(self.windows, 1)
        if e.size == 0:
            return f"{100 * given:5.0f} %      -      -      -  {self.false_alarms:5d} {self.missed:6d}"
        within = float(np.mean(e <= 2.0))
        return (f"{100 * given:5.0f} % {np.median(e):6.2f} {np.percentile(e, 90):6.2f} {100 * within:5.0f} %"
                f" {self.false_alarms:5d} {self.missed:6d}")


def run(seconds: float, seeds: int, references: bool, only: list[str]) -> dict[str, dict[str, Tally]]:
    methods: dict[str, Estimator] = {"count": count_reference}
    if references:
        methods |= {"nk-default": neurokit_reference("vangent2019"), "nk-sarkar": neurokit_reference("sarkar2015")}
    tallies: dict[str, dict[str, Tally]] = {}
    for name, condition in CONDITIONS.items():
        if only and name not in only:
            continue
        per = tallies.setdefault(name, {m: Tally() for m in ("ours", *methods)})
        for seed in range(1, seeds + 1):
            for resp in RESP_RATES:
                for hr in HEART_RATES:
                    sc = scenario(resp, hr, seed, seconds, condition)
                    body = SimulatedBody(sc, ecg_fs=FS)
                    x = body.ecg(0.0, int(seconds * FS))
                    peaks = ecg_peaks(x, FS)
                    for end, value in ours(x).items():
                        if end < RESP_S or end > seconds:
                            continue
                        truth = body.resp.mean_rate(end - RESP_S, end)
                        per["ours"].add(truth, value)
                        inside = peaks[(peaks >= (end - RESP_S) * FS) & (peaks < end * FS)]
                        for m, estimate in methods.items():
                            per[m].add(truth, estimate(inside, x) if inside.size >= 8 else None)
        print(f"{name} done", file=sys.stderr, flush=True)
    return tallies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="simulated seconds per patient")
    ap.add_argument("--seeds", type=int, default=1, help="patients per rate pair")
    ap.add_argument("--no-reference", action="store_true", help="ours and the plain count only (no NeuroKit2)")
    ap.add_argument("--only", action="append", default=[], choices=list(CONDITIONS), help="this condition only")
    args = ap.parse_args()
    tallies = run(args.seconds, args.seeds, not args.no_reference, args.only)
    print(f"respiration rates {RESP_RATES[0]:g}-{RESP_RATES[-1]:g}/min x heart rates {HEART_RATES[0]:g}-"
          f"{HEART_RATES[-1]:g} bpm, {args.seeds} seed(s), {args.seconds:g} s each, {FS:g} Hz")
    print(f"{'condition':12} {'method':11} {'given':>7} {'median':>6} {'p90':>6} {'<=2':>7} {'false':>5} {'missed':>6}")
    for name, per in tallies.items():
        for method, tally in per.items():
            print(f"{name:12} {method:11} {tally.row()}")


if __name__ == "__main__":
    main()
