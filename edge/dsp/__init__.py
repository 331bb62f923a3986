"""Pure signal processing of the edge agent: numpy/scipy only, no I/O, no clocks.

Every function takes arrays and an explicit sampling rate ``fs`` (Hz) and
returns arrays or frozen dataclasses.
"""

from edge.dsp.accel import Activity, accel_activity, accel_features
from edge.dsp.ecg import ecg_quality
from edge.dsp.qrs import EcgPeakStream, ecg_peaks
from edge.dsp.resp import RespRate, resp_rate, resp_rate_from_ecg
from edge.dsp.rhythm import Episode, RhythmStream, rhythm_episodes
from edge.dsp.rr import RRStats, rr_stats

__all__ = [
    "Activity",
    "EcgPeakStream",
    "Episode",
    "RRStats",
    "RespRate",
    "RhythmStream",
    "accel_activity",
    "accel_features",
    "ecg_peaks",
    "ecg_quality",
    "resp_rate",
    "resp_rate_from_ecg",
    "rhythm_episodes",
    "rr_stats",
]
