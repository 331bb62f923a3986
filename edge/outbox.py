"""The durable outbox: every uplink message waits here, in SQLite, until the broker acks it.

* ``seq`` is assigned here: a per-device counter persisted in the same
  transaction as the message, so a seq is never reused, not after an ack, a
  drop or a restart.
* ``put(builder)`` calls ``builder(seq)`` inside that transaction and stores the
  encoded message; ``pending(limit)`` lists unacked messages in seq order;
  ``ack(seq)`` deletes one. A message is lost only by the bound policy below.
* Bound policy: when the stored payloads exceed ``max_bytes``, the oldest
  ``summary``, ``strip`` and ``status`` messages are dropped first (counted in
  ``dropped``); ``event`` messages (panic, symptom marks, feedback) are never
  dropped, even if the outbox then stays above its bound.
* Several processes may open the same file (the CLI marks a symptom while the
  agent runs): WAL mode, a busy timeout and ``BEGIN IMMEDIATE`` writes.
* A put may ask for an ECG strip around the message (``strip_reason``); the
  running agent collects such requests with :meth:`Outbox.take_strip_requests`.
  It may also set small persistent values (``state``) in the same transaction,
  e.g. the agent clears its open batch exactly when the batch becomes a message.
* The ledger (:meth:`Outbox.ledger`) is the outbox's own record of every seq it
  assigned, its kind and its fate (pending, acked, dropped, or reserved for a
  status message): what a reconciliation against the server compares with. It
  keeps the newest :data:`LEDGER_ROWS` seqs (a few MB at most).

Knows nothing of MQTT. Thread-safe (one lock around the connection) because
the MQTT client acks from its network thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from wire import Kind, Uplink, encode_for_uplink

BUSY_TIMEOUT_S = 10.0
DEFAULT_MAX_BYTES = 50_000_000
DROPPABLE_KINDS = (Kind.SUMMARY.value, Kind.STRIP.value, Kind.STATUS.value)
LEDGER_ROWS = 100_000  # seqs remembered in the ledger: 1-minute windows batched by 5 = about a year
PENDING, ACKED, DROPPED, RESERVED = "pending", "acked", "dropped", "reserved"

M = TypeVar("M", bound=Uplink)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS strip_requests (
    ref_seq INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, fate TEXT NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('next_seq', 0), ('acked', 0), ('dropped', 0);
"""


@dataclass(frozen=True)
class PendingMessage:
    """A stored, not yet acknowledged message."""

    seq: int
    kind: Kind
    payload: bytes


@dataclass(frozen=True)
class StripRequest:
    """A request for an ECG strip ending at ``time`` (s since epoch), caused by message ``ref_seq``.

    The agent's rhythm requests (from the summariser, not the outbox) have no causing message: ``ref_seq`` None.
    """

    ref_seq: int | None
    reason: str
    time: float


@dataclass(frozen=True)
class LedgerEntry:
    """One assigned seq: its message kind and its fate (``pending``, ``acked``, ``dropped`` or ``reserved``)."""

    seq: int
    kind: Kind
    fate: str


@dataclass(frozen=True)
class OutboxStats:
    """Counts for ``pisces edge status``."""

    pending: dict[str, int]
    pending_bytes: int
    next_seq: int
    acked: int
    dropped: int


class Outbox:
    """A durable, bounded, multi-process-safe store of uplink messages."""

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pages: int | None = None) -> None:
        """Open (or create) the outbox file.

        Args:
            path: the SQLite file.
            max_bytes: soft bound on stored payloads; beyond it the policy above drops messages.
            max_pages: hard cap on the file (SQLite ``max_page_count``, pages of 4 KiB): writes
                beyond it fail with "database or disk is full", as on a full phone. None: no cap.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
        if max_pages is not None:
            self._db.execute(f"PRAGMA max_page_count = {int(max_pages)}")
        with self._write() as db:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    db.execute(stmt)

    def close(self) -> None:
        """Close the connection (pending messages stay on disk)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def put(
        self,
        builder: Callable[[int], M],
        *,
        created: float = 0.0,
        strip_reason: str | None = None,
        state: Mapping[str, str | None] | None = None,
    ) -> M:
        """Assign the next seq, build the message with it and store it, atomically.

        Args:
            builder: called once with the new seq; returns the message to store.
            created: s since epoch, kept for inspection only.
            strip_reason: if set, also record a strip request ending at ``created``.
            state: persistent values to set (None: delete) in the same transaction.

        Returns:
            The stored message.
        """
        with self._write() as db:
            seq = self._take_seq(db, None)
            message = builder(seq)
            payload = encode_for_uplink(message)
            db.execute("INSERT INTO messages VALUES (?, ?, ?, ?)", (seq, message.kind.value, payload, created))
            db.execute("INSERT INTO ledger VALUES (?, ?, ?)", (seq, message.kind.value, PENDING))
            if strip_reason:
                db.execute("INSERT INTO strip_requests VALUES (?, ?, ?)", (seq, strip_reason, created))
            for name, value in (state or {}).items():
                self._set_state(db, name, value)
            self._enforce_bound(db)
        return message

    def reserve_seq(self) -> int:
        """Take a seq for a message that bypasses the outbox (the retained status and its last will)."""
        with self._write() as db:
            return self._take_seq(db, Kind.STATUS)

    @staticmethod
    def _take_seq(db: sqlite3.Connection, reserved: Kind | None) -> int:
        seq = int(db.execute("SELECT value FROM counters WHERE name = 'next_seq'").fetchone()[0])
        db.execute("UPDATE counters SET value = value + 1 WHERE name = 'next_seq'")
        db.execute("DELETE FROM ledger WHERE seq <= ?", (seq - LEDGER_ROWS,))
        if reserved is not None:
            db.execute("INSERT INTO ledger VALUES (?, ?, ?)", (seq, reserved.value, RESERVED))
        return seq

    def _enforce_bound(self, db: sqlite3.Connection) -> None:
        total = int(db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages").fetchone()[0])
        if total <= self.max_bytes:
            return
        marks = ",".join("?" * len(DROPPABLE_KINDS))
        rows = db.execute(
            f"SELECT seq, LENGTH(payload) FROM messages WHERE kind IN ({marks}) ORDER BY seq", DROPPABLE_KINDS
        ).fetchall()
        victims = []
        for seq, size in rows:
            if total <= self.max_bytes:
                break
            victims.append((seq,))
            total -= size
        db.executemany("DELETE FROM messages WHERE seq = ?", victims)
        db.executemany("UPDATE ledger SET fate = ? WHERE seq = ?", [(DROPPED, v) for (v,) in victims])
        db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'", (len(victims),))

    def pending(self, limit: int = 100, *, after: int = -1) -> list[PendingMessage]:
        """Unacknowledged messages with seq > ``after``, oldest first, at most ``limit``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, payload FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [PendingMessage(int(s), Kind(k), bytes(p)) for s, k, p in rows]

    def rewrite_pending(self, kinds: tuple[str, ...], rewrite: Callable[[str, bytes], bytes | None]) -> int:
        """Replace pending payloads of ``kinds`` by ``rewrite(kind, payload)`` (None: keep), in one transaction.

        Seqs stay; a message already published and awaiting its PUBACK may still
        arrive in its old form. Returns how many payloads were replaced.
        """
        marks = ",".join("?" * len(kinds))
        with self._write() as db:
            rows = db.execute(f"SELECT seq, kind, payload FROM messages WHERE kind IN ({marks})", kinds).fetchall()
            changed = [(new, seq) for seq, kind, payload in rows if (new := rewrite(kind, bytes(payload))) is not None]
            db.executemany("UPDATE messages SET payload = ? WHERE seq = ?", changed)
        return len(changed)

    def pending_count(self) -> int:
        """How many messages wait for an ack."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def ack(self, seq: int) -> bool:
        """Forget a message the broker acknowledged; False if it was not pending."""
        with self._write() as db:
            deleted = db.execute("DELETE FROM messages WHERE seq = ?", (seq,)).rowcount
            if deleted:
                db.execute("UPDATE counters SET value = value + 1 WHERE name = 'acked'")
                db.execute("UPDATE ledger SET fate = ? WHERE seq = ?", (ACKED, seq))
        return bool(deleted)

    def take_strip_requests(self) -> list[StripRequest]:
        """Remove and return the strip requests, oldest first."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM strip_requests LIMIT 1").fetchone() is None:
                return []  # the common case, without taking the write lock
        with self._write() as db:
            rows = db.execute("SELECT ref_seq, reason, time FROM strip_requests ORDER BY ref_seq").fetchall()
            db.execute("DELETE FROM strip_requests")
        return [StripRequest(int(s), str(r), float(t)) for s, r, t in rows]

    def get_state(self, name: str) -> str | None:
        """A small persistent value of the device's agent (e.g. the open symptom period)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, name: str, value: str | None) -> None:
        """Set (or with None, delete) a persistent value."""
        with self._write() as db:
            self._set_state(db, name, value)

    @staticmethod
    def _set_state(db: sqlite3.Connection, name: str, value: str | None) -> None:
        if value is None:
            db.execute("DELETE FROM state WHERE name = ?", (name,))
        else:
            db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (name, value))

    def ledger(self, *, after: int = -1) -> list[LedgerEntry]:
        """Every remembered seq above ``after`` with its kind and fate, in seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, fate FROM ledger WHERE seq > ? ORDER BY seq", (after,)
            ).fetchall()
        return [LedgerEntry(int(s), Kind(k), str(f)) for s, k, f in rows]

    def stats(self) -> OutboxStats:
        """Pending counts per kind, their bytes, and the persistent counters."""
        with self._lock:
            kinds = self._db.execute("SELECT kind, COUNT(*) FROM messages GROUP BY kind").fetchall()
            size = self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages").fetchone()[0]
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        return OutboxStats(
            pending={str(k): int(n) for k, n in kinds},
            pending_bytes=int(size),
            next_seq=int(counters["next_seq"]),
            acked=int(counters["acked"]),
            dropped=int(counters["dropped"]),
        )
