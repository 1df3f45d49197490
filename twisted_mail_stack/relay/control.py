"""
Operator control of the queue, for a running server and a stopped one alike.

A running server holds an exclusive C{flock} on C{<queue>/control/server.lock} for as long as
its relay runs (the kernel drops it when the process dies, even by SIGKILL). C{mailstack queue}
tries that lock:
  - it gets it: no server runs; the command changes the spool directly, under the lock, and
    the next server start acts on it (a retried or bounced entry is due at once);
  - it does not: the command writes a request file C{<queue>/control/<name>.req} (JSON, written
    to a temporary name, fsynced, renamed); L{ControlWatcher}, in the server, looks for
    requests every C{control_interval} seconds, applies them through the manager (so they never
    race a delivery run) and deletes them; once a request's action is done it leaves
    C{<name>.done} (JSON C{{"outcome": ...}}) for the command, which waits for it (L{outcome}).
Reading (list, show) needs no lock: every file of an entry is replaced atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from attrs import evolve, frozen
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..values import Envelope
from .manager import RelayManager, operator_bounce
from .queue import DeliveryQueue, _fsync_path
from .state import EntryState

__all__ = [
    "ACTIONS",
    "outcome",
    "ControlWatcher",
    "EntryInfo",
    "ServerLock",
    "Spool",
    "request",
    "server_lock",
]

_log = Logger()

#: What an operator can ask of one entry; "flush" asks for every entry.
ACTIONS = ("retry", "delete", "bounce", "flush")
#: What a done request reports, by action.
DONE = {
    "retry": "tried now",
    "delete": "deleted",
    "bounce": "bounced; the sender is notified",
    "flush": "every message tried now",
}
NOT_FOUND = "no such message"
#: Result files nobody collected (the command gave up waiting) are removed after this long.
_RESULT_LIFETIME = 3600.0


def control_dir(queue_path: str) -> str:
    return os.path.join(queue_path, "control")


class ServerLock:
    """The lock that says a server's relay is running on this queue."""

    def __init__(self, queue_path: str) -> None:
        directory = control_dir(queue_path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, "server.lock")
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if free; False if another holder (process or handle) has it."""
        f = open(self.path, "ab")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


@contextmanager
def server_lock(queue_path: str) -> Iterator[bool]:
    """True inside if no server runs (the lock is held meanwhile), False if one does."""
    lock = ServerLock(queue_path)
    held = lock.try_acquire()
    try:
        yield held
    finally:
        lock.release()


def request(queue_path: str, action: str, queue_id: str | None = None) -> str:
    """Leave a request for the running server; return its file name."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    directory = control_dir(queue_path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    # Names sort in the order of the requests.
    name = f"{time.time_ns():020d}{secrets.token_hex(4)}"
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "x", encoding="utf-8") as f:
        json.dump({"action": action, "id": queue_id}, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(directory, name + ".req"))
    _fsync_path(directory)
    return name + ".req"


def outcome(queue_path: str, name: str, wait: float, poll: float = 0.1) -> str | None:
    """
    The outcome the server reported for request C{name} (see L{request}), waiting at most
    C{wait} seconds; None if it has not answered by then (the request stays: it is applied
    when the server gets to it).
    """
    path = os.path.join(control_dir(queue_path), name.removesuffix(".req") + ".done")
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                result = str(json.load(f)["outcome"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll)
            continue
        _unlink(path)
        return result


class ControlWatcher:
    """
    Applies the requests in the control directory through C{manager}, every C{interval}
    seconds on the manager's clock. A directory listing of a few entries is cheap enough to
    do in the reactor thread.
    """

    def __init__(self, manager: RelayManager, interval: float = 1.0) -> None:
        self.manager = manager
        self.directory = control_dir(manager.queue.path)
        self.interval = interval
        self._loop: LoopingCall | None = None

    def start(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.manager.clock
        self._loop.start(self.interval, now=True).addErrback(
            lambda f: _log.failure("queue control stopped", f)
        )

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def check(self) -> None:
        """Apply and remove every request present now."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".req"))
        except OSError as e:
            _log.error("cannot read {dir}: {error}", dir=self.directory, error=e)
            return
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                os.unlink(path)
            except (OSError, ValueError) as e:
                _log.error("bad queue request {path}: {error}", path=path, error=e)
                _unlink(path)
                continue
            self._apply(data).addCallback(self._report, name[: -len(".req")])
        self._clean_results()

    def _apply(self, data: Any) -> Deferred[str]:
        """Run one request; fires with the outcome to report."""
        action = data.get("action") if isinstance(data, dict) else None
        queue_id = data.get("id") if isinstance(data, dict) else None
        _log.info("queue request: {action} {queue_id}", action=action, queue_id=queue_id or "")
        if action == "flush":
            d = self.manager.flush()
        elif action in ACTIONS and isinstance(queue_id, str):
            d = self.manager.operate(queue_id, action)
        else:
            _log.error("unknown queue request {data!r}", data=data)
            return succeed(f"unknown request {data!r}")
        return d.addCallbacks(lambda _: DONE[action], self._failed, errbackArgs=(action, queue_id))

    def _failed(self, failure: Any, action: str, queue_id: str | None) -> str:
        if failure.check(KeyError):
            _log.warn("queue {action}: no entry {queue_id}", action=action, queue_id=queue_id)
            return NOT_FOUND
        _log.failure(
            "queue {action} of {queue_id} failed", failure, action=action, queue_id=queue_id
        )
        return f"failed: {failure.getErrorMessage()}"

    def _report(self, result: str, name: str) -> None:
        tmp = os.path.join(self.directory, name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"outcome": result}, f)
            os.rename(tmp, os.path.join(self.directory, name + ".done"))
        except OSError as e:
            _log.error("cannot report queue request {name}: {error}", name=name, error=e)
            _unlink(tmp)

    def _clean_results(self) -> None:
        """Remove results nobody collected (a command that stopped waiting)."""
        limit = time.time() - _RESULT_LIFETIME
        try:
            with os.scandir(self.directory) as entries:
                for e in entries:
                    if e.name.endswith(".done") and e.stat().st_mtime < limit:
                        _unlink(e.path)
        except OSError:
            pass


# -- the spool read and changed directly (CLI) ------------------------------------------


@frozen
class EntryInfo:
    """One entry as C{mailstack queue} shows it."""

    queue_id: str
    envelope: Envelope
    queued_at: float
    size: int
    state: EntryState
    #: False until the entry's first attempt saved a state.
    tried: bool


class Spool:
    """Blocking access to the queue directory C{path}, for the admin command."""

    def __init__(self, path: str) -> None:
        self.queue = DeliveryQueue(path, None)

    def ids(self) -> list[str]:
        return self.queue._list() if os.path.isdir(self.queue.path) else []

    def info(self, queue_id: str) -> EntryInfo:
        """Fails with L{KeyError} if there is no such entry."""
        envelope, source = self.queue._load(queue_id)
        queued_at = self.queue._queued_at(queue_id).timestamp()
        saved = self.queue._load_state(queue_id)
        try:
            size = os.path.getsize(self.queue._paths(queue_id)[0])
        except FileNotFoundError:
            raise KeyError(queue_id) from None
        state = saved if saved is not None else EntryState.initial(envelope)
        return EntryInfo(queue_id, envelope, queued_at, size, state, saved is not None)

    def headers(self, queue_id: str) -> bytes:
        """The message's header section."""
        with open(self.queue._paths(queue_id)[0], "rb") as f:
            head = b""
            for line in f:
                if line in (b"\r\n", b"\n"):
                    break
                head += line
                if len(head) > 1 << 16:
                    break
        return head

    def _change(self, queue_id: str, change: Callable[[EntryState], EntryState]) -> None:
        state = change(self.info(queue_id).state)
        self.queue._write_state(queue_id, json.dumps(state.to_json()).encode("utf-8"))
        _fsync_path(self.queue.path)

    def retry(self, queue_id: str) -> None:
        """Make the entry due now."""
        self._change(queue_id, lambda s: evolve(s, next_attempt=0.0))

    def bounce(self, queue_id: str) -> None:
        """Fail the pending recipients; the next start notifies the sender."""
        self._change(queue_id, lambda s: operator_bounce(s, time.time()))

    def delete(self, queue_id: str) -> None:
        self.info(queue_id)  # KeyError if missing
        msg, env = self.queue._paths(queue_id)
        state = self.queue._state_path(queue_id)
        for path in (env, msg, state):  # the envelope first: the entry is gone at once
            _unlink(path)
        _fsync_path(self.queue.path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
