"""Live alerts: ``GET /api/alerts/stream`` (Server-Sent Events).

The ingest runs ``NOTIFY pisces_alerts, '<alert id>'`` in the transaction that
writes the alert, so PostgreSQL delivers it at commit to every API process
listening. Each stream holds one LISTEN connection of its own (not a pool
connection) and sends an ``alert`` event with the alert's JSON, for the alerts
of the user's patients only, plus a comment line every few seconds to keep
proxies from closing it. :func:`alert_events` is shared with the caregivers'
stream (:mod:`server.api.caregiver`), which looks each alert up under the
caregiver's grant and ends the stream once the caregiver has no access left.
The response closes its generator however it ends
(:class:`ClosingStreamingResponse`), so the LISTEN connection is closed at once
even when the stream is cut while a frame is being sent (the client leaves, the
server shuts down), never left open for the garbage collector; and the
generator closes it with a call that cannot be cancelled half-way, also when
the cut comes while it handles a notification (psycopg's ``notifies()`` then
holds the connection's lock, which its context manager's rollback waits for).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, Protocol

import anyio
import psycopg
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool
from starlette.types import Receive, Scope, Send

from server import queries, store
from server.api.deps import CurrentUser, PoolDep, SettingsDep
from server.queries import AlertRow
from server.records import ALERT_CHANNEL
from server.store import User

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

KEEPALIVE_S = 10.0


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its async generator when it ends, however it ends.

    Starlette cancels the sending task when the client goes away; if that happens while
    a frame is being sent, the generator is left suspended at its ``yield``, holding its
    connection until the garbage collector finalises it (after the event loop has closed,
    if the server is shutting down).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One Server-Sent Event frame."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(jsonable_encoder(data))}\n\n"


def _visible_alert(pool: ConnectionPool[Any], user: User, alert_id: int) -> AlertRow | None:
    with pool.connection() as conn:
        row = queries.get_alert(conn, user, alert_id)
        if row is not None:
            store.audit(conn, user, "push:alert", [row.patient_id], {"alert_id": alert_id})
        return row


class Lookup(Protocol):
    """Finds an alert by id if the stream's user may see it now (runs in a worker thread)."""

    def __call__(self, alert_id: int) -> Any | None: ...


def _always() -> bool:
    return True


async def alert_events(
    db_url: str, lookup: Lookup, gone: Callable[[], Awaitable[bool]], allowed: Callable[[], bool] = _always
) -> AsyncIterator[str]:
    """Yield SSE frames for each alert NOTIFY that ``lookup`` finds, until the client goes away.

    ``allowed`` (run in a worker thread after every event and keepalive) ends
    the stream when it turns False, e.g. a caregiver whose access was revoked.
    """
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    try:
        await conn.execute(f"LISTEN {ALERT_CHANNEL}")
        yield "retry: 3000\n: listening\n\n"
        while not await gone():
            async with aclosing(conn.notifies(timeout=KEEPALIVE_S)) as notes:
                async for note in notes:
                    if not note.payload.isdigit():
                        continue
                    row = await run_in_threadpool(lookup, int(note.payload))
                    if row is not None:
                        yield sse("alert", row, row.id)
                    if await gone() or not await run_in_threadpool(allowed):
                        return
            if not await run_in_threadpool(allowed):
                return
            yield ": keepalive\n\n"
    finally:
        # Not the connection's context manager: its rollback first waits for the lock that notifies()
        # holds while suspended, and a cancellation (shutdown) then leaves the connection open.
        # close() awaits nothing, so it runs to the end even in a cancelled task.
        await conn.close()


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    """The HTTP response carrying SSE frames (no caching, no proxy buffering)."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return ClosingStreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.get("/stream")
async def stream(request: Request, user: CurrentUser, pool: PoolDep, settings: SettingsDep) -> StreamingResponse:
    """Push each new, escalated or resolved alert of the user's patients as an ``alert`` event."""
    events = alert_events(settings.database_url or "", lambda alert_id: _visible_alert(pool, user, alert_id),
                          request.is_disconnected)  # fmt: skip
    return event_stream(events)
