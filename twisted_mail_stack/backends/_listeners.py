"""In-process fan-out of L{Change} events to the listeners of every open handle of a folder."""

from __future__ import annotations

from twisted.logger import Logger

from ..interfaces import ChangeListener
from ..values import Change

_log = Logger()


class ListenerSet:
    """
    The listeners of one folder, across all handles in this process.

    A backend keeps one per folder (keyed by account and name) and calls L{emit} for each change,
    in the reactor thread, before the Deferred of the operation that made it fires.
    """

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def add(self, listener: ChangeListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def discard(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def emit(self, change: Change) -> None:
        """Call every listener; one that raises is logged and does not stop the others."""
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                _log.failure("mailbox listener failed on {change!r}", change=change)
