"""
Limits on outbound connections: at most C{total} sessions at once, and at most
C{per_destination} to one destination (an MX host or configured relay, by name).

L{ConnectionLimits.wrap} turns a L{Send} into one that waits for a free slot before it
connects; waiting sessions go in arrival order. Postfix has the same two knobs
(C{default_process_limit}, C{default_destination_concurrency_limit}).
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, DeferredSemaphore

from ..values import MXHost
from .attempt import Send
from .client import Outgoing, RecipientResult

__all__ = ["ConnectionLimits"]


class ConnectionLimits:
    """Counts sessions in total and per destination name."""

    def __init__(self, total: int, per_destination: int) -> None:
        if total < 1 or per_destination < 1:
            raise ValueError("limits must be at least 1")
        self.per_destination = per_destination
        self._total = DeferredSemaphore(total)
        self._by_destination: dict[str, DeferredSemaphore] = {}

    def active(self, destination: str | None = None) -> int:
        """Sessions running now, in total or to C{destination}."""
        if destination is None:
            return self._total.limit - self._total.tokens
        sem = self._by_destination.get(destination)
        return 0 if sem is None else sem.limit - sem.tokens

    def wrap(self, send: Send) -> Send:
        def limited(
            host: MXHost, address: str, messages: Sequence[Outgoing]
        ) -> Deferred[list[list[RecipientResult]]]:
            return Deferred.fromCoroutine(self._run(send, host, address, messages))

        return limited

    async def _run(
        self, send: Send, host: MXHost, address: str, messages: Sequence[Outgoing]
    ) -> list[list[RecipientResult]]:
        key = host.name.lower()
        sem = self._by_destination.get(key)
        if sem is None:
            sem = self._by_destination[key] = DeferredSemaphore(self.per_destination)
        # Destination first: a busy destination must not hold a slot of the total.
        await sem.acquire()
        try:
            await self._total.acquire()
            try:
                return await send(host, address, messages)
            finally:
                self._total.release()
        finally:
            sem.release()
            if sem.tokens == sem.limit and not sem.waiting:
                del self._by_destination[key]  # no state kept for idle destinations
