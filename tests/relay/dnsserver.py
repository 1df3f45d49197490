"""
A real authoritative DNS server for tests: Twisted Names on 127.0.0.1 (UDP and TCP, one port),
serving an in-memory zone. Names in C{servfail} answer SERVFAIL, names in C{silent} never answer.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.names import common, dns, server

Record = Any


class PlantedServfail(Exception):
    """Answered with SERVFAIL, without the error log Twisted Names writes for real failures."""


class _Factory(server.DNSServerFactory):
    def sendReply(self, protocol: Any, message: Any, address: Any) -> None:
        # Over UDP, an answer of more than 1232 bytes (our EDNS payload) is sent empty with
        # the TC bit (RFC 2181 9), so that the client must ask again over TCP.
        if address is not None and len(message.toStr()) > 1232:
            message.answers, message.trunc = [], 1
        super().sendReply(protocol, message, address)

    def gotResolverError(self, failure: Any, protocol: Any, message: Any, address: Any) -> None:
        if failure.check(PlantedServfail):
            response = self._responseFromMessage(message=message, rCode=dns.ESERVER)
            self.sendReply(protocol, response, address)
        else:
            super().gotResolverError(failure, protocol, message, address)


class Zone(common.ResolverBase):
    def __init__(
        self,
        records: dict[str, list[Record]],
        servfail: frozenset[str] = frozenset(),
        silent: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.records = {k.lower(): v for k, v in records.items()}
        self.servfail = servfail
        self.silent = silent
        self.asked: list[tuple[str, int]] = []

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any = None) -> defer.Deferred[Any]:
        text = name.decode("ascii").lower()
        self.asked.append((text, type))
        if text in self.servfail:
            return defer.fail(PlantedServfail())
        if text in self.silent:
            return defer.Deferred()
        answers: list[dns.RRHeader] = []
        while True:
            if text not in self.records:
                if answers:
                    break
                return defer.fail(dns.AuthoritativeDomainError(name))
            recs = self.records[text]
            cnames = [r for r in recs if r.TYPE == dns.CNAME]
            if cnames and type != dns.CNAME:
                answers.append(dns.RRHeader(text, dns.CNAME, dns.IN, 60, cnames[0], auth=True))
                text = cnames[0].name.name.decode("ascii").lower()
                continue
            answers += [
                dns.RRHeader(text, r.TYPE, dns.IN, 60, r, auth=True) for r in recs if r.TYPE == type
            ]
            break
        return defer.succeed((answers, [], []))


class DNSServer:
    """Listens on 127.0.0.1:<free port> over UDP and TCP until L{stop}."""

    def __init__(self, reactor: Any, zone: Zone) -> None:
        factory = _Factory(authorities=[zone])
        # A free TCP port, then UDP on the same number: that one may be taken (by another
        # test's socket), so try a few ports rather than fail.
        for attempt in range(20):
            self.tcp: IListeningPort = reactor.listenTCP(0, factory, interface="127.0.0.1")
            self.port: int = self.tcp.getHost().port
            try:
                self.udp: IListeningPort = reactor.listenUDP(
                    self.port, dns.DNSDatagramProtocol(factory), interface="127.0.0.1"
                )
                break
            except CannotListenError:
                self.tcp.stopListening()
                if attempt == 19:
                    raise

    def stop(self) -> defer.Deferred[Any]:
        return defer.gatherResults(
            [
                defer.maybeDeferred(self.udp.stopListening),
                defer.maybeDeferred(self.tcp.stopListening),
            ]
        )
