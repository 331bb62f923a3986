"""Pure signal processing of the edge agent: numpy/scipy only, no I/O, no clocks.

Every function takes arrays and an explicit sampling rate ``fs`` (Hz) and
returns arrays or frozen dataclasses.
"""

from edge.dsp.accel import Activity, accel_activity, accel_features
from edge.dsp.ecg import ecg_quality
from edge.dsp.qrs import EcgPeakStream, ecg_peaks
from edge.dsp.resp import RespRate, resp_rate, resp_rate_from_ecg
from edge.dsp.rhythm import Episode, RhythmStream, rhythm_episodes, rhythm_vt_runs
from edge.dsp.rr import RRStats, rr_stats
from edge.dsp.width import ecg_qrs_widths, ecg_wide_beats

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
    "ecg_qrs_widths",
    "ecg_quality",
    "ecg_wide_beats",
    "resp_rate",
    "resp_rate_from_ecg",
    "rhythm_episodes",
    "rhythm_vt_runs",
    "rr_stats",
]
