"""ECG generation speed: our ECGSYN-style simulator against NeuroKit2's ECGSYN (the reference).

Both generate one patient's single-lead ECG at rest for ``--seconds`` simulated
seconds at each sampling rate; the figure is the real-time factor (simulated
seconds per second of one core). Ours is timed three ways: the ECG alone in
10 s chunks, the ECG in 1 s chunks (as the virtual strap asks for it), and the
complete Polar H10 byte stream (ECG, accelerometer, HR and battery
notifications, GATT-encoded). NeuroKit2 is run as ``ecg_simulate(method="ecgsyn")``
with its default noise, in one call (it has no streaming mode).

    .venv/bin/python bench/bench_sim_ecg.py [--seconds 600] [--fs 130 250 500]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections.abc import Callable

import numpy as np

from simulators.body import SimulatedBody
from simulators.scenarios import Scenario
from simulators.wearable import VirtualWearable


def best_of(fn: Callable[[], object], runs: int = 3) -> float:
    """Fastest wall time (s) of ``runs`` calls of ``fn``."""
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def ours(seconds: float, fs: float, chunk_s: float) -> None:
    """Our ECG with noise, ``chunk_s`` seconds per call."""
    body = SimulatedBody(Scenario("bench", resting_hr=70, seed=1), ecg_fs=fs)
    step = int(round(chunk_s * fs))
    for i in range(0, int(seconds * fs), step):
        body.ecg(i / fs, step)


def strap(seconds: float) -> None:
    """The full Polar H10 notification stream, GATT bytes and all."""
    w = VirtualWearable(Scenario("bench", resting_hr=70, seed=1), start_time=1.7e9, duration_s=seconds, speed=0)
    for _ in w.simulate():
        pass


def reference(seconds: float, fs: float) -> None:
    """NeuroKit2's ECGSYN."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nk.ecg_simulate(duration=int(seconds), sampling_rate=int(fs), heart_rate=70, method="ecgsyn", random_state=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="simulated seconds per run")
    parser.add_argument("--fs", type=float, nargs="+", default=[130.0, 250.0, 500.0])
    args = parser.parse_args()
    s = args.seconds
    print(f"python {platform.python_version()}, numpy {np.__version__}; {s:g} s of ECG per run, best of 3")
    print(f"{'fs Hz':>6} {'ours 10 s chunks':>17} {'ours 1 s chunks':>16} {'neurokit2 ecgsyn':>17} {'ratio (10 s)':>13}")
    for fs in args.fs:
        a = s / best_of(lambda: ours(s, fs, 10.0))
        b = s / best_of(lambda: ours(s, fs, 1.0))
        r = s / best_of(lambda: reference(s, fs))
        print(f"{fs:6g} {a:16,.0f}x {b:15,.0f}x {r:16,.0f}x {a / r:13.1f}")
    h10 = s / best_of(lambda: strap(s))
    print(f"Polar H10 byte stream (130 Hz ECG + 25 Hz ACC + HR + battery): {h10:,.0f}x real time")


if __name__ == "__main__":
    main()
