"""The durable outbox: seq never reused, survives kills, bounded by policy, multi-connection safe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge.outbox import Outbox
from wire import Event, EventType, Kind, Summary, SummaryWindow, decode

DEV = "dev-outbox"


def _event(seq: int) -> Event:
    return Event(DEV, seq, EventType.PANIC, 1_700_000_000.0)


def _summary(seq: int) -> Summary:
    return Summary(DEV, seq, tuple(SummaryWindow(1e9 + 60 * i, 1e9 + 60 * (i + 1), 60) for i in range(20)))


def test_put_pending_ack_in_seq_order(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        seqs = [box.put(_event).seq for _ in range(5)]
        assert seqs == [0, 1, 2, 3, 4]
        assert [p.seq for p in box.pending(3)] == [0, 1, 2]
        assert box.ack(1) and not box.ack(1)
        assert [p.seq for p in box.pending()] == [0, 2, 3, 4]
        assert decode(box.pending(1)[0].payload) == _event(0)
        assert box.pending(1)[0].kind is Kind.EVENT


def test_seq_never_reused_after_ack_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        for _ in range(3):
            box.ack(box.put(_event).seq)
        assert box.reserve_seq() == 3
    with Outbox(path) as box:
        assert box.put(_event).seq == 4
        assert box.stats().acked == 3


def test_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    code = (
        "import os; from edge.outbox import Outbox; from wire import Event, EventType\n"
        f"b = Outbox({str(path)!r})\n"
        f"[b.put(lambda s: Event({DEV!r}, s, EventType.PANIC, 1e9)) for _ in range(7)]\n"
        "os._exit(9)  # no close, no cleanup\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    with Outbox(path) as box:
        assert [p.seq for p in box.pending()] == list(range(7))


def test_bound_drops_oldest_summaries_never_events(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3", max_bytes=20_000) as box:
        box.put(_summary)
        size = box.stats().pending_bytes
        box.put(_event)
        for _ in range(40):
            box.put(_summary)
        for _ in range(100):
            box.put(_event)
        stats = box.stats()
        kinds = [p.kind for p in box.pending(1000)]
    assert kinds.count(Kind.EVENT) == 101  # every panic kept, even beyond the bound
    assert stats.dropped >= 40 - 20_000 // size
    assert stats.pending.get("summary", 0) < 41


def test_two_connections_and_two_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    a, b = Outbox(path), Outbox(path)
    for _ in range(10):
        a.put(_event)
        b.put(_event)
    code = (
        "from edge.outbox import Outbox; from wire import Event, EventType\n"
        f"b = Outbox({str(path)!r})\n"
        f"[b.put(lambda s: Event({DEV!r}, s, EventType.PANIC, 1e9)) for _ in range(50)]\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    for _ in range(50):
        a.put(_event)
    assert all(p.wait(timeout=60) == 0 for p in procs)
    seqs = [p.seq for p in b.pending(1000)]
    assert seqs == list(range(170))
    a.close()
    b.close()


def test_strip_requests_and_state(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        box.put(_event, created=5.0, strip_reason="panic")
        assert [(r.ref_seq, r.reason, r.time) for r in box.take_strip_requests()] == [(0, "panic", 5.0)]
        assert box.take_strip_requests() == []
        box.set_state("x", "1")
        assert box.get_state("x") == "1"
        box.set_state("x", None)
        assert box.get_state("x") is None
