"""Activity class and intensity from a chest-worn 3-axis accelerometer.

Device frame (as the simulators and a chest strap worn upright): +y points up
along the trunk, +z out of the chest. Upright, gravity reads about (0, 1, 0) g;
lying, the y component is small.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

UPRIGHT_AXIS = 1  # y
LYING_MAX_UPRIGHT_G = 0.5  # |mean y| below this share of |mean a| means lying
REST_MAX_G = 0.05
WALK_MAX_G = 0.35


def accel_activity(xyz_g: ArrayLike, fs: float) -> tuple[str, float | None]:
    """Classify activity as rest, walk, run or lying, with its intensity.

    Args:
        xyz_g: shape (n, 3), acceleration in g.
        fs: sampling rate in Hz (kept for a later frequency-domain classifier;
            the current thresholds do not depend on it).

    Returns:
        (class, intensity): intensity is the mean absolute deviation of |a|
        from 1 g, in g; ("unknown", None) without samples.
    """
    a = np.asarray(xyz_g, dtype=float).reshape(-1, 3)
    if a.shape[0] == 0 or fs <= 0:
        return "unknown", None
    magnitude = np.linalg.norm(a, axis=1)
    intensity = float(np.mean(np.abs(magnitude - 1.0)))
    gravity = a.mean(axis=0)
    upright = abs(float(gravity[UPRIGHT_AXIS])) / max(float(np.linalg.norm(gravity)), 1e-6)
    if intensity < REST_MAX_G:
        return ("lying" if upright < LYING_MAX_UPRIGHT_G else "rest"), intensity
    return ("walk" if intensity < WALK_MAX_G else "run"), intensity
