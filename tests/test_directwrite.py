"""write_now: straight to the socket when nothing is queued, in order with the transport always."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from twisted_mail_stack.directwrite import _idle_tcp, write_now


class _Collect(Protocol):
    def __init__(self, want: int, done: defer.Deferred[bytes]) -> None:
        self.want, self.done, self.data = want, done, b""

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if len(self.data) >= self.want and not self.done.called:
            self.done.callback(self.data)


class _Server(Protocol):
    def __init__(self, act: Callable[[Any], None], seen: list[Any]) -> None:
        self.act, self.seen = act, seen

    def connectionMade(self) -> None:
        self.seen.append(_idle_tcp(self.transport))
        self.act(self.transport)


class WriteNowTests(unittest.TestCase):
    async def _exchange(self, act: Callable[[Any], None], want: int) -> tuple[bytes, list[Any]]:
        """Run C{act(transport)} on a real loopback TCP connection's server side; what arrived."""
        seen: list[Any] = []
        factory = Factory.forProtocol(lambda: _Server(act, seen))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        done: defer.Deferred[bytes] = defer.Deferred()
        client = ClientFactory.forProtocol(lambda: _Collect(want, done))
        connector = reactor.connectTCP(  # type: ignore[attr-defined]
            "127.0.0.1", port.getHost().port, client
        )
        self.addCleanup(connector.disconnect)
        done.addTimeout(10, reactor)
        return await done, seen

    async def test_idle_connection_sends_at_once(self) -> None:
        sent: list[int] = []

        def act(transport: Any) -> None:
            write_now(transport, b"220 ready\r\n")
            # Nothing was queued: the transport's buffers are still empty afterwards.
            sent.append(transport._tempDataLen + len(transport.dataBuffer))

        data, seen = await self._exchange(act, 11)
        self.assertEqual(data, b"220 ready\r\n")
        self.assertIsNotNone(seen[0])
        self.assertEqual(sent, [0])

    async def test_queued_data_keeps_its_place(self) -> None:
        def act(transport: Any) -> None:
            transport.write(b"first ")
            write_now(transport, b"second ")
            write_now(transport, b"third")

        data, _ = await self._exchange(act, 18)
        self.assertEqual(data, b"first second third")

    async def test_more_than_the_socket_takes_is_queued_in_order(self) -> None:
        big = bytes(range(256)) * 40_000  # 10 MB: more than a loopback socket buffer holds

        def act(transport: Any) -> None:
            write_now(transport, big)
            write_now(transport, b"END")

        data, _ = await self._exchange(act, len(big) + 3)
        self.assertEqual(len(data), len(big) + 3)
        self.assertTrue(data == big + b"END")

    def test_other_transports_are_written_as_usual(self) -> None:
        transport = StringTransport()
        self.assertIsNone(_idle_tcp(transport))
        write_now(transport, b"250 OK\r\n")
        self.assertEqual(transport.value(), b"250 OK\r\n")

    async def test_tls_connection_is_left_to_the_transport(self) -> None:
        def act(transport: Any) -> None:
            transport.TLS = True  # what startTLS sets: the TLS layer must see every byte
            seen.append(_idle_tcp(transport))
            transport.TLS = False
            write_now(transport, b"x")

        seen: list[Any] = []
        await self._exchange(act, 1)
        self.assertIsNone(seen[0])
