"""
The reactor side of a folder: what every handle of one store instance shares.

A L{FolderHub} runs the blocking L{Folder} operations in the thread pool one at a time (a
L{DeferredLock}), then reports their changes to the folder's listeners in the reactor thread,
before the operation's Deferred fires and in the order they happened. While the folder has
listeners it polls for changes made by other processes every C{poll_interval} seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ...errors import NoSuchMailbox, StorageError
from ...interfaces import ChangeListener
from ...values import Change
from .._listeners import ListenerSet
from .folder import Folder, FolderReset, Outcome, View
from .worker import Worker

T = TypeVar("T")
_log = Logger()


class FolderHub:
    """One folder's listeners, reporting view, serialisation and poller in one store instance."""

    def __init__(self, worker: Worker, path: str, name: str) -> None:
        self.folder = Folder(path, name)
        self.path = path
        self.name = name
        self.lock = DeferredLock()
        self.refs = 0
        self._worker = worker
        self._view = View()
        self._listeners = ListenerSet()
        self._timer: IDelayedCall | None = None
        self._polling: Deferred[Any] | None = None
        self._closed = False
        #: The folder was deleted or renamed away: every operation fails.
        self.gone = False

    def check(self) -> None:
        """Fail with L{NoSuchMailbox} if the folder of this hub is gone."""
        if self.gone:
            raise NoSuchMailbox(self.name)

    async def call(self, fn: Callable[..., Outcome[T]], *args: Any) -> T:
        """Run C{fn(view, *args)}, a method of L{folder}, under the lock; report its changes."""
        async with self.lock:
            return await self.call_locked(fn, *args)

    async def call_locked(self, fn: Callable[..., Outcome[T]], *args: Any) -> T:
        """L{call} for a caller that holds the lock already (see L{holding})."""
        self.check()
        try:
            outcome = await self._worker.run(fn, self._view, *args)
        except FolderReset as e:
            self.report(e.changes, e.view)
            raise StorageError(str(e)) from None
        self.report(outcome.changes, outcome.view)
        return outcome.result

    def report(self, changes: list[Change], view: View) -> None:
        """Tell every listener of C{changes}, after which this instance has seen C{view}."""
        self._view = view
        for change in changes:
            self._listeners.emit(change)

    @property
    def view(self) -> View:
        return self._view

    # -- listeners and polling -----------------------------------------------------------

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.add(listener)
        self._schedule()

    def remove_listener(self, listener: ChangeListener) -> None:
        self._listeners.discard(listener)
        if not self._listeners and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._listeners and not self._closed and self._timer is None and self._polling is None:
            self._timer = self._worker.reactor.callLater(self._worker.poll_interval, self._poll)

    def _poll(self) -> None:
        self._timer = None
        self._polling = Deferred.fromCoroutine(self.call(self.folder.refresh))
        self._polling.addCallbacks(self._polled, self._poll_failed)

    def _polled(self, _: object) -> None:
        self._polling = None
        self._schedule()

    def _poll_failed(self, failure: Failure) -> None:
        self._polling = None
        if failure.check(NoSuchMailbox):
            # Deleted by another process: nothing more will happen to it.
            _log.info("stopped polling {path}: the folder is gone", path=self.path)
            return
        _log.failure("polling {path} failed", failure, path=self.path)
        self._schedule()

    async def close(self) -> None:
        """Stop polling, wait for work in progress, close the index."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self.lock:
            await self._worker.run(self.folder.close)


@asynccontextmanager
async def holding(hubs: Iterable[FolderHub]) -> AsyncIterator[None]:
    """Hold the locks of several folders, taken in one global order so no two waits cross."""
    taken: list[FolderHub] = []
    try:
        for hub in sorted({id(h): h for h in hubs}.values(), key=lambda h: h.path):
            await hub.lock.acquire()
            taken.append(hub)
        yield
    finally:
        for hub in reversed(taken):
            hub.lock.release()


class Hubs:
    """The hubs of one store instance, by folder path, alive while something uses them."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._hubs: dict[str, FolderHub] = {}

    def get(self, path: str) -> FolderHub | None:
        return self._hubs.get(path)

    def acquire(self, path: str, name: str) -> FolderHub:
        hub = self._hubs.get(path)
        if hub is None:
            hub = self._hubs[path] = FolderHub(self._worker, path, name)
        hub.refs += 1
        return hub

    async def release(self, hub: FolderHub) -> None:
        hub.refs -= 1
        if hub.refs == 0:
            if self._hubs.get(hub.path) is hub:
                del self._hubs[hub.path]
            await hub.close()

    def forget(self, hub: FolderHub) -> None:
        """Mark C{hub}'s folder gone; a folder made later at its path gets a new hub."""
        hub.gone = True
        if self._hubs.get(hub.path) is hub:
            del self._hubs[hub.path]

    @asynccontextmanager
    async def using(
        self, folders: Iterable[tuple[str, str]], *also: FolderHub
    ) -> AsyncIterator[list[FolderHub]]:
        """
        Acquire the hubs of (path, name) pairs and hold their locks, and those of the hubs
        C{also}, for the block.
        """
        hubs = [self.acquire(path, name) for path, name in folders]
        try:
            async with holding([*hubs, *also]):
                yield hubs
        finally:
            for hub in hubs:
                await self.release(hub)

    async def close(self) -> None:
        hubs, self._hubs = list(self._hubs.values()), {}
        for hub in hubs:
            await hub.close()
