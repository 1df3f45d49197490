"""Streaming message content under flow control, and measuring canonical sizes."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from zope.interface import implementer

from twisted_mail_stack.interfaces import IMessageContent
from twisted_mail_stack.pop3._wire import MessageEncoder
from twisted_mail_stack.streaming import SizeCache, TransferStopped, canonical_size, stream_content


@implementer(IMessageContent)
class SlowContent:
    """Content whose reads complete only when the test says so."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.pending: list[tuple[Deferred[bytes], int, int]] = []
        self.closed = False

    def read(self, offset: int, length: int) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        self.pending.append((d, offset, length))
        return d

    def complete(self) -> None:
        d, offset, length = self.pending.pop(0)
        d.callback(self.data[offset : offset + length])

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)


class StreamTests(unittest.TestCase):
    def stream(self, content: Any, transport: StringTransport, **kw: Any) -> Deferred[None]:
        return Deferred.fromCoroutine(
            stream_content(content, transport, MessageEncoder(), b"+OK\r\n", chunk_size=1000, **kw)
        )

    def test_small_message_is_one_write_with_its_status(self) -> None:
        transport = StringTransport()
        writes: list[bytes] = []
        transport.write = writes.append  # type: ignore[method-assign]
        content = SlowContent(b"Subject: x\r\n\r\nhi\r\n")
        d = self.stream(content, transport)
        content.complete()
        self.successResultOf(d)
        self.assertEqual(writes, [b"+OK\r\nSubject: x\r\n\r\nhi\r\n.\r\n"])
        self.assertTrue(content.closed)
        self.assertIsNone(transport.producer)

    def test_pauses_while_the_consumer_is_full(self) -> None:
        transport = StringTransport()
        content = SlowContent(b"x" * 10_000)
        progress: list[None] = []
        d = self.stream(content, transport, progress=lambda: progress.append(None))
        content.complete()
        producer = transport.producer
        self.assertIsNotNone(producer)
        self.assertTrue(transport.streaming)
        producer.pauseProducing()
        content.complete()
        # Paused: the chunk in hand is written, no further read is issued.
        self.assertEqual(content.pending, [])
        self.assertEqual(len(transport.value()), 5 + 2000)
        producer.resumeProducing()
        while content.pending:
            content.complete()
        self.successResultOf(d)
        self.assertEqual(transport.value(), b"+OK\r\n" + b"x" * 10_000 + b"\r\n.\r\n")
        self.assertIsNone(transport.producer)
        self.assertEqual(len(progress), 10)

    def test_stop_ends_the_transfer_and_closes(self) -> None:
        transport = StringTransport()
        content = SlowContent(b"x" * 10_000)
        d = self.stream(content, transport)
        content.complete()
        transport.producer.pauseProducing()
        content.complete()
        transport.producer.stopProducing()
        self.failureResultOf(d, TransferStopped)
        self.assertTrue(content.closed)

    def test_canonical_size(self) -> None:
        content = SlowContent(b"a\nb\r\nc" * 500)
        d = Deferred.fromCoroutine(canonical_size(content, chunk_size=100))
        while content.pending:
            content.complete()
        self.assertEqual(self.successResultOf(d), len(b"a\r\nb\r\nc" * 500) + 2)
        self.assertTrue(content.closed)


def test_size_cache_keeps_the_most_recent() -> None:
    cache = SizeCache(capacity=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
