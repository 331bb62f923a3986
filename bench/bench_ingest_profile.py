"""Where one ingest worker's CPU goes: ``store_batch`` on pre-decoded batches, profiled, without MQTT.

Runs the worker's real database path (dedup, COPY staging, rollups, rule
locks, limits in force, rule evaluation, state save) on batches of the size
the worker takes, against a scratch database (dropped afterwards) on
``PISCES_BENCH_DATABASE_URL``, else ``PISCES_TEST_DATABASE_URL``, else an
embedded PostgreSQL. Prints windows/s of the storage path with the rules on
and with them off (the rule evaluator alone, in process, as a reference) and
the top functions by cumulative time.

    .venv/bin/python bench/bench_ingest_profile.py [--batches 20] [--batch-size 500] [--windows 5]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench.bench_ingest import database, payloads  # noqa: E402
from server import records  # noqa: E402
from server.consent import record_enrolment  # noqa: E402
from server.ingest import decode_one, store_batch  # noqa: E402
from server.rules import RuleConfig, RuleState, evaluate_windows  # noqa: E402
from server.store import migrate  # noqa: E402
from wire import Summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=500, help="messages per batch (the worker's default)")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--devices", type=int, default=2_000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    n = args.batches * args.batch_size
    decoded = [decode_one(t, p) for t, p in payloads(n, args.windows, args.devices)]
    batches = [decoded[i : i + args.batch_size] for i in range(0, n, args.batch_size)]
    config = RuleConfig()
    with database() as db_url:
        migrate(db_url)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.cursor().executemany(
                "INSERT INTO patients (name, device_id) VALUES (%s, %s)",
                [(f"Bench {i}", f"b{i:05d}") for i in range(args.devices)],
            )
            record_enrolment(conn, [r[0] for r in conn.execute("SELECT id FROM patients")])  # else quarantined
            days = set().union(*(records.summary_days(d.msg) for d in decoded if isinstance(d.msg, Summary)))
            records.ensure_partitions(conn, days)
            store_batch(conn, batches[0], config, rollups=True)  # warm: rule-state rows exist
            half = len(batches) // 2
            start = time.perf_counter()
            for batch in batches[1 : half + 1]:
                store_batch(conn, batch, config, rollups=True)
            plain = half * args.batch_size * args.windows / (time.perf_counter() - start)
            profile = cProfile.Profile()
            start = time.perf_counter()
            profile.enable()
            for batch in batches[half + 1 :]:
                store_batch(conn, batch, config, rollups=True)
            profile.disable()
            elapsed = time.perf_counter() - start
    windows = (len(batches) - 1 - half) * args.batch_size * args.windows
    summaries = [d.msg for d in decoded if isinstance(d.msg, Summary)]
    start = time.perf_counter()
    for msg in summaries:
        evaluate_windows(RuleState(), msg.windows, config)[0].to_json()
    rules_rate = len(summaries) * args.windows / (time.perf_counter() - start)
    print(f"store_batch, rules on:            {plain:10,.0f} windows/s (the worker's batch path, no MQTT)")
    print(f"store_batch, rules on (profiled): {windows / elapsed:10,.0f} windows/s")
    print(f"rule evaluator alone + to_json:   {rules_rate:10,.0f} windows/s  (store_batch = {plain / rules_rate:.2f} x)")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
