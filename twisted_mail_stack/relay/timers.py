"""
Many one-shot timers on one clock call: the relay keeps one per queued entry, and a queue of
100,000 entries would otherwise hold 100,000 L{IDelayedCall}s (about 600 bytes each) in the
reactor's own heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

__all__ = ["Timers"]

_log = Logger()

#: Entries due within this many seconds of a wake-up fire in it (float rounding of clock times).
_SLACK = 1e-6


class Timers:
    """
    One timer per key on C{clock} (L{IReactorTime}); C{fire(key)} runs when a key's time comes.
    Setting a key again replaces its time; keys due together fire in the order they were set.
    """

    def __init__(self, clock: Any, fire: Callable[[str], None]) -> None:
        self._clock = clock
        self._fire = fire
        self._due: dict[str, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._call: IDelayedCall | None = None
        self._call_at = 0.0

    def __contains__(self, key: str) -> bool:
        return key in self._due

    def __len__(self) -> int:
        return len(self._due)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._due))

    def when(self, key: str) -> float | None:
        """The clock time at which C{key} fires, or None if it is not set."""
        found = self._due.get(key)
        return found[0] if found is not None else None

    def set(self, key: str, delay: float) -> None:
        """Fire C{key} in C{delay} seconds (replacing any time it had)."""
        when = self._clock.seconds() + max(0.0, delay)
        self._seq += 1
        self._due[key] = (when, self._seq)
        heapq.heappush(self._heap, (when, self._seq, key))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._compact()
        if self._call is None or when < self._call_at:
            self._arm()

    def cancel(self, key: str) -> bool:
        """Forget C{key}; whether it was set. Its heap entry is dropped lazily."""
        return self._due.pop(key, None) is not None

    def clear(self) -> None:
        self._due.clear()
        self._heap.clear()
        self._disarm()

    def _compact(self) -> None:
        self._heap = [(w, s, k) for k, (w, s) in self._due.items()]
        heapq.heapify(self._heap)

    def _disarm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _arm(self) -> None:
        self._disarm()
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][2]) != heap[0][:2]:
            heapq.heappop(heap)  # replaced or cancelled
        if heap:
            self._call_at = heap[0][0]
            delay = max(0.0, self._call_at - self._clock.seconds())
            self._call = self._clock.callLater(delay, self._wake)

    def _wake(self) -> None:
        self._call = None
        now = self._clock.seconds() + _SLACK
        heap, due = self._heap, self._due
        ready = []
        while heap and heap[0][0] <= now:
            when, seq, key = heapq.heappop(heap)
            if due.get(key) == (when, seq):
                del due[key]
                ready.append(key)
        for key in ready:
            try:
                self._fire(key)
            except Exception:
                _log.failure("timer for {key} failed", key=key)
        if self._call is None:
            self._arm()
