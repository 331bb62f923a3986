"""Portal read speed through the HTTP API on a generated store: symptom search, 30-day and long charts.

Fills a scratch database (COPY) with P patients x D days of one-minute summary
windows (with rhythm flags on ~1 % of them; the first L patients have LD days),
symptom periods, then the rollups (``refresh_rollups``, as the ingest would have
kept them), starts the real server, and times over HTTP with one signed-in
clinician (admin, so every patient is searchable):

- symptom search (a random filter set: tags, max HR, irregular, date range),
- a 30-day patient chart (``/series`` + ``/timeline``, as the page loads them),
- an LD-day chart of the long-history patients (same two requests),

against the reference of ``GET /api/auth/me`` (the cost of an authenticated
request that reads nothing), printing p50/p95 of each and the ratio; then the
LD-day series query itself from the rollups (what ``/series`` runs) against the
same points aggregated from the raw windows (the source before the rollups).

    .venv/bin/python bench/bench_portal.py --patients 500 --days 30 --periods 20000 --long-patients 20 --long-days 180
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.consent import record_enrolment  # noqa: E402
from server.records import ROLLUP_QUALITY  # noqa: E402
from server.store import add_user, migrate, refresh_rollups  # noqa: E402
from server.trends import _RAW_SERIES, ARRHYTHMIA_FLAGS, series, series_bucket, series_source  # noqa: E402

TAGS = ["palpitations", "dizzy", "chest_pain", "breathless", "tired", "faint"]
COLUMNS = ("patient_id, device_id, seq, idx, start_at, end_at, beats, hr_mean, hr_min, hr_max, rr_mean, sdnn,"
           " rmssd, flags, resp_rate, activity, intensity, quality, battery")


def generate(url: str, patients: int, days: int, periods: int, long: tuple[int, int], seed: int = 7) -> datetime:
    """Fill the store (``long``: that many patients with that many days); return the end of the data."""
    rng = random.Random(seed)
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = end - timedelta(days=days)
    long_start = end - timedelta(days=max(days, long[1]))
    with psycopg.connect(url) as conn:
        ids = [conn.execute("INSERT INTO patients (name, device_id) VALUES (%s, %s) RETURNING id",
                            (f"Bench {i:04d}", f"bench-{i:04d}")).fetchone()[0] for i in range(patients)]
        record_enrolment(conn, ids)  # consent to monitoring, as enrolment records it
        conn.commit()
        if conn.execute("SELECT to_regproc('pisces_ensure_summary_partitions')").fetchone()[0]:
            conn.execute("SELECT pisces_ensure_summary_partitions(%s)",
                         ([(long_start + timedelta(days=d)).date() for d in range((end - long_start).days + 2)],))
            conn.commit()
        for n, pid in enumerate(ids):
            base = rng.uniform(58, 82)
            first = long_start if n < long[0] else start
            with conn.cursor().copy(f"COPY summaries ({COLUMNS}) FROM STDIN") as copy:
                for m in range(int((end - first).total_seconds()) // 60):
                    t = first + timedelta(minutes=m)
                    hr = base + 8 * ((m // 60) % 24 in range(8, 22)) + rng.gauss(0, 4)
                    flags = ["irregular"] if rng.random() < 0.01 else (["pause"] if rng.random() < 0.002 else [])
                    copy.write_row((pid, f"bench-{pid:04d}", m // 5, m % 5, t, t + timedelta(minutes=1), int(hr),
                                    hr, hr - 6, hr + 9, 60000 / hr, 45.0, 32.0, flags, 15.0, "rest", 0.02,
                                    0.95, 80))
            conn.commit()
        with conn.cursor().copy("COPY symptom_periods (patient_id, period, started_at, ended_at, tags, severity,"
                                " note) FROM STDIN") as copy:
            for k in range(periods):
                t0 = start + timedelta(minutes=rng.randrange(days * 1440 - 60))
                copy.write_row((rng.choice(ids), f"p{k}", t0, t0 + timedelta(minutes=rng.randint(2, 45)),
                                rng.sample(TAGS, rng.randint(1, 2)), rng.randint(1, 5), "felt unwell"))
        conn.commit()
        conn.execute("UPDATE patients SET last_data_at = %s", (end,))  # as the ingest keeps it
        conn.execute("ANALYZE")
        conn.commit()
    return end


def timed(client: httpx.Client, path: str, params: dict | None = None) -> float:
    t = time.perf_counter()
    r = client.get(path, params=params)
    elapsed = time.perf_counter() - t
    assert r.status_code == 200, r.text
    return elapsed * 1000


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--periods", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--long-patients", type=int, default=20, help="patients with a long history")
    parser.add_argument("--long-days", type=int, default=180, help="days of history of those patients")
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database-url", help="use (and keep) this database; generate only if it has no patients")
    args = parser.parse_args()
    if args.database_url:
        run(args, args.database_url)
        return
    from tests.fix_db import scratch_database

    with scratch_database(args.server_url, "pisces_bench") as url:
        run(args, url)


def run(args: argparse.Namespace, url: str) -> None:
    """Generate (if the database is empty), serve and measure."""
    migrate(url)
    end = ensure_data(url, args)
    port = serve(url)
    base = f"http://127.0.0.1:{port}"
    token = httpx.post(f"{base}/api/auth/login", json={"username": "bench", "password": "bench password"}).json()
    rng = random.Random(1)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token['token']}"}, timeout=120) as c:
        t = time.perf_counter()
        # The first search fills the period statistics and baselines caches.
        first = c.get("/api/symptoms/search", params={"limit": 500}, timeout=None)
        assert first.status_code == 200, first.text
        print(f"first search (fills the caches): {time.perf_counter() - t:.1f} s")
        ref = [timed(c, "/api/auth/me") for _ in range(args.requests)]
        search = [timed(c, "/api/symptoms/search", search_params(rng, end, args.days)) for _ in range(args.requests)]
        span = {"start": (end - timedelta(days=30)).isoformat(), "end": end.isoformat()}
        chart = []
        for _ in range(args.requests):
            pid = rng.randint(1, args.patients)
            series = timed(c, f"/api/patients/{pid}/series", span)
            chart.append(series + timed(c, f"/api/patients/{pid}/timeline", span))
        long_span = {"start": (end - timedelta(days=args.long_days)).isoformat(), "end": end.isoformat()}
        long_chart = []
        for _ in range(args.requests):
            pid = rng.randint(1, args.long_patients)
            series = timed(c, f"/api/patients/{pid}/series", long_span)
            long_chart.append(series + timed(c, f"/api/patients/{pid}/timeline", long_span))
    print(f"{'':22} {'p50 ms':>8} {'p95 ms':>8} {'p95 / me':>9}")
    for name, values in (("auth/me (reference)", ref), ("symptom search", search), ("30-day chart", chart),
                         (f"{args.long_days}-day chart", long_chart)):
        print(f"{name:22} {pct(values, 50):8.1f} {pct(values, 95):8.1f} {pct(values, 95) / pct(ref, 95):9.1f}")
    compare_sources(url, end, args)


def compare_sources(url: str, end: datetime, args: argparse.Namespace) -> None:
    """The long chart's series query from the rollups vs the same points from the raw windows, in-process."""
    start = end - timedelta(days=args.long_days)
    bucket = series_bucket((end - start).total_seconds())
    rng = random.Random(2)
    rollup, raw = [], []
    with psycopg.connect(url) as conn:
        conn.execute("SET jit = off")  # as the portal's reads run
        for _ in range(max(20, args.requests // 5)):
            pid = rng.randint(1, args.long_patients)
            t = time.perf_counter()
            points = series(conn, pid, start, end, bucket, ROLLUP_QUALITY)
            rollup.append((time.perf_counter() - t) * 1000)
            params = {"b": bucket, "q": ROLLUP_QUALITY, "pid": pid, "start": start, "end": end,
                      "flags": list(ARRHYTHMIA_FLAGS)}
            t = time.perf_counter()
            same = conn.execute(_RAW_SERIES, params).fetchall()
            raw.append((time.perf_counter() - t) * 1000)
            assert len(same) == len(points)
    src = series_source(bucket, ROLLUP_QUALITY)
    print(f"{args.long_days}-day series query ({bucket} s buckets, {len(points)} points):"
          f" {src} p50 {pct(rollup, 50):.1f} / p95 {pct(rollup, 95):.1f} ms,"
          f" raw windows p50 {pct(raw, 50):.1f} / p95 {pct(raw, 95):.1f} ms,"
          f" raw / rollup p95 {pct(raw, 95) / pct(rollup, 95):.1f}")


def ensure_data(url: str, args: argparse.Namespace) -> datetime:
    """The end of the data, generating it first if the database has no patients."""
    with psycopg.connect(url) as conn:
        count, newest = conn.execute("SELECT count(*), max(last_data_at) FROM patients").fetchone()
    if count:
        print(f"reusing {count} patients (data until {newest:%Y-%m-%d %H:%M})")
        return newest
    t = time.perf_counter()
    end = generate(url, args.patients, args.days, args.periods, (args.long_patients, args.long_days))
    rows = (args.patients * args.days + args.long_patients * max(0, args.long_days - args.days)) * 1440
    gen_s = time.perf_counter() - t
    print(f"generated {rows:,} windows, {args.periods:,} periods in {gen_s:.0f} s ({rows / gen_s:,.0f} rows/s)")
    t = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        refresh_rollups(conn)  # the ingest keeps them; this bulk load went around it
        conn.execute("ANALYZE summary_1m")
        conn.execute("ANALYZE summary_1h")
    print(f"rollups of the generated windows in {time.perf_counter() - t:.0f} s")
    with psycopg.connect(url) as conn:
        add_user(conn, "bench", "bench password", "admin")
    return end


def serve(url: str) -> int:
    """Start the real server (no ingest) in a thread; return its port."""
    import uvicorn

    from server.app import create_app
    from server.embedded import free_port
    from server.settings import ServerSettings

    port = free_port()
    app = create_app(ServerSettings(database_url=url, ingest_in_server=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return port


def search_params(rng: random.Random, end: datetime, days: int) -> dict[str, object]:
    """A clinician's typical search: a tag, often a heart-rate or rhythm condition, often a date range."""
    q: dict[str, object] = {"tag": rng.choice(TAGS)}
    if rng.random() < 0.5:
        q["hr_max_above"] = rng.choice([90, 100, 110])
    if rng.random() < 0.3:
        q["irregular"] = "true"
    if rng.random() < 0.5:
        q["start"] = (end - timedelta(days=rng.randint(1, days))).isoformat()
    return q


if __name__ == "__main__":
    main()
