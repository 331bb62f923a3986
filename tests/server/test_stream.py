"""The alert stream's response closes its generator however it ends, so the LISTEN connection never lingers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from server.api.stream import ClosingStreamingResponse


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
