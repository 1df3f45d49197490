"""MX routing against a real authoritative DNS server on 127.0.0.1 (Twisted Names)."""

from __future__ import annotations

import random
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.names import dns
from twisted.trial import unittest

from twisted_mail_stack.errors import PermanentRoutingError, TemporaryRoutingError
from twisted_mail_stack.interfaces import IMXResolver
from twisted_mail_stack.relay.dnsclient import DNSClient, DNSConfig, DNSFailure
from twisted_mail_stack.relay.mx import MXResolver, Relay, Routes, parse_literal
from twisted_mail_stack.values import MXHost

from .dnsserver import DNSServer, Zone


def A(ip: str) -> Any:
    return dns.Record_A(ip)


def AAAA(ip: str) -> Any:
    return dns.Record_AAAA(ip)


def MX(pref: int, name: str) -> Any:
    return dns.Record_MX(pref, name.encode())


ZONE = {
    "mx.test": [MX(20, "mx2.mx.test"), MX(10, "mx1.mx.test")],
    "mx1.mx.test": [A("127.0.0.2"), AAAA("::1")],
    "mx2.mx.test": [A("127.0.0.3")],
    "equal.test": [MX(10, "a.equal.test"), MX(10, "b.equal.test"), MX(10, "c.equal.test")]
    + [MX(20, "d.equal.test")],
    **{f"{h}.equal.test": [A(f"127.0.1.{i}")] for i, h in enumerate("abcd")},
    "implicit.test": [A("127.0.0.4"), AAAA("::1")],
    "nullmx.test": [MX(0, "")],
    "noaddr.test": [MX(10, "missing.noaddr.test")],
    "empty.test": [dns.Record_TXT(b"no mail here")],
    "halfbad.test": [MX(10, "sf.halfbad.test"), MX(20, "ok.halfbad.test")],
    "ok.halfbad.test": [A("127.0.0.6")],
    "allbad.test": [MX(10, "sf.halfbad.test")],
    "cname.test": [MX(10, "alias.cname.test")],
    "alias.cname.test": [dns.Record_CNAME(b"real.cname.test")],
    "real.cname.test": [A("127.0.0.5")],
    "big.test": [A(f"127.0.{i // 200}.{i % 200 + 1}") for i in range(150)],
    "loop.test": [MX(10, "me.loop.test"), MX(5, "other.loop.test"), MX(20, "far.loop.test")],
    "loop2.test": [MX(10, "me.loop.test")],
    **{f"{h}.loop.test": [A("127.0.0.7")] for h in ("me", "other", "far")},
    "xn--bcher-kva.test": [MX(10, "mx1.mx.test")],
}


class MXTests(unittest.TestCase):
    timeout = 20

    def setUp(self) -> None:
        self.zone = Zone(
            ZONE,
            servfail=frozenset({"servfail.test", "sf.halfbad.test"}),
            silent=frozenset({"slow.test"}),
        )
        self.server = DNSServer(reactor, self.zone)
        self.addCleanup(self.server.stop)

    def resolver(self, routes: Routes | None = None, **kw: Any) -> MXResolver:
        config = DNSConfig(
            kw.pop("nameservers", ("127.0.0.1",)),
            self.server.port,
            timeout=kw.pop("timeout", 2.0),
            attempts=kw.pop("attempts", 2),
        )
        return MXResolver(DNSClient(reactor, config), routes, **kw)

    def test_interface(self) -> None:
        self.assertTrue(IMXResolver.providedBy(self.resolver()))

    async def test_mx_by_preference_with_addresses(self) -> None:
        hosts = await self.resolver().resolve("MX.test.")
        self.assertEqual(
            list(hosts),
            [
                MXHost("mx1.mx.test", ("::1", "127.0.0.2"), 25, 10),
                MXHost("mx2.mx.test", ("127.0.0.3",), 25, 20),
            ],
        )

    async def test_ipv4_first_or_only(self) -> None:
        hosts = await self.resolver(ip_versions=(4, 6)).resolve("mx.test")
        self.assertEqual(hosts[0].addresses, ("127.0.0.2", "::1"))
        hosts = await self.resolver(ip_versions=(4,)).resolve("mx.test")
        self.assertEqual(hosts[0].addresses, ("127.0.0.2",))

    async def test_random_order_among_equals(self) -> None:
        orders = set()
        for seed in range(40):
            hosts = await self.resolver(random=random.Random(seed)).resolve("equal.test")
            names = [h.name.split(".")[0] for h in hosts]
            self.assertEqual(names[3], "d")
            self.assertEqual(sorted(names[:3]), ["a", "b", "c"])
            orders.add(tuple(names[:3]))
        self.assertEqual(len(orders), 6)

    async def test_implicit_mx(self) -> None:
        hosts = await self.resolver().resolve("implicit.test")
        self.assertEqual(list(hosts), [MXHost("implicit.test", ("::1", "127.0.0.4"))])

    async def test_cname_of_mx_host(self) -> None:
        hosts = await self.resolver().resolve("cname.test")
        self.assertEqual(list(hosts), [MXHost("alias.cname.test", ("127.0.0.5",), 25, 10)])

    async def test_idn_domain(self) -> None:
        hosts = await self.resolver().resolve("bücher.test")
        self.assertEqual(hosts[0].name, "mx1.mx.test")

    async def permanent(self, domain: str, code: int, enhanced: str, **kw: Any) -> None:
        with self.assertRaises(PermanentRoutingError) as e:
            await self.resolver(**kw).resolve(domain)
        self.assertEqual((e.exception.code, e.exception.enhanced), (code, enhanced))

    async def test_null_mx(self) -> None:
        await self.permanent("nullmx.test", 556, "5.1.10")
        # RFC 7505: no address lookup is made for a null MX domain.
        self.assertNotIn(("nullmx.test", dns.A), self.zone.asked)

    async def test_nxdomain(self) -> None:
        await self.permanent("nowhere.test", 550, "5.1.2")

    async def test_no_address_anywhere(self) -> None:
        await self.permanent("noaddr.test", 550, "5.4.4")
        await self.permanent("empty.test", 550, "5.4.4")

    async def test_servfail_is_temporary(self) -> None:
        with self.assertRaises(TemporaryRoutingError) as e:
            await self.resolver().resolve("servfail.test")
        self.assertEqual(e.exception.enhanced, "4.4.3")
        self.assertIn("SERVFAIL", str(e.exception))
        with self.assertRaises(TemporaryRoutingError):
            await self.resolver().resolve("allbad.test")

    async def test_failed_host_skipped(self) -> None:
        hosts = await self.resolver().resolve("halfbad.test")
        self.assertEqual(list(hosts), [MXHost("ok.halfbad.test", ("127.0.0.6",), 25, 20)])

    async def test_timeout_is_temporary_and_bounded(self) -> None:
        start = time.monotonic()
        with self.assertRaises(TemporaryRoutingError) as e:
            await self.resolver(timeout=0.2, attempts=2).resolve("slow.test")
        self.assertIn("timed out", str(e.exception))
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(self.zone.asked.count(("slow.test", dns.MX)), 2)

    async def test_next_nameserver_when_one_is_unreachable(self) -> None:
        hosts = await self.resolver(nameservers=("127.0.0.2", "127.0.0.1")).resolve("mx.test")
        self.assertEqual(hosts[0].name, "mx1.mx.test")

    async def test_truncated_answer_retried_over_tcp(self) -> None:
        reply = await DNSClient(reactor, DNSConfig(("127.0.0.1",), self.server.port)).query(
            "big.test", "A"
        )
        self.assertEqual(len(list(reply.answer[0])), 150)
        # Asked twice: over UDP (truncated at the 1232-byte EDNS payload), then over TCP.
        self.assertEqual(self.zone.asked.count(("big.test", dns.A)), 2)

    async def test_cancel_closes_socket(self) -> None:
        client = DNSClient(reactor, DNSConfig(("127.0.0.1",), self.server.port, timeout=30))
        d = client.query("slow.test", "MX")
        d.cancel()
        with self.assertRaises(CancelledError):
            await d
        # trial's reactor check fails the test if the UDP port were left open.

    async def test_all_servers_down(self) -> None:
        client = DNSClient(reactor, DNSConfig(("127.0.0.2",), self.server.port, attempts=1))
        with self.assertRaises(DNSFailure):
            await client.query("mx.test", "MX")

    async def test_own_name_drops_worse_hosts(self) -> None:
        hosts = await self.resolver(own_names=["ME.loop.test"]).resolve("loop.test")
        self.assertEqual([h.name for h in hosts], ["other.loop.test"])
        await self.permanent("loop2.test", 554, "5.4.6", own_names=["me.loop.test"])

    async def test_address_literals(self) -> None:
        r = self.resolver()
        self.assertEqual(
            list(await r.resolve("[192.0.2.1]")), [MXHost("192.0.2.1", ("192.0.2.1",))]
        )
        hosts = await r.resolve("[IPv6:2001:DB8::1]")
        self.assertEqual(hosts[0].addresses, ("2001:db8::1",))
        self.assertEqual(self.zone.asked, [])
        for bad in ("[300.1.1.1]", "[2001:db8::1]", "[IPv6:1.2.3.4]", "[x]"):
            with self.assertRaises(PermanentRoutingError):
                parse_literal(bad)
        self.assertIsNone(parse_literal("example.org"))

    async def test_configured_routes_first(self) -> None:
        routes = Routes(
            smarthost=Relay("mx2.mx.test", 587),
            transports={"Routed.test": Relay("127.0.0.9", 2525)},
        )
        r = self.resolver(routes)
        self.assertEqual(
            list(await r.resolve("routed.test")), [MXHost("127.0.0.9", ("127.0.0.9",), 2525)]
        )
        self.assertEqual(
            list(await r.resolve("mx.test")), [MXHost("mx2.mx.test", ("127.0.0.3",), 587)]
        )
        self.assertNotIn(("mx.test", dns.MX), self.zone.asked)
        with self.assertRaises(TemporaryRoutingError):
            await self.resolver(Routes(smarthost=Relay("missing.noaddr.test"))).resolve("x.test")
