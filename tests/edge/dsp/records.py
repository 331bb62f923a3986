"""Annotated MIT-BIH records, perturbations and beat scoring, for the DSP tests and benchmarks.

Records are read with ``wfdb`` (a test/benchmark dependency) from
``../shared/data/ecg/mitdb`` relative to the repository root. Scoring follows
ANSI/AAMI EC57: one-to-one matching within +-150 ms, first and last 10 s not
scored, beat labels of the AAMI convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

REPO = Path(__file__).resolve().parents[3]
MITDB = REPO.parent / "shared" / "data" / "ecg" / "mitdb"
RECORDS = ("100", "101", "106")
BEAT_LABELS = frozenset("NLRBAaJSVrFejnE/fQ?")
MATCH_S = 0.150
EDGE_S = 10.0


@dataclass(frozen=True)
class Record:
    """One lead of an annotated record: signal (mV), rate (Hz), reference beats and rhythm labels."""

    name: str
    signal_mv: NDArray[np.float64]
    fs: float
    beats: NDArray[np.int64]
    labels: tuple[str, ...]
    rhythm: tuple[tuple[int, str], ...]  # (sample, rhythm label such as "(N" or "(VT")


@lru_cache(maxsize=8)
def load_record(name: str, seconds: float | None = None) -> Record:
    """First lead (MLII) of a MIT-BIH record, optionally only its first ``seconds``."""
    import wfdb

    path = str(MITDB / name)
    rec = wfdb.rdrecord(path, channels=[0], sampto=None if seconds is None else int(seconds * 360))
    ann = wfdb.rdann(path, "atr", sampto=None if seconds is None else int(seconds * 360))
    symbols = list(ann.symbol)
    keep = np.array([s in BEAT_LABELS for s in symbols], dtype=bool)
    rhythm = tuple((int(s), str(a).rstrip("\x00")) for s, sym, a in zip(ann.sample, symbols, ann.aux_note) if sym == "+")
    return Record(
        name,
        np.asarray(rec.p_signal[:, 0], dtype=float),
        float(rec.fs),
        np.asarray(ann.sample, dtype=np.int64)[keep],
        tuple(s for s, k in zip(symbols, keep) if k),
        rhythm,
    )


def resampled(rec: Record, fs: float) -> Record:
    """The record at another rate (polyphase resampling; beats moved to the nearest sample)."""
    from fractions import Fraction

    ratio = Fraction(fs / rec.fs).limit_denominator(1000)
    x = resample_poly(rec.signal_mv, ratio.numerator, ratio.denominator)
    beats = np.round(rec.beats * fs / rec.fs).astype(np.int64)
    return Record(rec.name, np.asarray(x, dtype=float), float(fs), beats, rec.labels, rec.rhythm)


@dataclass(frozen=True)
class Score:
    """Beat-detection score: counts, Se, +P, F1 and median |timing error| (s) of matches."""

    tp: int
    fn: int
    fp: int
    timing_s: float

    @property
    def se(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def ppv(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def f1(self) -> float:
        return 2 * self.tp / max(2 * self.tp + self.fn + self.fp, 1)


def score_beats(ref: NDArray[np.int64], det: NDArray[np.int64], fs: float, n: int) -> Score:
    """Match detections to reference beats one to one within +-150 ms (greedy by distance)."""
    lo, hi = EDGE_S * fs, n - EDGE_S * fs
    r = np.asarray(ref, dtype=float)
    d = np.asarray(det, dtype=float)
    tol = MATCH_S * fs
    pairs = []
    j0 = 0
    for i, x in enumerate(r):
        while j0 < d.size and d[j0] < x - tol:
            j0 += 1
        j = j0
        while j < d.size and d[j] <= x + tol:
            pairs.append((abs(d[j] - x), i, j))
            j += 1
    pairs.sort()
    used_r, used_d, errors = set(), set(), []
    for dist, i, j in pairs:
        if i in used_r or j in used_d:
            continue
        used_r.add(i)
        used_d.add(j)
        if lo <= r[i] < hi:
            errors.append(dist / fs)
    scored_r = {i for i in range(r.size) if lo <= r[i] < hi}
    scored_d = {j for j in range(d.size) if lo <= d[j] < hi}
    tp = len(scored_r & used_r)
    fn = len(scored_r - used_r)
    fp = len(scored_d - used_d)
    return Score(tp, fn, fp, float(np.median(errors)) if errors else float("nan"))


def noise(kind: str, n: int, fs: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Unit-RMS noise of one kind: ``"wander"`` (0.05-0.5 Hz drift), ``"muscle"`` (broadband
    20-100 Hz EMG-like), ``"motion"`` (electrode motion: 0.5-12 Hz bursts with baseline steps),
    ``"em"`` (harsher electrode motion: bursts of 1-25 Hz noise overlapping the QRS band, sharp
    baseline steps and QRS-like blips of 30-80 ms at random times)."""
    from scipy.signal import butter, sosfiltfilt

    white = rng.standard_normal(n)
    if kind == "wander":
        t = np.arange(n) / fs
        x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) for f in rng.uniform(0.05, 0.5, 3))
    elif kind == "muscle":
        sos = butter(2, [20.0, min(100.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
        x = sosfiltfilt(sos, white)
    elif kind == "motion":
        sos = butter(2, [0.5, 12.0], btype="bandpass", fs=fs, output="sos")
        bursts = sosfiltfilt(butter(1, 0.3, fs=fs, output="sos"), rng.standard_normal(n)) ** 2
        steps = np.cumsum(np.where(rng.random(n) < 0.3 / fs, rng.normal(0, 3, n), 0.0))
        steps = sosfiltfilt(butter(1, 5.0, fs=fs, output="sos"), steps - np.linspace(steps[0], steps[-1], n))
        x = sosfiltfilt(sos, white) * bursts / np.sqrt(np.mean(bursts**2)) + 0.3 * steps / max(np.std(steps), 1e-9)
    elif kind == "em":
        x = _electrode_motion(n, fs, rng)
    else:
        raise ValueError(kind)
    x = np.asarray(x, dtype=float)
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def _electrode_motion(n: int, fs: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Bursty 1-25 Hz noise, decaying baseline steps and QRS-like blips, each part scaled on its own,
    so the mix is the same over a 5 min excerpt and a 30 min record."""
    from scipy.signal import butter, sosfilt, sosfiltfilt

    def unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
        return v / max(float(np.sqrt(np.mean(v**2))), 1e-12)

    envelope = sosfiltfilt(butter(1, 0.2, fs=fs, output="sos"), rng.standard_normal(n)) ** 2
    envelope = envelope / max(float(np.mean(envelope)), 1e-12)
    band = sosfiltfilt(butter(2, [1.0, min(25.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos"), rng.standard_normal(n))
    jumps = np.where(rng.random(n) < 0.2 / fs, rng.normal(0, 1, n), 0.0)
    steps = sosfilt(butter(1, 0.5, btype="highpass", fs=fs, output="sos"), np.cumsum(jumps))  # the amplifier recovers
    steps = sosfiltfilt(butter(1, 15.0, fs=fs, output="sos"), steps)  # edges of ~10 ms
    blips = np.zeros(n)
    for at in np.flatnonzero(rng.random(n) < 0.5 / fs * np.minimum(envelope, 3.0)):
        width = rng.uniform(0.03, 0.08) * fs
        t = np.arange(-int(2 * width), int(2 * width) + 1)
        lo, hi = max(at + t[0], 0), min(at + t[-1] + 1, n)
        blips[lo:hi] += rng.normal(0, 1) * np.exp(-0.5 * (t[lo - at - t[0] : hi - at - t[0]] / (0.4 * width)) ** 2)
    return unit(band) * np.sqrt(envelope) + 0.5 * unit(steps) + 0.5 * unit(blips)


def with_noise(rec: Record, kind: str, snr_db: float, seed: int = 0) -> Record:
    """The record plus noise of ``kind`` at ``snr_db`` (RMS of the band-limited ECG over RMS of noise)."""
    rng = np.random.default_rng(seed)
    x = rec.signal_mv - np.median(rec.signal_mv)
    power = float(np.mean((x - np.convolve(x, np.ones(int(rec.fs)) / int(rec.fs), mode="same")) ** 2))
    scale = np.sqrt(power / 10 ** (snr_db / 10))
    return Record(rec.name, rec.signal_mv + scale * noise(kind, x.size, rec.fs, rng), rec.fs, rec.beats, rec.labels, rec.rhythm)


def spliced(rec: Record, rr_s: NDArray[np.float64], seed: int = 0) -> Record:
    """A new record of the record's own beats re-timed to the RR intervals ``rr_s`` (s).

    Each beat is cut from -0.25 s to +0.45 s around its R peak (shortened for
    short RR) and laid onto an isoelectric baseline with a little noise, so
    pauses are truly beat-free and irregular rhythms (AF) keep real morphology.
    """
    rng = np.random.default_rng(seed)
    fs = rec.fs
    pre, post = int(0.25 * fs), int(0.45 * fs)
    sources = rec.beats[(rec.beats > pre + 1) & (rec.beats < rec.signal_mv.size - post - 1)]
    times = np.concatenate([[1.0], 1.0 + np.cumsum(rr_s)])
    n = int((times[-1] + 1.5) * fs)
    x = 0.01 * rng.standard_normal(n)
    beats = np.round(times * fs).astype(np.int64)
    for k, b in enumerate(beats):
        src = int(sources[rng.integers(sources.size)])
        gap = int(0.6 * fs * min(rr_s[k - 1] if k else 1.0, rr_s[k] if k < rr_s.size else 1.0))
        lo, hi = min(pre, gap), min(post, gap)
        piece = rec.signal_mv[src - lo : src + hi]
        piece = piece - np.linspace(piece[0], piece[-1], piece.size)
        x[b - lo : b + hi] += piece * np.hanning(piece.size) ** 0.1
    return Record(rec.name + "-spliced", x, fs, beats, ("N",) * beats.size, ())
