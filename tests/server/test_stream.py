"""The alert stream's response closes its generator however it ends, so the LISTEN connection never lingers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from fastapi.responses import StreamingResponse

from server.api.stream import ClosingStreamingResponse, alert_events, event_stream
from server.records import ALERT_CHANNEL


def run(response_class: type[StreamingResponse]) -> list[str]:
    """Stream a generator to a client that goes away while the first frame is being sent."""
    log: list[str] = []

    async def frames() -> AsyncIterator[str]:
        try:
            log.append("open")
            while True:
                yield ": frame\n\n"
        finally:
            log.append("closed")

    async def main() -> None:
        sending = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                sending.set()
                await asyncio.sleep(3600)  # a slow client: the cut comes while this frame is sent

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
        task = asyncio.create_task(response_class(frames(), media_type="text/event-stream")(scope, receive, send))
        await sending.wait()
        task.cancel()  # the server shuts down, or the client is gone
        await asyncio.gather(task, return_exceptions=True)
        log.append("after")

    asyncio.run(main())
    return log


def test_a_stream_cut_while_sending_closes_its_generator_at_once() -> None:
    assert run(ClosingStreamingResponse) == ["open", "closed", "after"]
    assert run(StreamingResponse)[:2] == ["open", "after"]  # the plain response leaves it to the collector



def test_a_stream_cancelled_while_it_handles_a_notify_closes_its_listen_connection(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn cancels a stream still open when its graceful shutdown runs out (a page left open). If
    that comes while the stream looks up an alert it was notified of, psycopg's notifies() still holds
    the connection's lock, so closing the connection by its context manager (a rollback first) waited
    for that lock, was cancelled again, and left the connection open for the garbage collector."""
    opened: list[psycopg.AsyncConnection[Any]] = []
    connect = psycopg.AsyncConnection.connect

    async def recording_connect(*args: Any, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
        conn = await connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", recording_connect)
    looking, release = threading.Event(), threading.Event()

    def lookup(alert_id: int) -> None:  # runs in a worker thread, as the real one does
        looking.set()
        release.wait(timeout=30)

    async def main() -> None:
        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":  # the first frame comes after LISTEN
                with psycopg.connect(db_url, autocommit=True) as other:
                    other.execute(f"NOTIFY {ALERT_CHANNEL}, '1'")

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)  # the client stays
            return {"type": "http.disconnect"}

        async def never_gone() -> bool:
            return False

        scope = {"type": "http", "asgi": {"spec_version": "2.3"}}  # as uvicorn's h11 protocol says
        task = asyncio.create_task(event_stream(alert_events(db_url, lookup, never_gone))(scope, receive, send))
        assert await asyncio.to_thread(looking.wait, 30)
        task.cancel()  # the server's graceful shutdown ran out
        release.set()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert len(opened) == 1 and opened[0].closed
