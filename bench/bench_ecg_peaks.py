"""R-peak detection against NeuroKit2 on the shared MIT-BIH records: accuracy, timing, speed.

Side by side in one run, on the same signals: ours (``edge.dsp.ecg_peaks``, and
the streaming detector fed 1 s chunks) and NeuroKit2's default ``ecg_peaks``
and its ``pantompkins1985`` method (each on its own ``ecg_clean`` for that
method, as NeuroKit2 documents). Scoring: +-150 ms one-to-one matching, first
and last 10 s not scored, AAMI beat labels. Speed: seconds of ECG processed per
second of one core (best of ``--repeat`` runs). ``--variants`` adds resampled
(128, 130, 250, 1000 Hz) and noisy (electrode motion: a mild and a harsh model ``em``,
muscle, wander) versions.

    .venv/bin/python bench/bench_ecg_peaks.py [--variants] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.dsp import EcgPeakStream, ecg_peaks  # noqa: E402
from tests.edge.dsp.records import RECORDS, Record, Score, load_record, resampled, score_beats, with_noise  # noqa: E402

Detector = Callable[[np.ndarray, float], np.ndarray]


def ours_stream(x: np.ndarray, fs: float) -> np.ndarray:
    """The streaming detector fed 1-second chunks."""
    s, step, out = EcgPeakStream(fs), int(round(fs)), []
    for a in range(0, x.size, step):
        out.append(s.feed(x[a : a + step]))
    out.append(s.flush())
    return np.concatenate(out)


def neurokit(method: str) -> Detector:
    import neurokit2 as nk

    def detect(x: np.ndarray, fs: float) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clean = nk.ecg_clean(x, sampling_rate=int(round(fs)), method=method)
            _, info = nk.ecg_peaks(clean, sampling_rate=int(round(fs)), method=method)
        return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)

    return detect


DETECTORS: dict[str, Detector] = {
    "ours": ecg_peaks,
    "ours-stream": ours_stream,
    "nk-default": neurokit("neurokit"),
    "nk-pantompkins": neurokit("pantompkins1985"),
}


def timed(detect: Detector, rec: Record, repeat: int) -> tuple[np.ndarray, float]:
    best, peaks = float("inf"), np.zeros(0, dtype=np.int64)
    for _ in range(repeat):
        t = time.process_time()
        peaks = detect(rec.signal_mv, rec.fs)
        best = min(best, time.process_time() - t)
    return peaks, best


def pooled(scores: list[Score]) -> Score:
    tp, fn, fp = (sum(getattr(s, k) for s in scores) for k in ("tp", "fn", "fp"))
    return Score(tp, fn, fp, float(np.median([s.timing_s for s in scores])))


def run(label: str, recs: list[Record], repeat: int) -> None:
    print(f"\n## {label}")
    print(f"{'record':>8} " + " ".join(f"{d:>26}" for d in DETECTORS))
    scores: dict[str, list[Score]] = {d: [] for d in DETECTORS}
    speed: dict[str, float] = {d: 0.0 for d in DETECTORS}
    total_s = 0.0
    for rec in recs:
        cells = []
        total_s += rec.signal_mv.size / rec.fs
        for name, detect in DETECTORS.items():
            peaks, cpu = timed(detect, rec, repeat)
            s = score_beats(rec.beats, peaks, rec.fs, rec.signal_mv.size)
            scores[name].append(s)
            speed[name] += cpu
            cells.append(f"F1 {s.f1:7.3%} ({s.fn:>3}fn {s.fp:>3}fp) {1000 * s.timing_s:4.1f}ms")
        print(f"{rec.name:>8} " + " ".join(f"{c:>26}" for c in cells))
    cells = [f"F1 {pooled(v).f1:7.3%} Se {pooled(v).se:6.2%} +P {pooled(v).ppv:6.2%}" for v in scores.values()]
    print(f"{'pooled':>8} " + " ".join(f"{c:>26}" for c in cells))
    rt = {d: total_s / max(speed[d], 1e-9) for d in DETECTORS}
    print(f"{'x rt':>8} " + " ".join(f"{rt[d]:>26,.0f}" for d in DETECTORS))
    print(f"ratio batch ours / nk-default speed: {rt['ours'] / rt['nk-default']:.2f}; streaming 1 s chunks: {rt['ours-stream']:,.0f}x real time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", action="store_true", help="also resampled and noisy records")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    recs = [load_record(r) for r in RECORDS]
    run("MIT-BIH 100/101/106, MLII, 360 Hz", recs, args.repeat)
    if not args.variants:
        return
    for fs in (128.0, 130.0, 250.0, 1000.0):
        run(f"resampled to {fs:g} Hz", [resampled(r, fs) for r in recs], 1)
    for kind, snr in (("motion", 6.0), ("motion", 0.0), ("em", 6.0), ("em", 0.0), ("muscle", 0.0), ("wander", -6.0)):
        run(f"{kind} noise at {snr:g} dB SNR", [with_noise(r, kind, snr, seed=1) for r in recs], 1)


if __name__ == "__main__":
    main()
