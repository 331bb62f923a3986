"""Which rhythm strips the agent sends: de-duplication and a rate limit per reason.

Pure and clock-free: every decision takes the request's own time (s since
epoch, the data's time base). The agent asks :meth:`RhythmStripPolicy.admit`
for each ``(time, "rhythm:<flag>")`` request of the summariser; panic and
symptom strips never pass through here, so they are never suppressed.

Policy (:class:`StripLimits`):

* **duplicate**: a request of the same reason whose strip would overlap the
  last one sent for it (its end within ``strip_seconds`` of that strip's end)
  adds nothing the clinician has not got: skipped.
* **rate limit**: at most ``per_reason_per_hour`` strips of one reason and
  ``total_per_hour`` rhythm strips in all in any rolling hour. A patient in
  persistent AF or with runs every few minutes would otherwise send a strip
  for every window that regains the flag; the summaries still carry every
  flagged window, so nothing but the extra raw ECG is left out.

Each skip is returned as a reason (``"duplicate"`` or ``"rate_limited"``) for
the agent to count; nothing is dropped silently. The state (times of strips
sent in the last hour) is small and serialisable, so the limit survives a
restart of the agent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

HOUR_S = 3600.0


@dataclass(frozen=True)
class StripLimits:
    """Limits of rhythm strips (see the module doc)."""

    strip_seconds: float = 30.0  # s, length of one strip: closer requests of one reason overlap
    per_reason_per_hour: int = 4  # strips of one reason ("rhythm:af_suspected", ...) per rolling hour
    total_per_hour: int = 12  # rhythm strips of all reasons per rolling hour


class RhythmStripPolicy:
    """Admit or skip rhythm strip requests under :class:`StripLimits`.

    Args:
        limits: the limits.
        sent: ``(time, reason)`` of strips already sent, e.g. from :meth:`dumps` before a restart.
    """

    def __init__(self, limits: StripLimits = StripLimits(), sent: list[tuple[float, str]] | None = None) -> None:
        self.limits = limits
        self._sent: list[tuple[float, str]] = sorted(sent or [])

    def admit(self, time: float, reason: str) -> str | None:
        """Decide on a request for a strip ending at ``time``: None to send it, else why it is skipped.

        An admitted request is recorded as sent. Times behind the newest one
        recorded by more than an hour (the phone's clock jumped back) clear
        the history rather than block strips for that long.
        """
        if self._sent and time < self._sent[-1][0] - HOUR_S:
            self._sent.clear()
        self._sent = [(t, r) for t, r in self._sent if time - HOUR_S < t <= time + HOUR_S]
        same = [t for t, r in self._sent if r == reason]
        if same and abs(time - max(same)) < self.limits.strip_seconds:
            return "duplicate"
        if len(same) >= self.limits.per_reason_per_hour or len(self._sent) >= self.limits.total_per_hour:
            return "rate_limited"
        self._sent.append((time, reason))
        self._sent.sort()
        return None

    def dumps(self) -> str:
        """The state as JSON text (for the outbox's state table)."""
        return json.dumps(self._sent)

    @classmethod
    def loads(cls, text: str | None, limits: StripLimits = StripLimits()) -> RhythmStripPolicy:
        """A policy from :meth:`dumps` output (None: no history).

        Raises:
            ValueError: text that :meth:`dumps` did not write.
        """
        try:
            raw = json.loads(text) if text else []
            sent = [(float(t), str(r)) for t, r in raw]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"unreadable rhythm strip history: {exc}") from exc
        return cls(limits, sent)
