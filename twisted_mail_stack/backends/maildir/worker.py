"""Running blocking work off the reactor thread, and bridging C{async def} methods to Deferreds."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from attrs import frozen
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ...errors import MailboxError, StorageError

T = TypeVar("T")
P = ParamSpec("P")


@frozen
class Worker:
    """Where blocking work runs: C{pool}, with results delivered in C{reactor}'s thread."""

    reactor: Any
    pool: ThreadPool
    poll_interval: float

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run C{fn(*args)} in the pool; an L{OSError} becomes a L{StorageError}."""
        try:
            return await deferToThreadPool(self.reactor, self.pool, fn, *args)
        except MailboxError:
            raise
        except OSError as e:
            raise StorageError(f"{e.strerror or e}: {e.filename or ''}") from e


def deferred(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Deferred[T]]:
    """
    Make an C{async def} method an interface method returning a Deferred; an error raised
    before its first await (a bad argument) also arrives as a failure.
    """

    @wraps(method)
    def bridged(*args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        return Deferred.fromCoroutine(method(*args, **kwargs))

    return bridged
