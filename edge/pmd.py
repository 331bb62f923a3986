"""The Polar PMD control point of one BLE connection: start the strap's streams, and stop them.

The agent runs two streams on a strap with Polar's measurement service
(:data:`STREAMS`): ECG at 130 Hz / 14 bit and the accelerometer at 25 Hz /
16 bit / 8 g. Each request is written with response and answered by an
indication on the control point. An answer is matched to its request by op
code and measurement type; anything else arriving there (a strap's own
"measurement stopped" notice, a garbled value) is skipped, as Polar's SDK does.

* **start** (after subscribing): a refusal is reported (the run goes on with
  what the strap gives); no answer within ``answer_timeout`` raises
  ``asyncio.TimeoutError``, which fails the connection, and the source retries.
* **stop** (when the source is closed cleanly; a dropped link has nothing left
  to write to): only the streams the strap accepted, each answer checked. A
  refusal is reported, and so is every stop left without an answer when
  ``stop_timeout`` (for all stops together) runs out or a write fails. It never
  raises: the link is being closed either way, and a strap also ends its
  measurements when the link closes.

Bytes come from :mod:`wire.gatt`; problems are returned in words, and
:class:`edge.ble.BleakSource` counts them in its ``LinkHealth``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from wire.errors import GattDecodeError
from wire.gatt import (
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PMD_MEASUREMENT_ACC,
    PMD_MEASUREMENT_ECG,
    PMD_SETTING_RANGE,
    PMD_SETTING_RESOLUTION,
    PMD_SETTING_SAMPLE_RATE,
    PmdControlResponse,
    decode_pmd_control_request,
    decode_pmd_control_response,
    encode_pmd_start,
    encode_pmd_stop,
)

log = logging.getLogger(__name__)

# measurement type -> the settings the agent starts it with
STREAMS: dict[int, dict[int, int]] = {
    PMD_MEASUREMENT_ECG: {PMD_SETTING_SAMPLE_RATE: 130, PMD_SETTING_RESOLUTION: 14},
    PMD_MEASUREMENT_ACC: {PMD_SETTING_SAMPLE_RATE: 25, PMD_SETTING_RESOLUTION: 16, PMD_SETTING_RANGE: 8},
}
PMD_ANSWER_TIMEOUT_S = 5.0  # per start request; an H10 answers within a connection interval or two
PMD_STOP_TIMEOUT_S = 3.0  # for all stop requests together: the phone is closing and must not hang


class PmdControl:
    """Requests and answers on one connection's PMD control point.

    Args:
        client: a connected ``bleak.BleakClient`` (or anything with its
            ``start_notify`` / ``write_gatt_char``).
        answer_timeout: s to wait for the answer to each start request.
        stop_timeout: s for all stop requests together.
    """

    def __init__(
        self, client: Any, *, answer_timeout: float = PMD_ANSWER_TIMEOUT_S, stop_timeout: float = PMD_STOP_TIMEOUT_S
    ) -> None:
        self.client = client
        self.answer_timeout, self.stop_timeout = answer_timeout, stop_timeout
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()
        self.started: list[int] = []  # measurement types the strap accepted, in start order

    async def open(self, on_data: Callable[[Any, bytearray], None]) -> None:
        """Subscribe to the control point's answers and to the data characteristic."""
        await self.client.start_notify(PMD_CONTROL_POINT_UUID, lambda _c, d: self.answers.put_nowait(bytes(d)))
        await self.client.start_notify(PMD_DATA_UUID, on_data)

    async def start(self) -> list[str]:
        """Start every stream of :data:`STREAMS`; returns the strap's refusals in words.

        Raises:
            asyncio.TimeoutError: a start request got no answer in ``answer_timeout``.
        """
        refused = []
        for measurement, settings in STREAMS.items():
            request = encode_pmd_start(measurement, settings)
            answer = await asyncio.wait_for(self._exchange(request), self.answer_timeout)
            if answer.ok:
                self.started.append(measurement)
            else:
                refused.append(_refusal(request, answer))
        return refused

    async def stop(self) -> tuple[list[str], list[str]]:
        """Stop the streams the strap accepted; returns (refusals, stops left unanswered) in words."""
        pending = [encode_pmd_stop(m) for m in self.started]
        refused: list[str] = []
        try:
            async with asyncio.timeout(self.stop_timeout):
                while pending:
                    answer = await self._exchange(pending[0])
                    if not answer.ok:
                        refused.append(_refusal(pending[0], answer))
                    pending.pop(0)
        except Exception as exc:  # noqa: BLE001 - the link is closing: a failed stop is counted, never raised
            why = f"no answer in {self.stop_timeout:g} s" if isinstance(exc, TimeoutError) else _words(exc)
            return refused, [f"strap did not answer {_name(r)} ({why})" for r in pending]
        finally:
            self.started.clear()
        return refused, []

    async def _exchange(self, request: bytes) -> PmdControlResponse:
        """Write ``request`` and wait for its answer, skipping anything else the control point indicates."""
        await self.client.write_gatt_char(PMD_CONTROL_POINT_UUID, request, response=True)
        while True:
            data = await self.answers.get()
            try:
                answer = decode_pmd_control_response(data)
            except GattDecodeError as exc:
                log.debug("PMD control point: skipped %s (%s)", data.hex(" "), exc.reason)
                continue
            if answer.answers(request):
                return answer
            log.debug("PMD control point: skipped an answer to op %d type %d", answer.op, answer.measurement)


def _name(request: bytes) -> str:
    return decode_pmd_control_request(request).name


def _refusal(request: bytes, answer: PmdControlResponse) -> str:
    return f"strap refused PMD {_name(request)}: {answer.reason}"


def _words(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
