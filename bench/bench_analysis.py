"""Vitals and weather: the cost of the linkage query and of honest statistics, each beside a bare reference.

1. Linkage: a scratch database holds one patient's 30 days of 10-s summary
   windows (259,200 rows, COPY) with GPS on a third of the days, and 720 hours
   of simulated weather at home; :func:`server.weather.patient_hours` (hourly
   usable means, median GPS place, nearest weather point) is timed against the
   bare floor of the same scan, ``SELECT date_bin('1 hour', ...), avg(hr_mean)
   ... GROUP BY 1``.
2. Statistics: :func:`server.analysis.analyse_patient` on those 720 hours (24
   tests: Spearman and partial, autocorrelation-corrected, Holm) against 12
   plain ``scipy.stats.spearmanr`` calls (the naive analysis), and
   :func:`server.analysis.analyse_cohort` over 100 such patients.

    .venv/bin/python bench/bench_analysis.py [--repeats 20] [--server-url URL]

The PostgreSQL server defaults to ``PISCES_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psycopg
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server import analysis, weather  # noqa: E402
from server.store import add_patient, migrate  # noqa: E402
from simulators.weather import weather_hourly  # noqa: E402

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
DAYS = 30
HOME = (52.52, 13.40)


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in ms after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs)


def fill(url: str) -> int:
    migrate(url)
    rng = np.random.default_rng(1)
    n = DAYS * 8640
    with psycopg.connect(url) as conn:
        pid = add_patient(conn, "Bench Weather", "bench-weather")
        days = [(T0 + timedelta(days=d)).date() for d in range(DAYS)]
        conn.execute("SELECT pisces_ensure_summary_partitions(%s::date[])", (days,))
        buf = io.StringIO()
        hr = 70 + 8 * rng.standard_normal(n)
        act = 0.02 + 0.01 * rng.random(n)
        rmssd, resp = 30 + 5 * rng.standard_normal(n), 15 + rng.standard_normal(n)
        for i in range(n):
            t = T0 + timedelta(seconds=10 * i)
            gps = "\\N\t\\N"
            if (i // 8640) % 3 == 0:
                gps = f"{HOME[0] + 0.001 * rng.standard_normal():.6f}\t{HOME[1]:.6f}"
            end = (t + timedelta(seconds=10)).isoformat()
            buf.write(f"{pid}\tbench-weather\t{i // 60}\t{i % 60}\t{t.isoformat()}\t{end}"
                      f"\t12\t{hr[i]:.1f}\t{rmssd[i]:.1f}\t{resp[i]:.1f}\trest\t{act[i]:.4f}\t0.9\t{gps}\n")
        with conn.cursor().copy("COPY summaries (patient_id, device_id, seq, idx, start_at, end_at, beats, hr_mean,"
                                " rmssd, resp_rate, activity, intensity, quality, lat, lon) FROM STDIN") as cp:
            cp.write(buf.getvalue())
        hours = weather_hourly(*HOME, T0.timestamp(), DAYS * 24, seed=2)
        weather.store_weather(conn, weather.from_simulator(*HOME, hours))
        weather.set_home(conn, pid, *HOME)
        conn.execute("ANALYZE summaries")
    return pid


def bench_linkage(url: str, pid: int, repeats: int) -> list[weather.LinkedHour]:
    end = T0 + timedelta(days=DAYS)
    with psycopg.connect(url, autocommit=True) as conn:
        ours = timed(lambda: weather.patient_hours(conn, pid, T0, end, 0.5, gps=True), repeats)
        conn.execute("SET jit = off")  # the same setting the linkage query uses
        floor = timed(lambda: conn.execute(
            "SELECT date_bin('1 hour', start_at, 'epoch'), avg(hr_mean) FROM summaries"
            " WHERE patient_id = %s AND start_at >= %s AND start_at < %s GROUP BY 1", (pid, T0, end)).fetchall(),
            repeats)  # fmt: skip
        hours = weather.patient_hours(conn, pid, T0, end, 0.5, gps=True)
    print(f"linkage, 30 days of 10-s windows -> {len(hours)} hours: ours {ours:.1f} ms,"
          f" bare hourly mean {floor:.1f} ms, ratio {ours / floor:.2f}")
    return hours


def bench_stats(hours: list[weather.LinkedHour], repeats: int) -> None:
    cols = weather.analysis_columns(hours)
    ours = timed(lambda: analysis.analyse_patient(cols), repeats)
    arrays = {k: np.array([np.nan if v is None else v for v in vs], dtype=float) for k, vs in cols.items()}

    def naive() -> None:
        for v in analysis.VITALS:
            for f in analysis.FACTORS:
                stats.spearmanr(arrays[f], arrays[v], nan_policy="omit")

    ref = timed(naive, repeats)
    print(f"statistics, one patient x {len(hours)} hours: ours (24 tests) {ours:.1f} ms,"
          f" 12 plain spearmanr {ref:.1f} ms, ratio {ours / ref:.2f}")
    cohort = timed(lambda: analysis.analyse_cohort([cols] * 100), max(1, repeats // 10))
    print(f"statistics, cohort of 100 patients x {len(hours)} hours: ours {cohort:.0f} ms,"
          f" 100 x 12 plain spearmanr {100 * ref:.0f} ms, ratio {cohort / (100 * ref):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--server-url", default=os.environ.get("PISCES_TEST_DATABASE_URL",
                                                               "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    from tests.fix_db import scratch_database

    with scratch_database(args.server_url, "pisces_bench") as url:
        t = time.perf_counter()
        pid = fill(url)
        print(f"generated {DAYS * 8640} windows in {time.perf_counter() - t:.1f} s")
        hours = bench_linkage(url, pid, args.repeats)
        bench_stats(hours, args.repeats)


if __name__ == "__main__":
    main()
