"""RR-interval statistics: heart rate, HRV (SDNN, RMSSD) and simple rhythm flags.

Reference: Task Force of the ESC and NASPE, "Heart rate variability: standards
of measurement", Circulation 93(5), 1996 (SDNN, RMSSD definitions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

RR_MIN_S = 0.25  # shorter is an artefact (> 240 bpm)
RR_MAX_S = 3.0  # longer is an artefact or a dropout, but still a pause
PAUSE_S = 2.0
BRADY_BPM = 50.0
TACHY_BPM = 100.0
IRREGULAR_RMSSD_RATIO = 0.12  # RMSSD / mean RR; sinus rhythm at rest is ~0.03-0.08
IRREGULAR_MIN_BEATS = 10
PREMATURE = 0.8  # an RR below this share of the median, followed by a longer one: ectopic beat
COMPENSATORY = 1.1


@dataclass(frozen=True)
class RRStats:
    """Statistics of one series of RR intervals.

    Attributes:
        beats: usable RR intervals.
        hr_mean, hr_min, hr_max: bpm (None without usable intervals).
        rr_mean, sdnn, rmssd: ms (SDNN needs 2 intervals, RMSSD 3).
        pnn50: % of successive differences above 50 ms (needs 3 intervals).
        pause_max: s, the longest interval including artefact-length ones (None without intervals).
        ectopic: premature beats (see :func:`ectopic_beats`).
        flags: subset of {"pause", "brady", "tachy", "irregular", "ectopic"}, sorted.
    """

    beats: int
    hr_mean: float | None = None
    hr_min: float | None = None
    hr_max: float | None = None
    rr_mean: float | None = None
    sdnn: float | None = None
    rmssd: float | None = None
    flags: tuple[str, ...] = ()
    pnn50: float | None = None
    pause_max: float | None = None
    ectopic: int = 0


def rr_stats(rr_s: ArrayLike) -> RRStats:
    """Heart rate, HRV and rhythm flags of RR intervals.

    Args:
        rr_s: RR intervals in seconds, in order. Intervals outside
            [0.25, 3.0] s are excluded from the statistics; any interval of
            2.0 s or more still raises the ``pause`` flag.

    Returns:
        The statistics; HR is 60 / mean RR (bpm), min/max from the
        shortest/longest interval.
    """
    rr = np.asarray(rr_s, dtype=float).ravel()
    rr = rr[np.isfinite(rr) & (rr > 0)]
    pause = bool(np.any(rr >= PAUSE_S))
    pause_max = round(float(rr.max()), 3) if rr.size else None
    good = rr[(rr >= RR_MIN_S) & (rr <= RR_MAX_S)]
    if good.size == 0:
        return RRStats(0, flags=("pause",) if pause else (), pause_max=pause_max)
    mean = float(good.mean())
    hr_mean = 60.0 / mean
    sdnn = float(good.std(ddof=1)) * 1000 if good.size >= 2 else None
    rmssd = float(np.sqrt(np.mean(np.diff(good) ** 2))) * 1000 if good.size >= 3 else None
    flags = {"pause"} if pause else set()
    ectopic = ectopic_beats(good)
    pnn50 = float(np.mean(np.abs(np.diff(good)) > 0.05)) * 100 if good.size >= 3 else None
    if ectopic > 0:
        flags.add("ectopic")
    if hr_mean < BRADY_BPM:
        flags.add("brady")
    if hr_mean > TACHY_BPM:
        flags.add("tachy")
    if rmssd is not None and good.size >= IRREGULAR_MIN_BEATS and rmssd / (mean * 1000) > IRREGULAR_RMSSD_RATIO:
        flags.add("irregular")
    return RRStats(
        beats=int(good.size),
        hr_mean=hr_mean,
        hr_min=60.0 / float(good.max()),
        hr_max=60.0 / float(good.min()),
        rr_mean=mean * 1000,
        sdnn=sdnn,
        rmssd=rmssd,
        flags=tuple(sorted(flags)),
        pnn50=pnn50,
        pause_max=pause_max,
        ectopic=ectopic,
    )


def ectopic_beats(rr_s: ArrayLike) -> int:
    """Premature beats: an RR shorter than 80 % of the median RR followed by one above 110 %.

    Args:
        rr_s: RR intervals in seconds, in order (artefacts already removed).

    Reference: after the premature-beat rule of Malik et al., "Heart rate
    variability ... ectopic beats", Pacing Clin. Electrophysiol. 12, 1989.
    """
    rr = np.asarray(rr_s, dtype=float).ravel()
    if rr.size < 3:
        return 0
    median = float(np.median(rr))
    early = rr[:-1] < PREMATURE * median
    late = rr[1:] > COMPENSATORY * median
    return int(np.count_nonzero(early & late))
