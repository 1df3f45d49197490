"""The outbound ESMTP client: against our own SMTP server on loopback, and on fake transports."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from twisted_mail_stack.relay.client import (
    Outgoing,
    SessionError,
    SMTPClient,
    Timeouts,
    deliver,
)
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.tls import load_or_create_tls
from twisted_mail_stack.values import Envelope, EnvelopeRecipient

from .smtpserver import RemoteMX

BODY = b"From: a@example.org\r\nSubject: hi\r\n\r\n.leading dot\r\n..two\r\nend\r\n"


def outgoing(rcpts: list[str], body: bytes = BODY, **kw: Any) -> Outgoing:
    envelope = Envelope("a@example.org", tuple(EnvelopeRecipient(r) for r in rcpts), **kw)
    return Outgoing(envelope, BytesSource(body))


class LoopbackTests(unittest.TestCase):
    timeout = 30

    def start(self, tls: Any = None) -> RemoteMX:
        mx = RemoteMX(reactor, tls)
        self.addCleanup(mx.stop)
        return mx

    def send(self, mx: RemoteMX, messages: list[Outgoing], **kw: Any) -> Deferred[Any]:
        return deliver(
            reactor, "127.0.0.1", mx.address.port, messages, helo_name="relay.example.org", **kw
        )

    async def test_per_recipient_results(self) -> None:
        mx = self.start()
        rcpts = ["bob@remote.test", "nobody@remote.test", "temp@remote.test", "carol@remote.test"]
        [results] = await self.send(mx, [outgoing(rcpts)])
        self.assertEqual([r.recipient.address for r in results], rcpts)
        self.assertEqual([r.delivered for r in results], [True, False, False, True])
        self.assertEqual([r.permanent for r in results], [False, True, False, False])
        assert results[1].reply is not None and results[2].reply is not None
        self.assertEqual((results[1].reply.code, results[1].reply.enhanced), (550, "5.1.1"))
        self.assertEqual(results[2].reply.text, "451 4.2.0 mailbox busy, try later")
        for user in ("bob@remote.test", "carol@remote.test"):
            [stored] = mx.inbox(user)
            self.assertTrue(stored.endswith(BODY), stored)  # dots and lines as sent

    async def test_several_messages_one_session(self) -> None:
        mx = self.start()
        rejected = BODY.replace(b"Subject: hi", b"Subject: reject me")
        results = await self.send(
            mx,
            [
                outgoing(["bob@remote.test"]),
                outgoing(["bob@remote.test", "carol@remote.test"], rejected),
                outgoing(["nobody@remote.test"]),
                outgoing(["carol@remote.test"], b"no final newline"),
            ],
        )
        self.assertEqual(
            [[(r.delivered, r.permanent) for r in m] for m in results],
            [[(True, False)], [(False, True), (False, True)], [(False, True)], [(True, False)]],
        )
        assert results[1][0].reply is not None
        self.assertEqual(results[1][0].reply.enhanced, "5.7.1")
        self.assertEqual(len(mx.inbox("bob@remote.test")), 1)
        self.assertTrue(mx.inbox("carol@remote.test")[0].endswith(b"\r\nno final newline\r\n"))
        self.assertEqual(mx.connections, 1)  # one session for all four
        self.assertTrue(await mx.sessions_closed())  # and it ended (QUIT, 221, close)

    async def test_smtputf8_and_8bit(self) -> None:
        mx = self.start()
        body = "Subject: grüße\r\n\r\nnaïve\r\n".encode()
        message = Outgoing(
            Envelope("ä@example.org", (EnvelopeRecipient("bob@remote.test"),), "8BITMIME", True),
            BytesSource(body),
        )
        [[result]] = await self.send(mx, [message])
        self.assertTrue(result.delivered)
        self.assertTrue(mx.inbox("bob@remote.test")[0].endswith(body))

    async def test_connection_refused(self) -> None:
        mx = self.start()
        port = mx.address.port
        await mx.stop()
        with self.assertRaises(SessionError) as e:
            await deliver(reactor, "127.0.0.1", port, [], helo_name="h")
        self.assertEqual(e.exception.stage, "connect")

    async def test_tls_required_but_not_offered(self) -> None:
        mx = self.start()
        with self.assertRaises(SessionError) as e:
            await self.send(
                mx,
                [outgoing(["bob@remote.test"])],
                tls_options=CertificateOptions(),
                tls_required=True,
            )
        self.assertEqual(e.exception.stage, "STARTTLS")
        self.assertEqual(mx.inbox("bob@remote.test"), [])

    async def test_starttls(self) -> None:
        data_dir = self.mktemp()
        os.makedirs(data_dir)
        settings = load_or_create_tls(None, None, data_dir, "mx.remote.test")
        mx = self.start(settings.server_options())
        [[result]] = await self.send(
            mx,
            [outgoing(["bob@remote.test"])],
            tls_options=CertificateOptions(),
            tls_required=True,
        )
        self.assertTrue(result.delivered)
        self.assertIn(b"with ESMTPS", mx.inbox("bob@remote.test")[0])


class FakeTLSTransport(StringTransport):
    def __init__(self) -> None:
        super().__init__()
        self.tls: Any = None

    def startTLS(self, options: Any) -> None:
        self.tls = options

    def abortConnection(self) -> None:
        self.loseConnection()


class FakeTransportTests(unittest.TestCase):
    def connect(self, **kw: Any) -> tuple[SMTPClient, FakeTLSTransport, Clock]:
        clock = Clock()
        client = SMTPClient("relay.example.org", clock, **kw)
        transport = FakeTLSTransport()
        client.makeConnection(transport)
        return client, transport, clock

    def exchange(self, client: SMTPClient, transport: StringTransport, reply: bytes) -> bytes:
        transport.clear()
        client.dataReceived(reply)
        return transport.value()

    def test_helo_fallback_and_lockstep(self) -> None:
        client, t, _ = self.connect()
        started = Deferred.fromCoroutine(client.start())
        self.assertEqual(self.exchange(client, t, b"220 old\r\n"), b"EHLO relay.example.org\r\n")
        self.assertEqual(self.exchange(client, t, b"502 what\r\n"), b"HELO relay.example.org\r\n")
        self.assertEqual(self.exchange(client, t, b"250 hi\r\n"), b"")
        self.assertIsNone(self.successResultOf(started))
        sent = Deferred.fromCoroutine(client.send(outgoing(["b@x", "c@x"], b"x\r\n")))
        self.assertEqual(t.value(), b"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(self.exchange(client, t, b"250 ok\r\n"), b"RCPT TO:<b@x>\r\n")
        self.assertEqual(self.exchange(client, t, b"550 no\r\n"), b"RCPT TO:<c@x>\r\n")
        self.assertEqual(self.exchange(client, t, b"250 ok\r\n"), b"DATA\r\n")
        t.clear()
        client.dataReceived(b"354 go\r\n")
        while t.producer is not None:  # StringTransport does not pull a producer itself
            t.producer.resumeProducing()
        self.assertEqual(t.value(), b"x\r\n.\r\n")
        self.assertEqual(self.exchange(client, t, b"250 queued\r\n"), b"")
        results = self.successResultOf(sent)
        self.assertEqual([r.delivered for r in results], [False, True])

    def test_pipelined_group_and_no_recipient(self) -> None:
        client, t, _ = self.connect()
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"220 hi\r\n")
        client.dataReceived(b"250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n")
        self.successResultOf(started)
        t.clear()
        sent = Deferred.fromCoroutine(client.send(outgoing(["b@x", "c@x"], b"x\r\n")))
        self.assertEqual(
            t.value(),
            b"MAIL FROM:<a@example.org> SIZE=3\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n",
        )
        # Both refused, DATA refused: RSET, and every recipient has its own reply.
        out = self.exchange(
            client, t, b"250 ok\r\n550 5.1.1 no b\r\n450 4.2.1 later c\r\n554 no\r\n"
        )
        self.assertEqual(out, b"RSET\r\n")
        client.dataReceived(b"250 reset\r\n")
        results = self.successResultOf(sent)
        self.assertEqual([r.permanent for r in results], [True, False])
        # Too large for SIZE 100: refused before anything is sent.
        t.clear()
        sent = Deferred.fromCoroutine(client.send(outgoing(["b@x"], b"y" * 101)))
        [result] = self.successResultOf(sent)
        self.assertEqual(t.value(), b"")
        assert result.error is not None
        self.assertEqual(result.error.enhanced, "5.3.4")
        self.assertTrue(result.permanent)

    def test_greeting_timeout(self) -> None:
        client, t, clock = self.connect(timeouts=Timeouts(greeting=60))
        started = Deferred.fromCoroutine(client.start())
        clock.advance(59)
        self.assertNoResult(started)
        clock.advance(1)
        self.assertEqual(self.failureResultOf(started, SessionError).value.stage, "greeting")
        self.assertTrue(t.disconnecting)

    def test_421_and_garbage_end_the_session(self) -> None:
        client, t, _ = self.connect()
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"421 4.3.2 shutting down\r\n")
        self.failureResultOf(started, SessionError)
        client, t, _ = self.connect()
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"HTTP/1.1 400 Bad Request\r\n")
        self.failureResultOf(started, SessionError)
        self.assertTrue(t.disconnecting)

    def test_starttls_then_ehlo_again_and_injection(self) -> None:
        client, t, _ = self.connect(tls_options="opts")
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"220 hi\r\n")
        out = self.exchange(client, t, b"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        self.assertEqual(out, b"STARTTLS\r\n")
        self.assertEqual(self.exchange(client, t, b"220 go\r\n"), b"EHLO relay.example.org\r\n")
        self.assertEqual(t.tls, "opts")
        client.dataReceived(b"250-mx\r\n250 8BITMIME\r\n")
        self.successResultOf(started)
        self.assertTrue(client.tls)
        self.assertNotIn("PIPELINING", client.extensions)  # learned again after TLS
        # Plaintext sent after the 220, before the handshake, is an attack: give up.
        client, t, _ = self.connect(tls_options="opts")
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"220 hi\r\n")
        client.dataReceived(b"250-mx\r\n250 STARTTLS\r\n")
        client.dataReceived(b"220 go\r\n250 injected\r\n")
        self.failureResultOf(started, SessionError)
        self.assertIsNone(t.tls)

    def test_connection_lost_while_sending_the_body(self) -> None:
        client, t, _ = self.connect()
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"220 hi\r\n")
        client.dataReceived(b"250 mx\r\n")
        self.successResultOf(started)
        sent = Deferred.fromCoroutine(client.send(outgoing(["b@x"], b"x" * 200_000)))
        client.dataReceived(b"250 ok\r\n250 ok\r\n354 go\r\n")
        self.assertIsNotNone(t.producer)
        t.producer.stopProducing()  # what a TCP transport does when the connection drops
        client.connectionLost()
        self.assertEqual(self.failureResultOf(sent, SessionError).value.stage, "DATA")

    def test_auth_plain_after_starttls(self) -> None:
        client, t, _ = self.connect(tls_options="opts", auth=("me@example.org", "pw"))
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"220 hi\r\n")
        self.assertEqual(
            self.exchange(client, t, b"250-relay\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n"),
            b"STARTTLS\r\n",  # credentials never go out before TLS
        )
        self.assertEqual(self.exchange(client, t, b"220 go\r\n"), b"EHLO relay.example.org\r\n")
        out = self.exchange(client, t, b"250-relay\r\n250 AUTH LOGIN PLAIN\r\n")
        self.assertEqual(out, b"AUTH PLAIN AG1lQGV4YW1wbGUub3JnAHB3\r\n")  # \0me@example.org\0pw
        self.assertNoResult(started)
        client.dataReceived(b"235 2.7.0 ok\r\n")
        self.successResultOf(started)

    def test_auth_refused_or_impossible(self) -> None:
        client, t, _ = self.connect(tls_options="opts", auth=("me", "pw"))
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"220 hi\r\n250-relay\r\n250 AUTH PLAIN\r\n")
        failure = self.failureResultOf(started, SessionError)  # no STARTTLS offered
        self.assertEqual(failure.value.stage, "STARTTLS")
        self.assertNotIn(b"AUTH", t.value())
        client, t, _ = self.connect(tls_options="opts", auth=("me", "pw"))
        started = Deferred.fromCoroutine(client.start())
        client.dataReceived(b"220 hi\r\n250-relay\r\n250 STARTTLS\r\n")
        client.dataReceived(b"220 go\r\n")
        client.dataReceived(b"250-relay\r\n250 AUTH PLAIN\r\n")
        client.dataReceived(b"535 5.7.8 bad credentials\r\n")
        failure = self.failureResultOf(started, SessionError)
        self.assertEqual(failure.value.stage, "AUTH")
        assert failure.value.reply is not None
        self.assertEqual(failure.value.reply.code, 535)
