"""
Group commit of local deliveries, the reactor side. Each delivery first writes (or links) and
fsyncs its file into the INBOX's C{tmp/} in the thread pool, alongside the others; the files
ready while the previous group is being placed wait, and are placed together: one index
transaction and one fsync of C{new/} (L{delivery.add_group}), in one thread-pool call.

Each delivery's Deferred fires once its group is durable, after the INBOX's listeners heard of
it; a delivery that failed fails alone (see L{delivery.add_group}). The next group is handed to
the thread pool before those Deferreds fire, so that the replies they send overlap its fsyncs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from ...errors import MailboxError, StorageError
from ...interfaces import IMessageSource
from ...values import INBOX, MessageInfo
from .delivery import add_group, prepare
from .files import unlink_quietly
from .hub import FolderHub, Hubs
from .worker import Worker

_log = Logger()

#: At most this many deliveries in one group (bounds one transaction and its latency).
MAX_GROUP = 256
#: INBOXes kept open (index connection, lock file) after a delivery, most recent first.
KEEP_OPEN = 64


def _storage_error(error: Exception) -> Exception:
    """An error as L{Worker.run} reports it: an L{OSError} becomes a L{StorageError}."""
    if isinstance(error, OSError) and not isinstance(error, MailboxError):
        return StorageError(f"{error.strerror or error}: {error.filename or ''}")
    return error


class GroupCommit:
    """The deliveries into one INBOX (its L{FolderHub}, on which it holds a reference)."""

    def __init__(self, hub: FolderHub, worker: Worker) -> None:
        self.hub = hub
        self._worker = worker
        #: Files ready in tmp/ (path, size, date), and who waits for each.
        self._ready: list[tuple[tuple[str, int, int], Deferred[MessageInfo]]] = []
        self._preparing = 0
        #: A group is being placed (at most one at a time, in order).
        self._placing = False
        #: Called once idle when the owner no longer wants this one (see L{retire}).
        self._on_idle: Callable[[], None] | None = None
        self._idle_waiters: list[Deferred[None]] = []

    @property
    def idle(self) -> bool:
        return not self._placing and not self._ready and not self._preparing

    def deliver(self, source: IMessageSource, date_us: int) -> Deferred[MessageInfo]:
        """Deliver one message; fires with its L{MessageInfo} once it is durable."""
        self._preparing += 1
        worker = self._worker
        # Straight to the pool (no coroutine around it): this runs once per message.
        prepared = deferToThreadPool(
            worker.reactor, worker.pool, prepare, self.hub.path, source, date_us
        )
        done: Deferred[MessageInfo] = Deferred()

        def ready(file: tuple[str, int]) -> None:
            self._preparing -= 1
            self._ready.append(((*file, date_us), done))
            if not self._placing:
                self._start_group()

        def failed(failure: Failure) -> None:
            self._preparing -= 1
            self._maybe_idle()
            error = failure.value
            if isinstance(error, Exception):
                failure = Failure(_storage_error(error))
            done.errback(failure)

        prepared.addCallbacks(ready, failed)
        return done

    def retire(self, release: Callable[[], None]) -> None:
        """Call C{release} now if idle, else as soon as the deliveries under way are done."""
        if self.idle:
            release()
        else:
            self._on_idle = release

    def _maybe_idle(self) -> None:
        if not self.idle:
            return
        # The owner first: whoever waits for idleness may then wait for the release it starts.
        if self._on_idle is not None:
            on_idle, self._on_idle = self._on_idle, None
            on_idle()
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    async def wait(self) -> None:
        """Wait until no delivery is under way."""
        if not self.idle:
            waiter: Deferred[None] = Deferred()
            self._idle_waiters.append(waiter)
            await waiter

    def _start_group(self) -> None:
        self._placing = True
        placed = Deferred.fromCoroutine(self._one_group())
        placed.addErrback(lambda f: _log.failure("group commit failed", f))

    async def _one_group(self) -> None:
        hub = self.hub
        group: list[tuple[tuple[str, int, int], Deferred[MessageInfo]]] = []
        try:
            async with hub.lock:
                # Taken only now: whatever became ready while the lock was busy joins this group.
                group, self._ready = self._ready[:MAX_GROUP], self._ready[MAX_GROUP:]
                results = await self._place(group)
        except Exception as e:  # not the placing (that is in results): the lock, a listener
            results = [Failure(e)] * len(group)
        finally:
            self._placing = False
            # The next group first: its thread-pool work overlaps the callbacks fired below
            # (replies to clients), instead of waiting for them.
            if self._ready:
                self._start_group()
        # Fired outside the lock: their callbacks may start more work on this folder.
        for (_, done), result in zip(group, results, strict=True):
            if isinstance(result, Failure):
                done.errback(result)
            else:
                done.callback(result)
        self._maybe_idle()

    async def _place(
        self, group: list[tuple[tuple[str, int, int], Deferred[MessageInfo]]]
    ) -> list[MessageInfo | Failure]:
        """Place C{group}'s files (under the hub's lock): each one's info or failure."""
        hub = self.hub
        files = [file for file, _ in group]
        try:
            hub.check()
            outcome = await self._worker.run(add_group, hub.folder, hub.view, files)
        except Exception as e:
            failure = Failure(_storage_error(e))
            await self._worker.run(unlink_quietly, *(path for path, _, _ in files))
            return [failure] * len(group)
        try:
            hub.report(outcome.changes, outcome.view)
        except Exception:  # the messages are durable: never answer them as failed
            _log.failure("reporting new messages in {path}", path=hub.path)
        return [
            Failure(_storage_error(r)) if isinstance(r, Exception) else r for r in outcome.result
        ]


class GroupCommits:
    """The L{GroupCommit} of each INBOX delivered to lately, at most L{KEEP_OPEN} of them idle."""

    def __init__(self, hubs: Hubs, worker: Worker) -> None:
        self._hubs = hubs
        self._worker = worker
        self._by_path: OrderedDict[str, GroupCommit] = OrderedDict()
        self._retiring: set[GroupCommit] = set()
        self._releasing: set[Deferred[None]] = set()

    def get(self, path: str) -> GroupCommit:
        """The group commit of the INBOX at account directory C{path}."""
        commit = self._by_path.get(path)
        if commit is not None:
            self._by_path.move_to_end(path)
            return commit
        commit = self._by_path[path] = GroupCommit(self._hubs.acquire(path, INBOX), self._worker)
        if len(self._by_path) > KEEP_OPEN:
            for old, candidate in list(self._by_path.items())[: len(self._by_path) - KEEP_OPEN]:
                if candidate.idle:
                    self.drop(old)
        return commit

    def drop(self, path: str) -> None:
        """
        Forget the group commit of C{path} (its account is gone or was deleted); its hub is
        released once the deliveries waiting are done.
        """
        commit = self._by_path.pop(path, None)
        if commit is not None:
            self._retiring.add(commit)
            commit.retire(lambda: self._release(commit))

    def _release(self, commit: GroupCommit) -> None:
        released = Deferred.fromCoroutine(self._hubs.release(commit.hub))
        self._releasing.add(released)

        def done(result: object) -> None:
            self._retiring.discard(commit)
            self._releasing.discard(released)
            if isinstance(result, Failure):
                _log.failure("closing {path}", result, path=commit.hub.path)

        released.addBoth(done)

    async def close(self) -> None:
        """Wait for the deliveries under way, then release every hub."""
        for path in list(self._by_path):
            self.drop(path)
        while self._retiring or self._releasing:
            for commit in list(self._retiring):
                await commit.wait()
            for released in list(self._releasing):
                await released
