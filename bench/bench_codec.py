"""Wire codec throughput: our validated encode/decode against bare ``json`` (the reference).

The reference serialises the same content as plain dicts with no validation:
the ratio is what strict validation and dataclasses cost per message.

    .venv/bin/python bench/bench_codec.py [--messages N] [--windows W]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from typing import Any, Callable

from wire import Summary, SummaryWindow, decode, encode

T0 = 1_763_900_000.0


def make_summary(seq: int, windows: int) -> Summary:
    """A realistic summary message of ``windows`` one-minute windows."""
    return Summary(
        "dev-bench",
        seq,
        tuple(
            SummaryWindow(
                start=T0 + 60 * i, end=T0 + 60 * (i + 1), beats=72, hr_mean=72.4, hr_min=63.1,
                hr_max=88.0, rr_mean=829.0, sdnn=41.2, rmssd=30.3, flags=("ectopic",), resp_rate=14.2,
                activity="rest", intensity=0.012, quality=0.97, battery=80,
            )
            for i in range(windows)
        ),
    )


def rate(fn: Callable[[], Any], n: int) -> float:
    """Calls per second of ``fn`` over ``n`` calls (best of three)."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--windows", type=int, default=5, help="summary windows per message")
    args = parser.parse_args()
    msg = make_summary(1, args.windows)
    payload = encode(msg)
    plain = {"v": 1, "kind": "summary", "device": msg.device, "seq": msg.seq, "windows": [asdict(w) for w in msg.windows]}
    plain_payload = json.dumps(plain, separators=(",", ":")).encode()
    ours_enc = rate(lambda: encode(msg), args.messages)
    ref_enc = rate(lambda: json.dumps(plain, separators=(",", ":")).encode(), args.messages)
    ours_dec = rate(lambda: decode(payload), args.messages)
    ref_dec = rate(lambda: json.loads(plain_payload), args.messages)
    print(f"python {platform.python_version()} on {platform.machine()}, {args.windows} windows/message, {len(payload)} bytes")
    print(f"{'':8} {'ours msg/s':>12} {'json msg/s':>12} {'ours/json':>10}")
    print(f"{'encode':8} {ours_enc:12,.0f} {ref_enc:12,.0f} {ours_enc / ref_enc:10.2f}")
    print(f"{'decode':8} {ours_dec:12,.0f} {ref_dec:12,.0f} {ours_dec / ref_dec:10.2f}")
    print(f"decode: {ours_dec * args.windows:,.0f} windows/s")


if __name__ == "__main__":
    main()
