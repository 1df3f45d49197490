"""
Read-ahead of small messages: POP3 clients fetch messages in order, so while one goes out the
next ones are loaded, and the store's latency (thread hops, disk) leaves the RETR round trip.
A mailbox that provides L{IMessageReader} is read in batches (one trip to the store for many
messages); any other is read one message at a time through L{IMailbox.open_content}. Each
message is encoded into its whole RETR response when it arrives, so a RETR only sends bytes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from contextlib import suppress

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from ..interfaces import IMailbox, IMessageReader
from ..streaming import CHUNK_SIZE
from ._wire import encode_whole
from .maildrop import Maildrop

__all__ = ["Load", "ReadAhead"]


class Load:
    """
    One message being loaded. Once C{done}, C{response} is its whole RETR response (status
    line, dot-stuffed CRLF body, terminator) and C{octets} its canonical size; C{response} is
    None if the load failed.
    """

    __slots__ = ("uid", "size", "response", "octets", "done", "_waiting")

    def __init__(self, uid: int, size: int) -> None:
        self.uid = uid
        self.size = size  # as stored: what the read-ahead budget counts
        self.response: bytes | None = None
        self.octets = 0
        self.done = False
        self._waiting: list[Deferred[bytes | None]] = []

    def wait(self) -> Deferred[bytes | None]:
        """Fires with C{response} once the load is done."""
        if self.done:
            return succeed(self.response)
        d: Deferred[bytes | None] = Deferred()
        self._waiting.append(d)
        return d

    def finish(self, data: bytes | None) -> None:
        """The message's stored bytes arrived (None: the load failed); encode them."""
        if data is not None:
            body, self.octets = encode_whole(data)
            # RFC 1939 7 (RETR): the status line and the body go out in one write.
            self.response = b"+OK %d octets\r\n" % self.octets + body
        self.done = True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(self.response)


class ReadAhead:
    """
    Whole small messages (at most C{max_size} bytes each) of the session's C{maildrop}, loaded
    ahead of the message the client last asked for: at most C{max_messages} and C{max_bytes} at
    a time, so memory stays bounded per session. A new batch starts when half of that is used.
    """

    def __init__(
        self,
        mailbox: IMailbox,
        maildrop: Maildrop,
        max_messages: int = 256,
        max_bytes: int = 1024 * 1024,
        max_size: int = CHUNK_SIZE,
    ) -> None:
        self._mailbox = mailbox
        self._reader = IMessageReader(mailbox, None)
        self._drop = maildrop
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._max_size = max_size
        self._loads: dict[int, Load] = {}  # by message number
        self._order: deque[int] = deque()  # numbers of the loads, ascending (some taken)
        self._bytes = 0
        self._next = 1  # the first message number not considered for loading yet
        self._last = 0  # the message the client asked for last

    @property
    def loaded_bytes(self) -> int:
        """Bytes held or being loaded for messages not taken yet."""
        return self._bytes

    def take(self, number: int) -> Load | None:
        """The load of message C{number} if one was started (it is forgotten here)."""
        load = self._loads.pop(number, None)
        if load is not None:
            self._bytes -= load.size
        return load

    def advance(self, number: int) -> None:
        """The client asked for message C{number}: drop loads it passed, load what follows."""
        if number < self._last:
            self.clear()  # it went back: start over from here
        self._last = number
        order = self._order
        while order and order[0] <= number:
            self.take(order.popleft())
        self._next = max(self._next, number + 1)
        if len(self._loads) * 2 <= self._max_messages and self._bytes * 2 <= self._max_bytes:
            self._refill()

    def clear(self) -> None:
        """Forget every load; loads in progress finish by themselves, unseen."""
        self._loads.clear()
        self._order.clear()
        self._bytes = 0
        self._next = 1
        self._last = 0

    def _refill(self) -> None:
        batch: list[Load] = []
        drop, total = self._drop, len(self._drop)
        while self._next <= total and len(self._loads) < self._max_messages:
            number = self._next
            uid = drop.peek(number)
            size = drop.stored_size(number)
            if uid is not None and size <= self._max_size:
                if self._bytes + size > self._max_bytes:
                    break
                load = self._loads[number] = Load(uid, size)
                self._order.append(number)
                self._bytes += size
                batch.append(load)
            self._next += 1
        if not batch:
            return
        if self._reader is not None:
            d = self._reader.read_messages([load.uid for load in batch], self._max_size)
            d.addCallbacks(_fill, _fail, callbackArgs=(batch,), errbackArgs=(batch,))
        else:
            for load in batch:
                Deferred.fromCoroutine(self._load_one(load.uid)).addCallback(load.finish)

    async def _load_one(self, uid: int) -> bytes | None:
        try:
            content = await self._mailbox.open_content(uid)
        except Exception:
            return None  # RETR will open it again and report the error properly
        try:
            return await content.read(0, max(content.size, 1))
        except Exception:
            return None
        finally:
            with suppress(Exception):
                await content.close()


def _fill(found: Mapping[int, bytes], batch: list[Load]) -> None:
    for load in batch:
        load.finish(found.get(load.uid))


def _fail(failure: Failure, batch: list[Load]) -> None:
    # RETR opens the message again and reports the store's error properly.
    for load in batch:
        load.finish(None)
