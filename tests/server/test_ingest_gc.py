"""A worker's garbage collector (``quiet_gc``): decoding held messages sets off (next to) no collections.

Run in a fresh interpreter, so that the test session's own collector is left as it is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, sys
from server.ingest import decode_one{setup}
from wire import Kind, Summary, SummaryWindow, encode, topic_for

def window(t):
    return SummaryWindow(start=t, end=t + 10, beats=12, hr_mean=72.0, hr_min=66.0, hr_max=80.0, flags=("pause",),
                         activity="rest", quality=0.9, lat=59.3, lon=18.1)

messages = [(topic_for(f"d{{k % 50}}", Kind.SUMMARY),
             encode(Summary(f"d{{k % 50}}", k, tuple(window(1.7e9 + 10 * (5 * k + i)) for i in range(5)))))
            for k in range(3000)]
runs = []
gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
held = [decode_one(t, p) for t, p in messages]  # held until their batch commits, as a worker holds them
assert all(d.msg is not None for d in held)
print(len(runs))
"""


def collections_while_decoding(setup: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(setup=setup)], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    return int(out.stdout.strip())


def test_a_worker_decodes_held_messages_without_a_collection_where_the_default_collects_often() -> None:
    assert collections_while_decoding("") > 20  # CPython's defaults: one per 700 net new objects
    # 15,000 windows held, ~60,000 tracked objects: past the 50,000 a collection waits for, once
    assert collections_while_decoding("\nfrom server.ingest import quiet_gc; quiet_gc()") <= 1
