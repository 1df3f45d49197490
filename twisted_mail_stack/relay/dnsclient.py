"""
DNS queries as dnspython messages carried by Twisted's own UDP and TCP transports.

Why not C{dns.resolver} in a thread: a lookup would hold a pool thread for up to its whole
timeout, the pool is shared with the queue's fsyncs, and a thread cannot be cancelled. Why not
C{dns.asyncresolver}: it needs the asyncio reactor and we run the default one. dnspython builds
and checks the messages; the reactor does the waiting, so a query costs one socket, is
cancellable (the socket closes) and is driven by the injected reactor like everything else.

Each query goes over UDP from a fresh random port to one nameserver, and again over TCP when the
answer is truncated (RFC 7766 5). A reply is accepted only if it answers our query (id,
question: C{Message.is_response}); anything else on the socket is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.resolver
from attrs import field, frozen, validators
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.protocol import DatagramProtocol, connectionDone
from twisted.protocols.basic import Int16StringReceiver
from twisted.python.failure import Failure

__all__ = ["DNSConfig", "DNSClient", "DNSFailure", "system_nameservers"]

#: EDNS0 payload size advertised (the 2020 DNS flag day value, avoids IP fragmentation).
PAYLOAD = 1232


def _tuple(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class DNSConfig:
    """Where and how long to ask. C{nameservers} are IP addresses; all use C{port}."""

    nameservers: tuple[str, ...] = field(converter=_tuple, validator=validators.min_len(1))
    port: int = 53
    #: Seconds to wait for one answer from one server.
    timeout: float = 5.0
    #: Rounds over the list of servers before giving up.
    attempts: int = 2


def system_nameservers() -> tuple[str, ...]:
    """The nameservers of C{/etc/resolv.conf} (read once; for the service to build a config)."""
    return tuple(str(ns) for ns in dns.resolver.Resolver(configure=True).nameservers)


class DNSFailure(Exception):
    """No server gave a usable answer: every try timed out, failed, or answered SERVFAIL etc."""


class _UDPQuery(DatagramProtocol):
    def __init__(self, query: dns.message.Message, server: str, port: int) -> None:
        self.query = query
        self.server, self.port = server, port
        self.done: Deferred[dns.message.Message | None] = Deferred(lambda d: self._close())
        self._closed = False

    def startProtocol(self) -> None:
        assert self.transport is not None
        self.transport.connect(self.server, self.port)
        # Connected UDP (no address): replies from elsewhere are dropped by the kernel.
        self.transport.write(self.query.to_wire())  # type: ignore[call-arg]

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            reply = dns.message.from_wire(data, raise_on_truncation=True)
        except dns.message.Truncated as e:
            reply = e.message()
            if reply is None or not self.query.is_response(reply):
                return
            self._finish(None)
            return
        except dns.exception.DNSException:
            return
        if self.query.is_response(reply):
            self._finish(reply)

    def connectionRefused(self) -> None:
        self._finish(Failure(DNSFailure(f"{self.server}: port unreachable")))

    def stopProtocol(self) -> None:
        # The epoll reactor closes a UDP port on a socket error (ICMP port unreachable)
        # instead of calling connectionRefused: fail now rather than at the timeout.
        if not self._closed:
            self._closed = True
            self._finish(Failure(DNSFailure(f"{self.server}: port unreachable")))

    def _finish(self, result: Any) -> None:
        self._close()
        if self.done.called:
            return
        if isinstance(result, Failure):
            self.done.errback(result)
        else:
            self.done.callback(result)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            assert self.transport is not None
            self.transport.stopListening()


class _TCPQuery(Int16StringReceiver):
    def __init__(self, query: dns.message.Message) -> None:
        self.query = query
        self.done: Deferred[dns.message.Message] = Deferred(lambda d: self._abort())

    def connectionMade(self) -> None:
        self.sendString(self.query.to_wire())

    def stringReceived(self, data: bytes) -> None:
        try:
            reply = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        if self.query.is_response(reply) and not self.done.called:
            assert self.transport is not None
            self.transport.loseConnection()
            self.done.callback(reply)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.errback(DNSFailure("TCP connection closed without an answer"))

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]


class DNSClient:
    """Sends queries with C{reactor} (L{IReactorUDP}, L{IReactorTCP}, L{IReactorTime})."""

    def __init__(self, reactor: Any, config: DNSConfig) -> None:
        self._reactor = reactor
        self.config = config

    def query(self, name: str, rdtype: str) -> Deferred[dns.message.Message]:
        """
        Ask for C{rdtype} records of C{name} (an ASCII domain). Fires with the reply if its rcode
        is NOERROR or NXDOMAIN (the caller reads the rcode), else fails with L{DNSFailure}
        once every server was tried C{attempts} times. Cancelling closes the sockets.
        """
        return Deferred.fromCoroutine(self._query(name, rdtype))

    async def _query(self, name: str, rdtype: str) -> dns.message.Message:
        config = self.config
        problem = "no server"
        for _ in range(config.attempts):
            for server in config.nameservers:
                query = dns.message.make_query(name, rdtype, use_edns=0, payload=PAYLOAD)
                try:
                    reply = await self._timed(self._udp(query, server))
                    if reply is None:  # truncated: RFC 7766 5, ask again over TCP
                        reply = await self._timed(self._tcp(query, server))
                except TimeoutError:
                    problem = f"{server}: timed out"
                    continue
                except (DNSFailure, ConnectionError, OSError) as e:
                    problem = f"{server}: {e}"
                    continue
                if reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return reply
                problem = f"{server}: {dns.rcode.to_text(reply.rcode())}"
        raise DNSFailure(f"{name}/{rdtype}: {problem}")

    def _timed(self, d: Deferred[Any]) -> Deferred[Any]:
        return d.addTimeout(self.config.timeout, self._reactor)

    def _udp(self, query: dns.message.Message, server: str) -> Deferred[dns.message.Message | None]:
        proto = _UDPQuery(query, server, self.config.port)
        self._reactor.listenUDP(0, proto, interface="::" if ":" in server else "")
        return proto.done

    def _tcp(self, query: dns.message.Message, server: str) -> Deferred[dns.message.Message]:
        kind = TCP6ClientEndpoint if ":" in server else TCP4ClientEndpoint
        endpoint = kind(self._reactor, server, self.config.port, timeout=self.config.timeout)
        proto = _TCPQuery(query)
        connecting = connectProtocol(endpoint, proto)

        async def run() -> dns.message.Message:
            await connecting
            return await proto.done

        return Deferred.fromCoroutine(run())
