"""Shared helpers for the FETCH and SEARCH engine tests: a memory mailbox that counts reads, outputs."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.errors import NoSuchMessage
from twisted_mail_stack.interfaces import IMailbox, IMessageContent, IMessageReader
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import MessageInfo

T = TypeVar("T")
DATE = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)


def result(d: Deferred[T]) -> T:
    """The result of a Deferred that has fired (the memory backend answers at once)."""
    results: list[object] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    value = results[0]
    if isinstance(value, Failure):
        value.raiseException()
    return value  # type: ignore[return-value]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine over the memory backend to its end."""
    return result(Deferred.fromCoroutine(coroutine))


@implementer(IMessageContent)
class CountingContent:
    def __init__(self, inner: IMessageContent, mailbox: CountingMailbox) -> None:
        self._inner = inner
        self._mailbox = mailbox
        self.size = inner.size

    def read(self, offset: int, length: int) -> Deferred[bytes]:
        self._mailbox.read_lengths.append(length)

        def count(data: bytes) -> bytes:
            self._mailbox.bytes_read += len(data)
            return data

        return self._inner.read(offset, length).addCallback(count)

    def close(self) -> Deferred[None]:
        self._mailbox.open_count -= 1
        return self._inner.close()


class CountingMailbox:
    """An IMailbox wrapper that records which contents were opened and how much was read."""

    def __init__(self, inner: IMailbox) -> None:
        self._inner = inner
        self.opened: list[int] = []
        self.read_lengths: list[int] = []
        self.bytes_read = 0
        self.open_count = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def open_content(self, uid: int) -> Deferred[IMessageContent]:
        self.opened.append(uid)

        def wrap(content: IMessageContent) -> IMessageContent:
            self.open_count += 1
            return CountingContent(content, self)

        return self._inner.open_content(uid).addCallback(wrap)


@implementer(IMessageReader)
class BatchMailbox(CountingMailbox):
    """Also provides L{IMessageReader}, as the Maildir backend does."""

    def __init__(self, inner: IMailbox) -> None:
        super().__init__(inner)
        self.batches: list[list[int]] = []

    def read_messages(self, uids: Sequence[int], max_size: int) -> Deferred[Mapping[int, bytes]]:
        self.batches.append(list(uids))
        out: dict[int, bytes] = {}
        for uid in uids:
            try:
                content = result(self._inner.open_content(uid))
            except NoSuchMessage:
                continue
            if content.size <= max_size:
                out[uid] = result(content.read(0, content.size))
        return succeed(out)


def make_mailbox(
    messages: Iterable[bytes | tuple[bytes, Iterable[str]] | tuple[bytes, Iterable[str], datetime]],
) -> tuple[IMailbox, list[tuple[int, MessageInfo]]]:
    """A memory INBOX holding C{messages} (bytes, or bytes with flags and internal date)."""
    store = MemoryMailStore()
    result(store.create_account("u@example.org"))
    account = result(store.open_account("u@example.org"))
    mailbox: IMailbox = result(account.open_mailbox("INBOX"))
    for entry in messages:
        flags: Iterable[str]
        if isinstance(entry, bytes):
            data, flags, when = entry, (), DATE
        elif len(entry) == 2:
            data, flags = entry
            when = DATE
        else:
            data, flags, when = entry
        result(mailbox.append(BytesSource(data), flags, when))
    return mailbox, numbered(mailbox)


def numbered(mailbox: IMailbox) -> list[tuple[int, MessageInfo]]:
    infos = result(mailbox.list_messages())
    return list(enumerate(infos, 1))


class Output:
    """
    A FetchOutput like a transport with a buffer of C{high_water} bytes: drained() fires at once
    below it, else only when the test calls L{drain} (the peer read everything).
    """

    def __init__(self, high_water: int | None = None, keep: bool = True) -> None:
        self.high_water = high_water
        self.keep = keep
        self.data: list[bytes] = []
        self.outstanding = 0
        self.max_outstanding = 0
        self.written = 0
        self.waiting: list[Deferred[None]] = []

    def write(self, data: bytes) -> None:
        assert not self.waiting, "wrote while told to wait"
        if self.keep:
            self.data.append(data)
        self.written += len(data)
        self.outstanding += len(data)
        self.max_outstanding = max(self.max_outstanding, self.outstanding)

    def drained(self) -> Deferred[None]:
        if self.high_water is None or self.outstanding < self.high_water:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self.waiting.append(d)
        return d

    def drain(self) -> None:
        self.outstanding = 0
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(None)

    @property
    def value(self) -> bytes:
        return b"".join(self.data)
