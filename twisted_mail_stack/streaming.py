"""
Sending stored messages without holding them in memory: L{stream_content} copies an
L{IMessageContent} to a transport by ranges through an encoder, under Twisted's push-producer
flow control, and L{canonical_size} measures a message's CRLF size the same way. Shared by
POP3 and IMAP.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Protocol

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer, IPushProducer, ITCPTransport, ITransport
from zope.interface import implementer

from .crlf import CRLFNormaliser
from .interfaces import IMessageContent

__all__ = [
    "CHUNK_SIZE",
    "Encoder",
    "TransferStopped",
    "stream_content",
    "canonical_size",
    "SizeCache",
    "send_now",
]

#: Bytes read from the store per step.
CHUNK_SIZE = 64 * 1024


class Encoder(Protocol):
    """Turns stored bytes into wire bytes (e.g. the POP3 L{MessageEncoder})."""

    @property
    def complete(self) -> bool:
        """True when no more input is wanted."""

    def feed(self, data: bytes) -> bytes: ...

    def end(self) -> bytes: ...


def send_now(transport: ITransport, data: bytes) -> None:
    """
    C{transport.write(data)}, but on a plain TCP connection with nothing queued and no producer,
    hand the bytes to the socket at once. Twisted queues every write until the reactor's next
    turn, which costs two epoll updates and a loop iteration per write: for small replies to a
    lock-step client that is a large part of the work. Anything the socket does not take, or
    any doubt about the transport's state, goes through C{write} as usual, so order and error
    handling stay Twisted's.
    """
    if (
        isinstance(transport, tcp.Connection)
        and getattr(transport, "TLS", True) is False  # after startTLS, writes go through TLS
        and transport.connected
        and not transport.disconnecting
        and transport.producer is None
        and not transport.dataBuffer
        and not getattr(transport, "_tempDataLen", 1)
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int) and sent > 0:
            if sent >= len(data):
                return
            data = data[sent:]
    transport.write(data)


def set_nodelay(transport: object) -> None:
    """
    Turn Nagle's algorithm off on the TCP connection under C{transport}. Replies are written
    whole; Nagle would only hold them back (and, with the client's delayed ACK, stall each one
    ~40 ms). Under implicit TLS the TCP transport is one level down.
    """
    while transport is not None:
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)  # type: ignore[attr-defined]
            return
        transport = getattr(transport, "transport", None)


class TransferStopped(Exception):
    """The consumer went away (the connection was lost) before the message was sent."""


@implementer(IPushProducer)
class _Streamer:
    def __init__(self) -> None:
        self._resume: Deferred[None] | None = None
        self.paused = False
        self.stopped = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._wake()

    def stopProducing(self) -> None:
        self.stopped = True
        self._wake()

    def _wake(self) -> None:
        waiting, self._resume = self._resume, None
        if waiting is not None:
            waiting.callback(None)

    async def wait(self) -> None:
        while self.paused and not self.stopped:
            self._resume = Deferred()
            await self._resume
        if self.stopped:
            raise TransferStopped()


async def stream_content(
    content: IMessageContent,
    consumer: IConsumer,
    encoder: Encoder,
    prefix: bytes = b"",
    progress: Callable[[], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> None:
    """
    Write C{prefix} and the encoded C{content} to C{consumer}; close C{content} in the end.

    Reads one chunk at a time and waits while the consumer is paused, so memory use does not
    depend on the message's size or the reader's speed. A message that fits one chunk goes out
    in a single write together with C{prefix} and the encoder's ending (no Nagle/delayed-ACK
    stall between a status line and its body). C{progress} is called after each write. Raises
    L{TransferStopped} if the consumer stops the transfer, or the store's error.
    """
    streamer: _Streamer | None = None
    try:
        offset, pending = 0, prefix
        while offset < content.size and not encoder.complete:
            data = await content.read(offset, chunk_size)
            if streamer is not None and streamer.stopped:
                raise TransferStopped()
            if not data:
                break  # shorter than its size said: send what there is
            offset += len(data)
            pending += encoder.feed(data)
            if offset >= content.size or encoder.complete:
                break
            if streamer is None:
                streamer = _Streamer()
                consumer.registerProducer(streamer, True)
            consumer.write(pending)
            pending = b""
            if progress is not None:
                progress()
            await streamer.wait()
        consumer.write(pending + encoder.end())
        if progress is not None:
            progress()
    finally:
        if streamer is not None:
            consumer.unregisterProducer()
        await content.close()


async def canonical_size(content: IMessageContent, chunk_size: int = CHUNK_SIZE) -> int:
    """The size of C{content} with CRLF line ends (see L{CRLFNormaliser}); closes C{content}."""
    normaliser = CRLFNormaliser()
    try:
        offset = 0
        while offset < content.size:
            data = await content.read(offset, chunk_size)
            if not data:
                break
            offset += len(data)
            normaliser.feed(data)
        normaliser.end()
        return normaliser.count
    finally:
        await content.close()


class SizeCache:
    """
    Canonical sizes of immutable messages, by any hashable key (e.g. user, folder,
    UIDVALIDITY, UID), keeping the C{capacity} most recently used.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._sizes: OrderedDict[Hashable, int] = OrderedDict()

    def get(self, key: Hashable) -> int | None:
        size = self._sizes.get(key)
        if size is not None:
            self._sizes.move_to_end(key)
        return size

    def put(self, key: Hashable, size: int) -> None:
        self._sizes[key] = size
        self._sizes.move_to_end(key)
        while len(self._sizes) > self._capacity:
            self._sizes.popitem(last=False)
