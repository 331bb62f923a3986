"""VT detection on ECG: runs of wide fast beats by length, and false VT on narrow tachycardia and real records.

The edge path is measured: ECG at 130 Hz -> ``edge.summary.Summarizer`` (30 s
windows; R peaks, QRS widths relative to the patient's own beats, VT runs)
for the window flag ``vt`` (runs of >= 6 beats), and ``ecg_peaks`` ->
``ecg_qrs_widths`` -> ``ecg_wide_beats`` -> ``rhythm_vt_runs`` over the
whole record for VT episodes (>= 3 beats; without the summariser's quality
mask, so the width measure and run rule are judged alone).

Ground truth: simulated patients (``simulators.body.SimulatedBody``, its
public API) with one VT run of a given number of beats at 150-200 bpm in
sinus rhythm, several seeds; hard negatives: narrow sinus tachycardia at
150 bpm, SVT at 180 bpm, PVCs at 1,200/h, a wide idioventricular rhythm at
80 bpm; and the shared MIT-BIH records 100, 101, 106 (106 has one annotated
3-beat VT run).

Reference, side by side: a rate-only rule as a heart-rate wearable would
apply it (a run of >= 6 beats faster than 150 bpm is "VT"), on the same
detected beats.

    .venv/bin/python bench/bench_dsp_vt.py [--seeds 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.dsp import ecg_peaks, ecg_qrs_widths, ecg_wide_beats, rhythm_vt_runs  # noqa: E402
from edge.summary import Summarizer  # noqa: E402
from simulators.body import SimulatedBody  # noqa: E402
from simulators.scenarios import Scenario, Segment  # noqa: E402
from tests.edge.dsp.records import RECORDS, load_record, resampled  # noqa: E402

FS = 130.0
START = 1_700_000_040.0
RUN_AT = 90.0  # s into a 180 s record
LENGTHS = (3, 4, 6, 10, 30)
RATE_ONLY_BPM, RATE_ONLY_BEATS = 150.0, 6


def simulate(segments: tuple[Segment, ...], seconds: float, seed: int) -> np.ndarray:
    return simulate_with_truth(segments, seconds, seed)[0]


def simulate_with_truth(segments: tuple[Segment, ...], seconds: float, seed: int) -> tuple[np.ndarray, int]:
    """The ECG and the number of ventricular beats the simulator generated (ground truth)."""
    body = SimulatedBody(Scenario("vt-bench", resting_hr=72, seed=seed, segments=segments), ecg_fs=FS)
    x = body.ecg(0.0, int(seconds * FS))
    return x, sum(b.label == "V" for b in body.beats if b.time < seconds)


def flagged_windows(x: np.ndarray) -> list[tuple[float, float]]:
    s, out = Summarizer(30.0, ecg_fs=FS), []
    for a in range(0, x.size, int(FS)):
        out += s.feed_ecg(START + a / FS, x[a : a + int(FS)])
    out += s.finish()
    return [(w.start - START, w.end - START) for w in out if "vt" in w.flags]


def vt_runs(x: np.ndarray) -> list[tuple[float, float, int]]:
    peaks = ecg_peaks(x, FS)
    wide = ecg_wide_beats(ecg_qrs_widths(x, peaks, FS))
    return [(e.start, e.end, e.beats) for e in rhythm_vt_runs(peaks / FS, wide)]


def rate_only(x: np.ndarray) -> list[tuple[float, float]]:
    t = ecg_peaks(x, FS) / FS
    fast = np.diff(t) < 60.0 / RATE_ONLY_BPM
    edges = np.diff(np.concatenate([[0], fast.astype(np.int8), [0]]))
    return [(float(t[a]), float(t[b])) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))
            if b - a + 1 >= RATE_ONLY_BEATS]  # fmt: skip


def hits(spans: list[tuple[float, float]] | list[tuple[float, float, int]], a: float, b: float) -> bool:
    return any(s[0] <= b + 1 and a - 1 <= s[1] for s in spans)


def sensitivity(seeds: int) -> None:
    print("VT runs in sinus rhythm (simulated, 130 Hz, 150-200 bpm), by true length (ventricular beats)")
    print(f"{'beats':>6} {'runs':>5} {'episode (>=3)':>14} {'flag (>=6)':>11} {'rate-only ref':>14}")
    table: dict[int, list[int]] = {}
    for n in LENGTHS:
        for seed in range(seeds):
            hr = 150.0 + 50.0 * seed / max(seeds - 1, 1)
            seg = Segment(at=RUN_AT, duration=(n + 0.5) * 60.0 / hr, rhythm="vt", hr=hr, ramp=0)
            x, true = simulate_with_truth((seg,), 180.0, seed)
            a, b = RUN_AT, RUN_AT + (n + 1) * 60.0 / hr
            row = table.setdefault(true, [0, 0, 0, 0])
            row[0] += 1
            row[1] += any(s[0] <= b + 1 and a - 1 <= s[1] for s in vt_runs(x))
            row[2] += hits(flagged_windows(x), a, b)
            row[3] += hits(rate_only(x), a, b)
    for true, (runs, found, flag, ref) in sorted(table.items()):
        print(f"{true:>6} {runs:>5} {found:>14} {flag:>11} {ref:>14}")


def negatives(seeds: int) -> None:
    cases = {
        "sinus tachycardia 150 bpm": (Segment(at=30, duration=120, hr=150, ramp=0),),
        "SVT 180 bpm": (Segment(at=30, duration=120, rhythm="svt", hr=180, ramp=0),),
        "PVCs 1,200/h": (Segment(at=0, duration=180, pvc_per_hour=1200),),
        "idioventricular 80 bpm": (Segment(at=30, duration=120, rhythm="vt", hr=80, ramp=0),),
        "electrode motion 0 dB, 90 bpm": (Segment(at=30, duration=120, hr=90, noise_snr_db=0.0),),
        "loose strap, walking": (Segment(at=30, duration=120, activity="walk", strap="loose"),),
    }
    print("\nFalse VT (simulated, 3 min each, all seeds): windows flagged / episodes / rate-only ref")
    for label, segments in cases.items():
        flags = runs = ref = 0
        for seed in range(seeds):
            x = simulate(segments, 180.0, seed)
            flags, runs, ref = flags + len(flagged_windows(x)), runs + len(vt_runs(x)), ref + len(rate_only(x))
        print(f"  {label:28} {flags:4d} {runs:4d} {ref:4d}")
    print("\nShared records (whole, 130 Hz): windows flagged / episodes (annotated VT runs) / rate-only ref, per hour")
    for name in RECORDS:
        rec = resampled(load_record(name), FS)
        hours = rec.signal_mv.size / FS / 3600
        annotated = sum(1 for _, label in rec.rhythm if label.startswith("(VT"))
        x = rec.signal_mv
        print(f"  {name:28} {len(flagged_windows(x)) / hours:6.1f} {len(vt_runs(x)) / hours:6.1f} ({annotated})"
              f" {len(rate_only(x)) / hours:6.1f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    sensitivity(args.seeds)
    negatives(args.seeds)


if __name__ == "__main__":
    main()
