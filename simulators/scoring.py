"""Scoring against the ground truth: beats and episodes, for DSP and alert tests and benchmarks.

Beat matching follows the usual rule of ANSI/AAMI EC57: a detection matches a
true beat within a tolerance (150 ms there; choose smaller to also score
timing), each true beat and each detection at most once, nearest first.
Episodes are intervals; one counts as detected when a detection overlaps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class BeatScore:
    """Beat detection against the truth: counts, sensitivity, positive predictivity, timing."""

    tp: int
    fn: int
    fp: int
    median_error_s: float | None  # |detected - true| over the matches

    @property
    def sensitivity(self) -> float:
        """tp / (tp + fn); 1 when there was nothing to find."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def ppv(self) -> float:
        """tp / (tp + fp); 1 when nothing was detected."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0


def score_beats(detected_s: ArrayLike, truth_s: ArrayLike, tolerance_s: float = 0.15) -> BeatScore:
    """Match detections to true beat times (both s, any order), each at most once, nearest first."""
    det = np.sort(np.asarray(detected_s, dtype=float).ravel())
    tru = np.sort(np.asarray(truth_s, dtype=float).ravel())
    if det.size == 0 or tru.size == 0:
        return BeatScore(0, int(tru.size), int(det.size), None)
    j = np.clip(np.searchsorted(det, tru), 1, det.size - 1) if det.size > 1 else np.zeros(tru.size, int)
    pairs = []
    for i, t in enumerate(tru):
        for k in {int(j[i]) - 1, int(j[i])} if det.size > 1 else {0}:
            if abs(det[k] - t) <= tolerance_s:
                pairs.append((abs(det[k] - t), i, k))
    used_t: set[int] = set()
    used_d: set[int] = set()
    errors: list[float] = []
    for err, i, k in sorted(pairs):
        if i not in used_t and k not in used_d:
            used_t.add(i)
            used_d.add(k)
            errors.append(err)
    tp = len(errors)
    return BeatScore(tp, int(tru.size) - tp, int(det.size) - tp, float(np.median(errors)) if errors else None)


@dataclass(frozen=True)
class EpisodeScore:
    """Episode detection: true episodes found, detections that match none."""

    found: int
    missed: int
    false: int


def score_episodes(
    detected: Sequence[tuple[float, float]], truth: Sequence[tuple[float, float]], slack_s: float = 0.0
) -> EpisodeScore:
    """Score detected (start, end) intervals against true ones; overlap (with ``slack_s``) is a match."""

    def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] - slack_s < b[1] and b[0] - slack_s < a[1]

    found = sum(any(overlaps(t, d) for d in detected) for t in truth)
    false = sum(not any(overlaps(t, d) for t in truth) for d in detected)
    return EpisodeScore(found, len(truth) - found, false)
