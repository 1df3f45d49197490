"""
One delivery attempt end to end on loopback: a real DNS server (Twisted Names) routes test
domains to two of our own SMTP servers on 127.0.0.2 and 127.0.0.3 (one port, two addresses).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.names import dns
from twisted.trial import unittest

from twisted_mail_stack.relay.attempt import attempt
from twisted_mail_stack.relay.client import Outgoing, RecipientResult, Timeouts, deliver
from twisted_mail_stack.relay.dnsclient import DNSClient, DNSConfig
from twisted_mail_stack.relay.mx import MXResolver
from twisted_mail_stack.relay.state import DELIVERED, FAILED, PENDING, EntryState
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import Envelope, EnvelopeRecipient, MXHost

from .dnsserver import DNSServer, Zone
from .smtpserver import RemoteMX

DOMAINS = ("preferred.test", "fallback.test", "implicit.test")
ZONE = {
    "preferred.test": [dns.Record_MX(20, b"mx2.hosts.test"), dns.Record_MX(10, b"mx1.hosts.test")],
    "fallback.test": [dns.Record_MX(10, b"dead.hosts.test"), dns.Record_MX(20, b"mx2.hosts.test")],
    "implicit.test": [dns.Record_A("127.0.0.3")],
    "nullmx.test": [dns.Record_MX(0, b"")],
    "mx1.hosts.test": [dns.Record_A("127.0.0.2")],
    "mx2.hosts.test": [dns.Record_A("127.0.0.3")],
    "dead.hosts.test": [dns.Record_A("127.0.0.4")],
}
BODY = b"Subject: relayed\r\n\r\nhello\r\n"
NOW = 1_800_000_000.0


class AttemptTests(unittest.TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.dns = DNSServer(reactor, Zone(ZONE))
        self.addCleanup(self.dns.stop)
        self.mx1 = RemoteMX(reactor, domains=DOMAINS, interface="127.0.0.2")
        port = self.mx1.address.port
        self.addCleanup(self.mx1.stop)
        self.mx2 = RemoteMX(reactor, domains=DOMAINS, interface="127.0.0.3", port=port)
        self.addCleanup(self.mx2.stop)
        client = DNSClient(reactor, DNSConfig(("127.0.0.1",), self.dns.port, timeout=2))
        self.resolver = MXResolver(client, random=random.Random(1), smtp_port=port)
        self.sessions: list[tuple[str, str]] = []

    def send(
        self, host: MXHost, address: str, messages: Sequence[Outgoing]
    ) -> Deferred[list[list[RecipientResult]]]:
        self.sessions.append((host.name, address))
        return deliver(
            reactor,
            address,
            host.port,
            messages,
            helo_name="relay.example.org",
            timeouts=Timeouts(connect=5),
        )

    async def try_once(self, rcpts: list[str], state: EntryState | None = None) -> EntryState:
        envelope = Envelope("alice@example.org", tuple(EnvelopeRecipient(r) for r in rcpts))
        return await attempt(
            envelope,
            BytesSource(BODY),
            state or EntryState.initial(envelope),
            resolver=self.resolver,
            send=self.send,
            now=NOW,
        )

    def states(self, state: EntryState) -> list[tuple[str, str | None, str | None]]:
        return [(r.state, r.status, r.remote_mta) for r in state.recipients]

    async def test_preferred_mx(self) -> None:
        state = await self.try_once(["bob@preferred.test", "carol@preferred.test"])
        self.assertEqual(self.states(state), [(DELIVERED, "2.0.0", "mx1.hosts.test")] * 2)
        self.assertEqual(self.sessions, [("mx1.hosts.test", "127.0.0.2")])  # one session for both
        self.assertEqual(len(self.mx1.inbox("bob@preferred.test")), 1)
        self.assertEqual(self.mx2.inbox("bob@preferred.test"), [])
        self.assertEqual(state.recipients[0].last_attempt, NOW)

    async def test_next_mx_when_the_first_refuses_connections(self) -> None:
        state = await self.try_once(["bob@fallback.test"])
        self.assertEqual(self.states(state), [(DELIVERED, "2.0.0", "mx2.hosts.test")])
        self.assertEqual([h for h, _ in self.sessions], ["dead.hosts.test", "mx2.hosts.test"])
        self.assertEqual(len(self.mx2.inbox("bob@fallback.test")), 1)

    async def test_implicit_mx(self) -> None:
        state = await self.try_once(["carol@implicit.test"])
        self.assertEqual(self.states(state), [(DELIVERED, "2.0.0", "implicit.test")])

    async def test_null_mx_and_nxdomain_fail_at_once(self) -> None:
        state = await self.try_once(["a@nullmx.test", "b@nowhere.test", "bob@preferred.test"])
        self.assertEqual(
            self.states(state),
            [
                (FAILED, "5.1.10", None),
                (FAILED, "5.1.2", None),
                (DELIVERED, "2.0.0", "mx1.hosts.test"),
            ],
        )
        self.assertEqual(state.recipients[0].diagnostic_type, "x-local")
        self.assertIn("null MX", state.recipients[0].reply or "")
        self.assertEqual([h for h, _ in self.sessions], ["mx1.hosts.test"])

    async def test_451_then_250_delivers_once(self) -> None:
        first = await self.try_once(["temp@preferred.test", "bob@preferred.test"])
        self.assertEqual(
            self.states(first),
            [(PENDING, "4.2.0", "mx1.hosts.test"), (DELIVERED, "2.0.0", "mx1.hosts.test")],
        )
        self.assertEqual(first.recipients[0].reply, "451 4.2.0 mailbox busy, try later")
        second = await self.try_once(["temp@preferred.test", "bob@preferred.test"], first)
        self.assertEqual(self.states(second)[0], (DELIVERED, "2.0.0", "mx1.hosts.test"))
        self.assertTrue(second.done)
        self.assertEqual(len(self.mx1.inbox("temp@preferred.test")), 1)
        self.assertEqual(len(self.mx1.inbox("bob@preferred.test")), 1)  # not sent again

    async def test_550_for_one_of_two(self) -> None:
        state = await self.try_once(["nobody@preferred.test", "carol@preferred.test"])
        self.assertEqual(
            self.states(state),
            [(FAILED, "5.1.1", "mx1.hosts.test"), (DELIVERED, "2.0.0", "mx1.hosts.test")],
        )
        self.assertTrue(state.recipients[0].reply.startswith("550 5.1.1"))  # type: ignore[union-attr]
        self.assertEqual(state.recipients[0].diagnostic_type, "smtp")

    async def test_all_hosts_down_stays_pending(self) -> None:
        await self.mx1.stop()
        await self.mx2.stop()
        state = await self.try_once(["bob@preferred.test"])
        [r] = state.recipients
        self.assertEqual((r.state, r.status, r.diagnostic_type), (PENDING, "4.4.1", "x-local"))
        self.assertIn("mx2.hosts.test[127.0.0.3]", r.reply or "")

    async def test_progress_after_each_domain_but_the_last(self) -> None:
        rcpts = ["bob@preferred.test", "carol@implicit.test", "bob@fallback.test"]
        envelope = Envelope("alice@example.org", tuple(EnvelopeRecipient(r) for r in rcpts))
        saved: list[list[str]] = []

        async def progress(state: EntryState) -> None:
            saved.append([r.state for r in state.recipients])

        final = await attempt(
            envelope,
            BytesSource(BODY),
            EntryState.initial(envelope),
            resolver=self.resolver,
            send=self.send,
            now=NOW,
            progress=progress,
        )
        # What a crash after each domain would find saved: that domain (and those before) done.
        self.assertEqual(
            saved,
            [[DELIVERED, PENDING, PENDING], [DELIVERED, DELIVERED, PENDING]],
        )
        self.assertEqual([r.state for r in final.recipients], [DELIVERED] * 3)
