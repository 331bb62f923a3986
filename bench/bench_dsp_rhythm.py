"""Rhythm detection on ECG: AF-suspicious episodes by duration, pauses, false alarms on the shared records.

The whole edge path is measured: ECG -> ``ecg_peaks_and_artefacts`` -> ``rhythm_episodes``
(intervals holding a rejected electrode-motion step are not evidence of a pause).
Ground truth is constructed from the shared MIT-BIH records (100, 101, 106):
their own beats re-timed (``tests.edge.dsp.records.spliced``) to RR series with
3 min of sinus rhythm, an AF-like stretch of the given duration (RR
log-normal, CV 0.20, mean 0.70 s) and 3 min of sinus rhythm; and sinus
rhythm with inserted pauses. Hard negatives: sinus with 10 % PVCs,
bigeminy, trigeminy, and the three real records (106: bigeminy, trigeminy,
VT runs, frequent couplets; their rhythm annotations are listed).

Reference, side by side: the walking skeleton's rule, a window is
"irregular" when RMSSD / mean RR > 0.12 over 10 beats (``edge.dsp.rr``),
applied to consecutive 60 s windows.

Figures: AF episodes found (overlap >= 50 %), AF time sensitivity, non-AF
time specificity, onset/offset error; pauses found (end within 0.2 s) by
length, false pauses.

    .venv/bin/python bench/bench_dsp_rhythm.py [--fs 130] [--seeds 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.dsp import rhythm_episodes, rr_stats  # noqa: E402
from edge.dsp.qrs import ecg_peaks_and_artefacts  # noqa: E402
from edge.dsp.rhythm import Episode, intervals_clear  # noqa: E402
from tests.edge.dsp.records import RECORDS, load_record, resampled, spliced  # noqa: E402

DURATIONS_S = (30.0, 60.0, 120.0, 300.0, 600.0)
SINUS_S = 180.0


def sinus(seconds: float, rng: np.random.Generator, mean: float = 0.85) -> np.ndarray:
    n = int(seconds / mean)
    t = np.arange(n) * mean
    return mean * (1 + 0.04 * np.sin(2 * np.pi * t / 4.5 + rng.uniform(0, 6)) + 0.015 * rng.standard_normal(n))


def af(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds / 0.7)
    return 0.7 * np.exp(0.2 * rng.standard_normal(n) - 0.02)


def ectopy(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    rr = sinus(seconds, rng)
    every = {"pvc10": None, "bigeminy": 2, "trigeminy": 3}[kind]
    marks = np.flatnonzero(rng.random(rr.size - 1) < 0.1) if every is None else np.arange(0, rr.size - 1, every)
    for i in marks:
        rr[i], rr[i + 1] = 0.6 * rr[i], 1.4 * rr[i + 1]
    return rr


def beats_of(rr: np.ndarray, name: str, fs: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detected beat times, their intervals clear of artefacts, true beat times) in s of the re-timed record."""
    base = load_record(name, 300.0)
    rec = spliced(base if fs == base.fs else resampled(base, fs), rr, seed=seed)
    return (*detect(rec.signal_mv, rec.fs), rec.beats / rec.fs)


def detect(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    peaks, artefacts = ecg_peaks_and_artefacts(x, fs)
    return peaks / fs, intervals_clear(peaks, artefacts)


def episodes(times: np.ndarray, clear: np.ndarray) -> list[Episode]:
    return rhythm_episodes(times, clear)


def skeleton_af(times: np.ndarray) -> list[tuple[float, float]]:
    """The reference: 60 s windows flagged "irregular" by the skeleton's RMSSD rule."""
    out = []
    for a in np.arange(times[0], times[-1], 60.0):
        inside = times[(times >= a) & (times < a + 60)]
        if "irregular" in rr_stats(np.diff(inside)).flags:
            out.append((float(a), float(min(a + 60, times[-1]))))
    return out


def overlap(spans: list[tuple[float, float]], a: float, b: float) -> float:
    return sum(max(0.0, min(e, b) - max(s, a)) for s, e in spans)


def af_table(fs: float, seeds: int) -> None:
    print("\n## AF-suspicious episodes by duration (3 min sinus, AF, 3 min sinus; records 100/101/106 re-timed)")
    print(f"{'AF length':>10} {'episodes found':>16} {'AF time Se':>11} {'non-AF Sp':>10} {'onset err':>10} {'offset err':>11} | {'skeleton Se':>11} {'skeleton Sp':>11}")
    for duration in DURATIONS_S:
        found = total = 0
        tp_t = af_t = fp_t = neg_t = 0.0
        ref_tp = ref_fp = 0.0
        onset, offset = [], []
        for seed in range(seeds):
            for name in RECORDS:
                rng = np.random.default_rng(seed * 10 + int(duration))
                head, fib, tail = sinus(SINUS_S, rng), af(duration, rng), sinus(SINUS_S, rng)
                detected, clear, truth = beats_of(np.concatenate([head, fib, tail]), name, fs, seed)
                a, b = truth[head.size], truth[head.size + fib.size]
                spans = [(e.start, e.end) for e in episodes(detected, clear) if e.kind == "af"]
                hit = overlap(spans, a, b)
                total += 1
                found += hit >= 0.5 * (b - a)
                tp_t, af_t = tp_t + hit, af_t + (b - a)
                span_all = overlap(spans, truth[0], truth[-1])
                fp_t, neg_t = fp_t + span_all - hit, neg_t + (truth[-1] - truth[0]) - (b - a)
                if spans and hit > 0:
                    best = max(spans, key=lambda s: overlap([s], a, b))
                    onset.append(abs(best[0] - a))
                    offset.append(abs(best[1] - b))
                ref = skeleton_af(detected)
                ref_hit = overlap(ref, a, b)
                ref_tp, ref_fp = ref_tp + ref_hit, ref_fp + overlap(ref, truth[0], truth[-1]) - ref_hit
        on = f"{np.median(onset):.0f} s" if onset else "-"
        off = f"{np.median(offset):.0f} s" if offset else "-"
        print(
            f"{duration:>9.0f}s {found:>7}/{total:<8} {tp_t / af_t:>11.1%} {1 - fp_t / neg_t:>10.1%} {on:>10} {off:>11} |"
            f" {ref_tp / af_t:>11.1%} {1 - ref_fp / neg_t:>11.1%}"
        )


def negatives(fs: float) -> None:
    print("\n## False AF and pause time on rhythms that are not AF")
    print(f"{'rhythm':>26} {'length':>8} {'AF flagged':>11} {'skeleton':>9} {'false pauses':>13}")
    rng = np.random.default_rng(7)
    for kind in ("pvc10", "bigeminy", "trigeminy"):
        detected, clear, truth = beats_of(ectopy(kind, 600.0, rng), "100", fs, 1)
        _row(kind + " (re-timed 100)", detected, clear, truth[-1] - truth[0])
    for name in RECORDS:
        rec = load_record(name)
        rec = rec if fs == rec.fs else resampled(rec, fs)
        detected, clear = detect(rec.signal_mv, rec.fs)
        labels = sorted({label for _, label in rec.rhythm})
        _row(f"MIT-BIH {name} {' '.join(labels)}", detected, clear, rec.signal_mv.size / rec.fs)


def _row(label: str, detected: np.ndarray, clear: np.ndarray, length: float) -> None:
    found = episodes(detected, clear)
    af_time = sum(e.duration for e in found if e.kind == "af")
    ref = sum(e - s for s, e in skeleton_af(detected))
    pauses = sum(1 for e in found if e.kind == "pause")
    print(f"{label:>26} {length:>7.0f}s {af_time / length:>11.1%} {ref / length:>9.1%} {pauses:>13}")


def pause_table(fs: float, seeds: int) -> None:
    print("\n## Pauses inserted in sinus rhythm (records 100/101/106 re-timed)")
    print(f"{'pause':>8} {'found':>10} {'>= 3 s flag right':>18} {'false pauses':>13}")
    for lo, hi in ((2.0, 2.5), (2.5, 3.0), (3.0, 4.0), (4.0, 8.0)):
        found = total = right = false = 0
        for seed in range(seeds):
            for name in RECORDS:
                rng = np.random.default_rng(100 + seed)
                lengths = rng.uniform(lo + 0.05, hi - 0.05, 5)
                parts = [sinus(40.0, rng)]
                for p in lengths:
                    parts += [[p], sinus(40.0, rng)]
                detected, clear, truth = beats_of(np.concatenate(parts), name, fs, seed)
                pauses = [e for e in episodes(detected, clear) if e.kind == "pause"]
                ends = truth[np.flatnonzero(np.diff(truth) >= 1.9) + 1]
                for end, p in zip(ends, lengths):
                    match = [e for e in pauses if abs(e.end - end) <= 0.2]
                    total += 1
                    found += bool(match)
                    right += bool(match) and match[0].long == (p >= 3.0)
                false += sum(1 for e in pauses if np.min(np.abs(ends - e.end)) > 0.2)
        print(f"{lo:>3.1f}-{hi:<3.1f}s {found:>4}/{total:<5} {right:>12}/{total:<5} {false:>13}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fs", type=float, default=130.0, help="ECG rate (Hz) the records are resampled to")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    print(f"ECG at {args.fs:g} Hz; ours = ecg_peaks + rhythm_episodes; skeleton = RMSSD/mean > 0.12 per 60 s window")
    af_table(args.fs, args.seeds)
    pause_table(args.fs, args.seeds)
    negatives(args.fs)


if __name__ == "__main__":
    main()
