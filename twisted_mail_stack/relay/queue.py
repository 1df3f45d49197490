"""
The durable delivery queue: C{<queue>/<id>.msg} (the message) and C{<id>.json} (the envelope).

An entry is complete once its envelope file exists; the message is put in place first. Both are
written (or hard-linked) and fsynced, the envelope renamed from C{tmp/} into place, then the
directory is fsynced. Directory fsyncs of entries enqueued at the same moment are grouped: one
fsync makes every name created before it durable, so concurrent sessions share it.

The relay's delivery state of an entry, once saved, is C{<id>.state}, replaced atomically
(L{DeliveryQueue.save_state}; one save at a time per entry).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IDeliveryQueue, IMessageSource
from ..sources import FileSource
from ..values import Envelope, EnvelopeRecipient
from .state import EntryState

__all__ = ["DeliveryQueue", "DirSyncer", "envelope_to_json", "envelope_from_json"]

T = TypeVar("T")
_log = Logger()
_ID = re.compile(r"[A-Za-z0-9]{1,64}")


def envelope_to_json(envelope: Envelope, queued_at: datetime) -> dict[str, Any]:
    return {
        "version": 1,
        "queued_at": queued_at.isoformat(),
        "sender": envelope.sender,
        "body": envelope.body,
        "smtputf8": envelope.smtputf8,
        "ret": envelope.ret,
        "envid": envelope.envid,
        "recipients": [
            {
                "address": r.address,
                "notify": sorted(r.notify) if r.notify is not None else None,
                "orcpt": r.orcpt,
            }
            for r in envelope.recipients
        ],
    }


def envelope_from_json(data: dict[str, Any]) -> Envelope:
    return Envelope(
        sender=data["sender"],
        recipients=tuple(
            EnvelopeRecipient(
                r["address"],
                frozenset(r["notify"]) if r["notify"] is not None else None,
                r["orcpt"],
            )
            for r in data["recipients"]
        ),
        body=data["body"],
        smtputf8=data["smtputf8"],
        ret=data["ret"],
        envid=data["envid"],
    )


def _fsync_path(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirSyncer:
    """
    Group commit of one directory's fsync: L{sync} fires once an fsync that began after the
    call has finished. While one runs, every caller waits for the next, which serves them all.
    """

    def __init__(self, path: str, run: Callable[[Callable[[], None]], Deferred[None]]) -> None:
        self._path = path
        self._run = run
        self._running = False
        self._waiting: list[Deferred[None]] = []

    def sync(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        if not self._running:
            self._next()
        return d

    def _next(self) -> None:
        batch, self._waiting = self._waiting, []
        self._running = True

        def done(result: object) -> None:
            self._running = False
            if self._waiting:
                self._next()
            for d in batch:
                if isinstance(result, BaseException):
                    d.errback(result)
                else:
                    d.callback(None)

        self._run(lambda: _fsync_path(self._path)).addCallbacks(done, lambda f: done(f.value))


@implementer(IDeliveryQueue)
class DeliveryQueue:
    """
    The queue in directory C{path} (created if missing). Blocking work runs in C{reactor}'s
    thread pool (any L{IReactorThreads}).
    """

    def __init__(self, path: str, reactor: Any) -> None:
        self.path = path
        self._tmp = os.path.join(path, "tmp")
        os.makedirs(self._tmp, mode=0o700, exist_ok=True)
        self._reactor = reactor
        self._dir_sync = DirSyncer(path, self._in_thread)
        #: Called with the id of every entry once its enqueue is durable (the relay's wake-up).
        self.listeners: list[Callable[[str], object]] = []

    def _in_thread(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        threads = IReactorThreads(self._reactor)
        return deferToThreadPool(self._reactor, threads.getThreadPool(), f, *args)

    def _paths(self, queue_id: str) -> tuple[str, str]:
        if not _ID.fullmatch(queue_id):
            raise ValueError(f"bad queue id {queue_id!r}")
        base = os.path.join(self.path, queue_id)
        return base + ".msg", base + ".json"

    def enqueue(self, queue_id: str, envelope: Envelope, source: IMessageSource) -> Deferred[None]:
        return Deferred.fromCoroutine(self._enqueue(queue_id, envelope, source))

    async def _enqueue(self, queue_id: str, envelope: Envelope, source: IMessageSource) -> None:
        msg, env = self._paths(queue_id)
        text = json.dumps(envelope_to_json(envelope, datetime.now(UTC)), ensure_ascii=False)
        await self._in_thread(self._write, msg, env, text.encode("utf-8"), source)
        try:
            await self._dir_sync.sync()
        except BaseException:
            await self._in_thread(_unlink_all, env, msg)
            raise
        for listener in list(self.listeners):
            try:
                listener(queue_id)
            except Exception:  # a listener's bug must not fail an accepted message
                _log.failure("queue listener failed for {queue_id}", queue_id=queue_id)

    def _write(self, msg: str, env: str, envelope: bytes, source: IMessageSource) -> None:
        tmp = os.path.join(self._tmp, os.path.basename(env))
        if os.path.lexists(env):
            raise FileExistsError(env)
        made: list[str] = []  # only what this call created is removed on failure
        try:
            if source.path is not None:
                os.link(source.path, msg)
                made.append(msg)
                _fsync_path(msg)
            else:
                with source.open() as src, open(msg, "xb") as out:
                    made.append(msg)
                    shutil.copyfileobj(src, out, 1 << 16)
                    out.flush()
                    os.fsync(out.fileno())
            with open(tmp, "xb") as out:
                made.append(tmp)
                out.write(envelope)
                out.flush()
                os.fsync(out.fileno())
            os.rename(tmp, env)
            made.append(env)
        except BaseException:
            _unlink_all(*made)
            raise

    def remove(self, queue_id: str) -> Deferred[None]:
        msg, env = self._paths(queue_id)
        return self._in_thread(_unlink_all, env, msg, self._state_path(queue_id))

    # -- delivery state (see L{twisted_mail_stack.relay.state}) -------------------------

    def _state_path(self, queue_id: str) -> str:
        return self._paths(queue_id)[0][: -len(".msg")] + ".state"

    def save_state(self, queue_id: str, state: EntryState) -> Deferred[None]:
        """
        Replace the entry's delivery state: written to C{tmp/}, fsynced, renamed over
        C{<id>.state}, directory fsynced; durable when the Deferred fires. A crash leaves the
        old state or the new one. Fails with L{KeyError} if the entry does not exist.
        """
        return Deferred.fromCoroutine(self._save_state(queue_id, state))

    async def _save_state(self, queue_id: str, state: EntryState) -> None:
        data = json.dumps(state.to_json(), ensure_ascii=False).encode("utf-8")
        await self._in_thread(self._write_state, queue_id, data)
        await self._dir_sync.sync()

    def _write_state(self, queue_id: str, data: bytes) -> None:
        if not os.path.exists(self._paths(queue_id)[1]):
            raise KeyError(queue_id)
        path = self._state_path(queue_id)
        tmp = os.path.join(self._tmp, os.path.basename(path))
        try:
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.rename(tmp, path)
        except BaseException:
            _unlink_all(tmp)
            raise

    def load_state(self, queue_id: str) -> Deferred[EntryState | None]:
        """The entry's saved state, or None if none was saved (never tried)."""
        return self._in_thread(self._load_state, queue_id)

    def _load_state(self, queue_id: str) -> EntryState | None:
        try:
            with open(self._state_path(queue_id), "rb") as f:
                return EntryState.from_json(json.loads(f.read()))
        except FileNotFoundError:
            return None

    def queued_at(self, queue_id: str) -> Deferred[datetime]:
        """When the entry was enqueued (its arrival). Fails with L{KeyError} if it does not exist."""
        return self._in_thread(self._queued_at, queue_id)

    def _queued_at(self, queue_id: str) -> datetime:
        try:
            with open(self._paths(queue_id)[1], "rb") as f:
                return datetime.fromisoformat(json.loads(f.read())["queued_at"])
        except FileNotFoundError:
            raise KeyError(queue_id) from None

    def next_attempts(self) -> Deferred[list[tuple[str, float]]]:
        """Every entry's id, oldest first, with its next attempt (0.0: never tried)."""
        return self._in_thread(self._next_attempts)

    def _next_attempts(self) -> list[tuple[str, float]]:
        found = []
        for queue_id in self._list():
            try:
                with open(self._state_path(queue_id), "rb") as f:
                    when = float(json.loads(f.read())["next_attempt"])
            except (OSError, ValueError, KeyError, TypeError):
                when = 0.0  # never tried, or unreadable: its run loads it and says why
            found.append((queue_id, when))
        return found

    def list_ids(self) -> Deferred[Sequence[str]]:
        return self._in_thread(self._list)

    def _list(self) -> list[str]:
        found = []
        for e in os.scandir(self.path):
            if e.name.endswith(".json"):
                try:
                    found.append((e.stat().st_mtime_ns, e.name[: -len(".json")]))
                except FileNotFoundError:
                    pass  # delivered and removed while we looked
        found.sort()
        return [queue_id for _, queue_id in found]

    def load(self, queue_id: str) -> Deferred[tuple[Envelope, IMessageSource]]:
        return self._in_thread(self._load, queue_id)

    def _load(self, queue_id: str) -> tuple[Envelope, IMessageSource]:
        msg, env = self._paths(queue_id)
        try:
            with open(env, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            raise KeyError(queue_id) from None
        return envelope_from_json(data), FileSource(msg)


def _unlink_all(*paths: str) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
