"""
Routing of outbound mail: configured routes first, then MX records (RFC 5321 5.1, RFC 7505).

Order of precedence for a recipient domain:
  1. an address literal (C{[192.0.2.1]}, C{[IPv6:2001:db8::1]}) is the host itself;
  2. C{Routes.transports[domain]} (exact domain), then C{Routes.smarthost};
     a configured host is used as given, without MX lookup (Postfix's C{[host]:port});
  3. DNS: the MX records sorted by preference, in random order among equal preferences; no
     MX record means the domain itself (implicit MX); the addresses of each host, AAAA then A
     (C{ip_versions}).

Errors (see L{IMXResolver.resolve}): NXDOMAIN is permanent (5.1.2); a null MX (one MX C{0 .},
RFC 7505 3) is permanent (556 5.1.10); hosts that all lack addresses are permanent (5.4.4)
unless one lookup failed, which makes it temporary; SERVFAIL or timeouts are temporary (4.4.3).
"""

from __future__ import annotations

import ipaddress
import random as _random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
from attrs import field, frozen
from twisted.internet.defer import Deferred, gatherResults
from zope.interface import implementer

from ..errors import PermanentRoutingError, TemporaryRoutingError
from ..interfaces import IMXResolver
from ..values import MXHost, normalise_domain
from .dnsclient import DNSClient, DNSFailure

__all__ = ["Relay", "Routes", "MXResolver", "parse_literal"]


@frozen
class Relay:
    """A configured next hop: a host name or IP address, and a port."""

    host: str
    port: int = 25


def _domains(value: Mapping[str, Relay]) -> dict[str, Relay]:
    return {normalise_domain(k): v for k, v in value.items()}


@frozen
class Routes:
    """Configured routes: C{transports} maps a domain to its relay; C{smarthost} takes the rest."""

    smarthost: Relay | None = None
    transports: Mapping[str, Relay] = field(factory=dict, converter=_domains, hash=False)


def parse_literal(domain: str) -> str | None:
    """
    The IP address of an address literal (RFC 5321 4.1.3), None if C{domain} is not one.
    Raises L{PermanentRoutingError} (5.1.2) for a malformed literal.
    """
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    text = domain[1:-1]
    version = 4
    if text[:5].lower() == "ipv6:":
        text, version = text[5:], 6
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise PermanentRoutingError(f"bad address literal {domain}", 550, "5.1.2")
    return str(address)


@implementer(IMXResolver)
class MXResolver:
    """
    L{IMXResolver} over a L{DNSClient}. C{own_names} are this host's names: an MX list that
    names one drops it and every host of the same or a worse preference (RFC 5321 5.1), and
    fails with 5.4.6 if nothing is left. At most C{max_hosts} hosts are returned. Hosts found
    in DNS or as address literals get C{smtp_port} (25; other values are for tests).
    """

    def __init__(
        self,
        dns_client: DNSClient,
        routes: Routes | None = None,
        *,
        random: _random.Random | None = None,
        own_names: Iterable[str] = (),
        ip_versions: Sequence[int] = (6, 4),
        max_hosts: int = 10,
        smtp_port: int = 25,
    ) -> None:
        self._dns = dns_client
        self._routes = routes or Routes()
        self._random = random or _random.Random()
        self._own = frozenset(normalise_domain(n) for n in own_names)
        self._types = [{6: "AAAA", 4: "A"}[v] for v in ip_versions]
        self._max_hosts = max_hosts
        self._port = smtp_port

    def resolve(self, domain: str) -> Deferred[Sequence[MXHost]]:
        return Deferred.fromCoroutine(self._resolve(domain))

    async def _resolve(self, domain: str) -> Sequence[MXHost]:
        literal = parse_literal(domain.strip())
        if literal is not None:
            return [MXHost(literal, (literal,), self._port)]
        try:
            domain = normalise_domain(domain)
        except ValueError as e:
            raise PermanentRoutingError(str(e), 550, "5.1.2") from None
        relay = self._routes.transports.get(domain) or self._routes.smarthost
        if relay is not None:
            return await self._relay(relay)
        reply = await self._ask(domain, "MX")
        if reply.rcode() == dns.rcode.NXDOMAIN:
            raise PermanentRoutingError(f"{domain}: no such domain (NXDOMAIN)", 550, "5.1.2")
        records = _answer(reply)
        if not records:  # RFC 5321 5.1: no MX, the domain is its own implicit MX
            return await self._hosts(domain, [(0, domain)])
        if len(records) == 1 and records[0].exchange.to_text() == ".":
            raise PermanentRoutingError(f"{domain} accepts no mail (null MX)", 556, "5.1.10")
        pairs = [
            (r.preference, r.exchange.to_text(omit_final_dot=True).lower())
            for r in records
            if r.exchange.to_text() != "."
        ]
        return await self._hosts(domain, self._order(domain, pairs))

    def _order(self, domain: str, pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
        by_pref: dict[int, list[str]] = {}
        for pref, name in pairs:
            if name not in by_pref.setdefault(pref, []):
                by_pref[pref].append(name)
        ordered: list[tuple[int, str]] = []
        for pref in sorted(by_pref):
            names = by_pref[pref]
            self._random.shuffle(names)  # RFC 5321 5.1: random order among equals
            ordered += [(pref, n) for n in names]
        own = [p for p, n in ordered if n in self._own]
        if own:
            ordered = [(p, n) for p, n in ordered if p < min(own)]
            if not ordered:
                raise PermanentRoutingError(f"mail for {domain} loops back to myself", 554, "5.4.6")
        return ordered[: self._max_hosts]

    async def _hosts(self, domain: str, pairs: list[tuple[int, str]]) -> list[MXHost]:
        found = await gatherResults([self._addresses(name) for _, name in pairs])
        hosts = [
            MXHost(name, addresses, self._port, pref)
            for (pref, name), (addresses, _) in zip(pairs, found, strict=True)
            if addresses
        ]
        if hosts:
            return hosts
        if any(failed for _, failed in found):
            raise TemporaryRoutingError(f"{domain}: address lookup of its hosts failed")
        names = ", ".join(name for _, name in pairs)
        raise PermanentRoutingError(f"{domain}: no address for {names}", 550, "5.4.4")

    async def _relay(self, relay: Relay) -> list[MXHost]:
        try:
            ip = str(ipaddress.ip_address(relay.host))
        except ValueError:
            addresses, _ = await self._addresses(relay.host)
            if not addresses:  # a configuration or DNS problem: keep the mail, retry
                raise TemporaryRoutingError(f"no address for relay {relay.host}") from None
            return [MXHost(relay.host, addresses, relay.port)]
        return [MXHost(ip, (ip,), relay.port)]

    def _addresses(self, name: str) -> Deferred[tuple[tuple[str, ...], bool]]:
        """The addresses of C{name} in C{ip_versions} order, and whether a lookup failed."""

        async def lookup() -> tuple[tuple[str, ...], bool]:
            found: list[str] = []
            failed = False
            replies = await gatherResults(
                [Deferred.fromCoroutine(self._try(name, t)) for t in self._types]
            )
            for reply in replies:
                if reply is None:
                    failed = True
                elif reply.rcode() == dns.rcode.NOERROR:
                    found += [r.address for r in _answer(reply) if r.address not in found]
            return tuple(found), failed

        return Deferred.fromCoroutine(lookup())

    async def _try(self, name: str, rdtype: str) -> dns.message.Message | None:
        try:
            return await self._ask(name, rdtype)
        except TemporaryRoutingError:
            return None

    async def _ask(self, name: str, rdtype: str) -> dns.message.Message:
        try:
            return await self._dns.query(name, rdtype)
        except DNSFailure as e:
            raise TemporaryRoutingError(f"DNS lookup failed: {e}") from None


def _answer(reply: dns.message.Message) -> list[Any]:
    """The records answering the question, after any CNAME chain; [] for no data."""
    assert isinstance(reply, dns.message.QueryMessage)
    try:
        rrset = reply.resolve_chaining().answer
    except dns.exception.DNSException:  # a broken CNAME chain answers nothing
        return []
    return list(rrset) if rrset is not None else []
