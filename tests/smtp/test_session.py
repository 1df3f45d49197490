"""The SMTP session on a fake transport: commands, states, replies, delivery."""

from __future__ import annotations

import base64
import os

from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from twisted_mail_stack.config import SenderRule, SMTPConfig
from twisted_mail_stack.smtp import server
from twisted_mail_stack.smtp._data import BareLinePolicy

from .helpers import Harness, body_of

MESSAGE = b"From: a@remote.example\r\nSubject: hi\r\n\r\nHello \xc3\xa9\r\n..dotted\r\n"


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class BasicsTests(unittest.TestCase):
    def test_greeting_and_ehlo(self) -> None:
        c = Harness().connect()
        self.assertEqual(c.read(), b"220 mx.example.org ESMTP twisted-mail-stack ready\r\n")
        lines = c.cmd("EHLO client.example").decode().split("\r\n")
        self.assertEqual(lines[0], "250-mx.example.org greets client.example")
        for keyword in (
            "PIPELINING",
            "SIZE 26214400",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
            "DSN",
            "AUTH PLAIN LOGIN",
        ):
            self.assertIn(f"250-{keyword}", lines)
        self.assertNotIn("250-STARTTLS", lines)  # no TLS configured

    def test_helo_has_no_extensions_and_refuses_parameters(self) -> None:
        c = Harness().connect()
        c.read()
        self.assertEqual(
            c.cmd("HELO client.example"), b"250 mx.example.org greets client.example\r\n"
        )
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example> SIZE=1")[:9], b"555 5.5.4")

    def test_simple_commands(self) -> None:
        c = Harness().connect()
        c.read()
        self.assertEqual(c.cmd("NOOP"), b"250 2.0.0 OK\r\n")
        self.assertEqual(c.cmd("VRFY alice")[:9], b"252 2.5.0")
        self.assertEqual(c.cmd("HELP")[:4], b"214-")
        self.assertEqual(c.cmd("EXPN list")[:9], b"502 5.5.1")
        self.assertEqual(c.cmd("FOO")[:9], b"500 5.5.2")
        self.assertEqual(c.cmd("RSET"), b"250 2.0.0 OK\r\n")
        self.assertEqual(c.cmd("EHLO")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("QUIT")[:9], b"221 2.0.0")
        self.assertTrue(c.closed)

    def test_sequence_errors(self) -> None:
        c = Harness().connect()
        c.read()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example>")[:9], b"503 5.5.1")
        c.cmd("EHLO c.example")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>")[:9], b"503 5.5.1")
        self.assertEqual(c.cmd("DATA")[:9], b"503 5.5.1")
        c.cmd("MAIL FROM:<a@remote.example>")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example>")[:9], b"503 5.5.1")
        self.assertEqual(c.cmd("DATA")[:9], b"554 5.5.1")
        self.assertEqual(c.cmd("MAIL FROM:a@remote.example")[:3], b"503")

    def test_syntax_errors(self) -> None:
        c = Harness().connect()
        c.hello()
        self.assertEqual(c.cmd("MAIL FROM:a@remote.example")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("MAIL TO:<a@remote.example>")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example> FOO=1")[:9], b"555 5.5.4")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example> SIZE=x")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example> BODY=BINARYMIME")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example> RET=ALL")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example> ENVID=a+z")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("MAIL FROM:<a..b@remote.example>")[:9], b"501 5.1.3")
        self.assertEqual(c.cmd("MAIL FROM:<>")[:3], b"250")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org> NOTIFY=SOMETIMES")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org> NOTIFY=NEVER,DELAY")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org> ORCPT=rfc822")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("RCPT TO:<>")[:9], b"501 5.1.3")
        self.assertEqual(c.cmd("DATA x")[:9], b"501 5.5.4")

    def test_line_too_long(self) -> None:
        c = Harness().connect()
        c.hello()
        self.assertEqual(c.cmd("NOOP " + "x" * 3000), b"500 5.5.2 line too long\r\n")
        # The rest of the long line, sent later, is skipped; the session goes on.
        self.assertEqual(c.send("y" * 3000), b"500 5.5.2 line too long\r\n")
        self.assertEqual(c.send("z" * 10 + "\r\nNOOP\r\n"), b"250 2.0.0 OK\r\n")

    def test_too_many_errors(self) -> None:
        c = Harness(config=SMTPConfig(max_errors=3)).connect()
        c.read()
        c.cmd("FOO")
        c.cmd("BAR")
        self.assertEqual(
            c.cmd("BAZ"),
            b"500 5.5.2 command unrecognized\r\n421 4.7.0 mx.example.org too many errors\r\n",
        )
        self.assertTrue(c.closed)
        self.assertEqual(c.cmd("NOOP"), b"")

    def test_timeout(self) -> None:
        h = Harness(config=SMTPConfig(command_timeout=60))
        c = h.connect()
        c.read()
        h.reactor.advance(59)
        c.cmd("NOOP")
        h.reactor.advance(59)
        self.assertFalse(c.closed)
        h.reactor.advance(2)
        self.assertEqual(c.read(), b"421 4.4.2 mx.example.org timeout exceeded\r\n")
        self.assertTrue(c.closed)

    def test_connection_limits(self) -> None:
        h = Harness(config=SMTPConfig(max_connections=3, max_connections_per_ip=2))
        a, b = h.connect("192.0.2.1"), h.connect("192.0.2.1")
        third = h.connect("192.0.2.1")
        self.assertEqual(third.read()[:9], b"421 4.7.0")
        self.assertTrue(third.closed)
        h.connect("192.0.2.2").read()
        fourth = h.connect("192.0.2.3")
        self.assertEqual(fourth.read()[:9], b"421 4.7.0")
        a.session.connectionLost(None)
        self.assertEqual(h.connect("192.0.2.3").read()[:3], b"220")
        del b

    def test_shutdown_says_421(self) -> None:
        h = Harness()
        c = h.connect()
        c.read()
        h.factory.stopFactory()
        self.assertEqual(c.read()[:9], b"421 4.3.2")
        self.assertTrue(c.closed)


class DeliveryTests(unittest.TestCase):
    def test_local_delivery_byte_identical_with_trace_headers(self) -> None:
        h = Harness()
        c = h.connect()
        c.hello()
        reply = c.mail("a@remote.example", ["alice@example.org", "Bob@EXAMPLE.org."[:-1]], MESSAGE)
        self.assertTrue(reply.startswith(b"250 2.0.0 OK queued as "), reply)
        for user in ("alice@example.org", "bob@example.org"):  # bob's account was created
            (stored,) = h.inbox(user)
            self.assertTrue(
                stored.startswith(
                    b"Return-Path: <a@remote.example>\r\nReceived: from client.example ([127.0.0.1])\r\n"
                )
            )
            self.assertIn(b"with ESMTP id ", stored)
            self.assertNotIn(b"for <", stored)  # two recipients: none named
            self.assertEqual(body_of(stored), MESSAGE.replace(b"..dotted", b".dotted"))
        self.assertEqual(h.queue.entries, {})
        self.assertEqual(os.listdir(h.spool_dir), [])

    def test_single_recipient_named_in_received(self) -> None:
        h = Harness()
        c = h.connect()
        c.hello()
        c.mail("", ["alice@example.org"], b"x\r\n")
        (stored,) = h.inbox("alice@example.org")
        self.assertTrue(stored.startswith(b"Return-Path: <>\r\n"))
        self.assertIn(b"\tfor <alice@example.org>; ", stored)

    def test_postmaster_without_domain(self) -> None:
        h = Harness()
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        self.assertEqual(c.cmd("RCPT TO:<Postmaster>")[:3], b"250")

    def test_unknown_local_user(self) -> None:
        c = Harness().connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        self.assertEqual(
            c.cmd("RCPT TO:<nobody@example.org>"),
            b"550 5.1.1 <nobody@example.org>: no such user here\r\n",
        )

    def test_alias_to_local_and_remote(self) -> None:
        h = Harness(aliases={"team@example.org": ["alice@example.org", "Carol@Far.example"]})
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example> RET=HDRS ENVID=e+2B1 BODY=8BITMIME")
        self.assertEqual(c.cmd("RCPT TO:<team@example.org> NOTIFY=SUCCESS,FAILURE")[:3], b"250")
        self.assertEqual(c.cmd("DATA")[:3], b"354")
        reply = c.send(MESSAGE + b".\r\n")
        queue_id = reply.split()[-1].decode()
        self.assertEqual(len(h.inbox("alice@example.org")), 1)
        envelope, data = h.queue.entries[queue_id]
        self.assertEqual(envelope.sender, "a@remote.example")
        (rcpt,) = envelope.recipients
        self.assertEqual(rcpt.address, "Carol@far.example")
        self.assertEqual(rcpt.notify, frozenset({"SUCCESS", "FAILURE"}))
        self.assertEqual(rcpt.orcpt, "rfc822;team@example.org")
        self.assertEqual((envelope.ret, envelope.envid, envelope.body), ("HDRS", "e+1", "8BITMIME"))
        self.assertTrue(data.startswith(b"Received: "))  # no Return-Path on the way out
        self.assertEqual(body_of(data), MESSAGE.replace(b"..dotted", b".dotted"))

    def test_one_log_line_per_accepted_message(self) -> None:
        events: list[dict[str, object]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        c = Harness().connect()
        c.hello()
        reply = c.mail("a{b}@remote.example", ["alice@example.org"], MESSAGE)
        queue_id = reply.split()[-1].decode()
        lines = [formatEvent(e) for e in events if e.get("queue_id") == queue_id]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(
            lines[0],
            rf"^smtp accepted id={queue_id} from=<a{{b}}@remote.example> "
            rf"to=<alice@example.org> size=\d+ client=127.0.0.1 helo=\S+ tls=no auth=-$",
        )

    def test_store_failure_answers_451_and_leaves_nothing(self) -> None:
        h = Harness()

        def broken(*args: object) -> object:
            raise OSError("disk on fire")

        h.store.deliver = broken  # type: ignore[method-assign]
        c = h.connect()
        c.hello()
        self.assertEqual(
            c.mail("a@remote.example", ["alice@example.org"], b"x\r\n")[:9], b"451 4.3.0"
        )
        self.flushLoggedErrors(OSError)
        self.assertEqual(os.listdir(h.spool_dir), [])
        self.assertEqual(c.cmd("NOOP")[:3], b"250")  # the session goes on

    def test_spool_write_failure_answers_451(self) -> None:
        h = Harness()
        h.factory.spool_in_memory = 0  # every message goes to a spool file
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        c.cmd("DATA")

        class Full:
            def write(self, data: bytes) -> None:
                raise OSError(28, "No space left on device")

            def close(self) -> None:
                pass

        c.session._txn.spool._file = Full()  # type: ignore[union-attr]
        self.assertEqual(c.send(b"x\r\n.\r\n")[:9], b"451 4.3.0")
        self.assertEqual(h.inbox("alice@example.org"), [])
        self.assertEqual(os.listdir(h.spool_dir), [])

    def test_unexpected_error_in_a_command_answers_451(self) -> None:
        h = Harness()
        c = h.connect()
        c.hello()

        def broken(**kwargs: object) -> bytes:
            raise OSError("clock on fire")

        self.patch(server, "received_header", broken)
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(c.cmd("DATA")[:9], b"451 4.3.0")
        self.flushLoggedErrors(OSError)
        self.assertEqual(c.cmd("NOOP")[:3], b"250")

    def test_small_message_needs_no_spool_file(self) -> None:
        h = Harness()
        h.factory.spool_dir = "/nonexistent/spool"
        c = h.connect()
        c.hello()
        reply = c.mail("a@remote.example", ["alice@example.org"], MESSAGE)
        self.assertEqual(reply[:9], b"250 2.0.0")
        (stored,) = h.inbox("alice@example.org")
        self.assertEqual(body_of(stored), MESSAGE.replace(b"..dotted", b".dotted"))

    def test_large_message_goes_to_a_spool_file(self) -> None:
        h = Harness()
        h.factory.spool_in_memory = 100
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        c.cmd("DATA")
        c.send(MESSAGE * 10)
        self.assertEqual(len(os.listdir(h.spool_dir)), 1, "over 100 bytes: in a spool file")
        self.assertEqual(c.send(b".\r\n")[:9], b"250 2.0.0")
        (stored,) = h.inbox("alice@example.org")
        self.assertEqual(body_of(stored), (MESSAGE * 10).replace(b"..dotted", b".dotted"))
        h.reactor.advance(0)  # the spool file is removed off the reactor thread
        self.assertEqual(os.listdir(h.spool_dir), [])

    def test_spool_file_that_cannot_be_made_answers_451(self) -> None:
        h = Harness()
        h.factory.spool_in_memory = 100
        h.factory.spool_dir = "/nonexistent/spool"
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(c.cmd("DATA")[:3], b"354")
        self.assertEqual(c.send(MESSAGE * 10 + b".\r\n")[:9], b"451 4.3.0")
        self.assertEqual(h.inbox("alice@example.org"), [])
        self.assertEqual(c.cmd("NOOP")[:3], b"250")

    def test_queue_failure_takes_back_local_copies(self) -> None:
        h = Harness(aliases={"team@example.org": ["alice@example.org", "c@far.example"]})
        h.queue.fail = True
        c = h.connect()
        c.hello()
        self.assertEqual(
            c.mail("a@remote.example", ["team@example.org"], b"x\r\n")[:9], b"451 4.3.0"
        )
        self.flushLoggedErrors(OSError)
        self.assertEqual(h.inbox("alice@example.org"), [])

    def test_size_limits(self) -> None:
        h = Harness(config=SMTPConfig(max_message_size=2000))
        c = h.connect()
        c.hello()
        self.assertIn(b"250-SIZE 2000\r\n", c.cmd("EHLO c.example"))
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example> SIZE=2001")[:9], b"552 5.3.4")
        reply = c.mail("a@remote.example", ["alice@example.org"], (b"x" * 700 + b"\r\n") * 3)
        self.assertEqual(reply[:9], b"552 5.3.4")
        self.assertEqual(h.inbox("alice@example.org"), [])

    def test_recipient_limit(self) -> None:
        c = Harness(config=SMTPConfig(max_recipients=2)).connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        c.cmd("RCPT TO:<bob@example.org>")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>")[:9], b"452 4.5.3")

    def test_long_body_line_refused_at_end(self) -> None:
        h = Harness()
        c = h.connect()
        c.hello()
        self.assertEqual(
            c.mail("a@remote.example", ["alice@example.org"], b"x" * 1200 + b"\r\n")[:9],
            b"500 5.5.2",
        )
        self.assertEqual(h.inbox("alice@example.org"), [])

    def test_pipelined_transactions(self) -> None:
        h = Harness()
        c = h.connect()
        c.read()
        out = c.send(
            b"EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\n"
            b"RCPT TO:<nobody@example.org>\r\nDATA\r\nm1\r\n.\r\nMAIL FROM:<b@remote.example>\r\n"
            b"RCPT TO:<alice@example.org>\r\nDATA\r\nm2\r\n.\r\nQUIT\r\n"
        )
        codes = [line[:3] for line in out.split(b"\r\n") if line and line[3:4] == b" "]
        self.assertEqual(
            codes,
            [
                b"250",
                b"250",
                b"250",
                b"550",
                b"354",
                b"250",
                b"250",
                b"250",
                b"354",
                b"250",
                b"221",
            ],
        )
        self.assertEqual([body_of(m) for m in h.inbox("alice@example.org")], [b"m1\r\n", b"m2\r\n"])

    def test_smtputf8(self) -> None:
        h = Harness(aliases={"jösé@example.org": ["alice@example.org"]})
        c = h.connect()
        c.hello()
        self.assertEqual(c.cmd("MAIL FROM:<ñ@remote.example>")[:9], b"553 5.6.7")
        self.assertEqual(c.cmd("MAIL FROM:<ñ@bücher.example> SMTPUTF8 BODY=8BITMIME")[:3], b"250")
        self.assertEqual(c.cmd("RCPT TO:<jösé@example.org>")[:3], b"250")
        c.cmd("DATA")
        self.assertEqual(c.send("Subject: ñ\r\n\r\nü\r\n.\r\n".encode())[:3], b"250")
        (stored,) = h.inbox("alice@example.org")
        self.assertTrue(stored.startswith("Return-Path: <ñ@xn--bcher-kva.example>\r\n".encode()))
        self.assertIn(b"with UTF8SMTP id", stored)


class BdatTests(unittest.TestCase):
    def test_chunks(self) -> None:
        h = Harness()
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(c.send(b"BDAT 5\r\nab\r\nc"), b"250 2.0.0 5 octets received\r\n")
        reply = c.send(b"BDAT 7 LAST\r\n.d\r\ne\r\nNOOP\r\n")
        self.assertTrue(reply.startswith(b"250 2.0.0 OK queued as"), reply)
        self.assertTrue(reply.endswith(b"250 2.0.0 OK\r\n"))
        (stored,) = h.inbox("alice@example.org")
        self.assertEqual(body_of(stored), b"ab\r\nc.d\r\ne\r\n")  # no dot-unstuffing in BDAT

    def test_bdat_without_recipients_reads_the_chunk(self) -> None:
        c = Harness().connect()
        c.hello()
        self.assertEqual(c.send(b"BDAT 6 LAST\r\nQUIT\r\n")[:9], b"503 5.5.1")
        self.assertFalse(c.closed)  # "QUIT\r\n" was chunk data, not a command
        c.cmd("MAIL FROM:<a@remote.example>")
        self.assertEqual(c.send(b"BDAT 4\r\nNOOP")[:9], b"554 5.5.1")
        self.assertEqual(c.send(b"BDAT 0 LAST\r\n")[:9], b"554 5.5.1")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example>")[:3], b"250")

    def test_data_and_bdat_do_not_mix(self) -> None:
        c = Harness().connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        c.send(b"BDAT 3\r\nabc")
        self.assertEqual(c.cmd("DATA")[:9], b"503 5.5.1")
        self.assertEqual(c.send(b"BDAT 0 LAST\r\n")[:3], b"250")

    def test_bdat_empty_last_and_bad_syntax(self) -> None:
        h = Harness()
        c = h.connect()
        c.hello()
        self.assertEqual(c.cmd("BDAT x")[:9], b"501 5.5.4")
        self.assertEqual(c.cmd("BDAT 1 NOW")[:9], b"501 5.5.4")
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(c.send(b"BDAT 0 LAST\r\n")[:3], b"250")
        self.assertEqual(len(h.inbox("alice@example.org")), 1)

    def test_bdat_size_limit(self) -> None:
        h = Harness(config=SMTPConfig(max_message_size=1024))
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        self.assertEqual(c.send(b"BDAT 2000\r\n" + b"x" * 2000)[:9], b"552 5.3.4")
        self.assertEqual(c.send(b"BDAT 1 LAST\r\nx")[:9], b"552 5.3.4")
        self.assertEqual(h.inbox("alice@example.org"), [])


class SmugglingTests(unittest.TestCase):
    """A hidden second message must never be delivered (SMTP smuggling, 2023)."""

    def _smuggle(
        self, trick: bytes, policy: BareLinePolicy = BareLinePolicy.REJECT
    ) -> tuple[Harness, bytes]:
        h = Harness(config=SMTPConfig(bare_line_ends=policy))
        c = h.connect()
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<alice@example.org>")
        c.cmd("DATA")
        out = c.send(
            b"Subject: one\r\n\r\nfirst" + trick + b"MAIL FROM:<admin@example.org>\r\n"
            b"RCPT TO:<bob@example.org>\r\nDATA\r\nSubject: forged\r\n\r\nevil\r\n.\r\n"
        )
        return h, out

    def test_each_trick_is_refused(self) -> None:
        for trick in (b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r\n.\r", b"\n.\r"):
            h, out = self._smuggle(trick)
            self.assertEqual(out, b"550 5.6.0 message contains a bare CR or LF\r\n", trick)
            self.assertEqual(h.inbox("alice@example.org"), [])
            self.assertNotIn("bob@example.org", h.store._accounts)

    def test_normalised_tricks_stay_one_message(self) -> None:
        for trick in (b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n"):
            h, out = self._smuggle(trick, BareLinePolicy.NORMALISE)
            self.assertEqual(out[:3], b"250", trick)  # one reply: one message
            (stored,) = h.inbox("alice@example.org")
            self.assertIn(b"Subject: forged", stored)
            self.assertNotIn("bob@example.org", h.store._accounts)


class RelayTests(unittest.TestCase):
    TRICKS = (
        "victim@remote.example",
        "victim@REMOTE.EXAMPLE",
        "victim%remote.example@example.org",
        '"victim@remote.example"@example.org',
        "@example.org:victim@remote.example",
        "@example.org,@example.net:victim@remote.example",
        "victim@remote.example@example.org",
        "victim@remote.example.",
        "victim@example.org.remote.example",
        "victim@[192.0.2.1]",
        "victim@[127.0.0.1]",
        "victim@[IPv6:::1]",
        "victim!remote.example@example.org",
        "remote.example!victim@example.org",
        "victim@remote.example%example.org",
        "victim@remote.example (comment)",
        "victim@xn--remote-example",
        "victim@exämple.org",
    )

    def test_no_trick_relays_for_an_anonymous_client(self) -> None:
        h = Harness()
        c = h.connect("198.51.100.7")
        c.hello()
        c.cmd("MAIL FROM:<a@remote.example> SMTPUTF8")
        for trick in self.TRICKS:
            reply = c.cmd(f"RCPT TO:<{trick}>")
            self.assertEqual(reply[:1], b"5", (trick, reply))
        self.assertEqual(c.cmd("DATA")[:9], b"554 5.5.1")
        self.assertEqual(h.queue.entries, {})

    def test_authenticated_and_trusted_clients_relay(self) -> None:
        h = Harness(config=SMTPConfig(trusted_networks=("192.0.2.0/24",)))
        c = h.connect("192.0.2.9")
        c.hello()
        c.mail("a@remote.example", ["victim@remote.example"], b"x\r\n")
        (entry,) = h.queue.entries.values()
        self.assertEqual(entry[0].recipients[0].address, "victim@remote.example")
        c = h.connect("127.0.0.1")
        c.hello()
        self.assertEqual(
            c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret"))[:9], b"235 2.7.0"
        )
        self.assertEqual(c.mail("a@remote.example", ["v@far.example"], b"x\r\n")[:3], b"250")
        self.assertEqual(len(h.queue.entries), 2)


class AuthTests(unittest.TestCase):
    def test_submission_needs_auth_and_owned_sender(self) -> None:
        h = Harness(submission=True, aliases={"sales@example.org": ["alice@example.org"]})
        c = h.connect()
        c.hello()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[:9], b"530 5.7.0")
        self.assertEqual(
            c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret"))[:9], b"235 2.7.0"
        )
        self.assertNotIn(b"AUTH", c.cmd("EHLO c.example"))
        self.assertEqual(c.cmd("AUTH PLAIN x")[:9], b"503 5.5.1")
        self.assertEqual(c.cmd("MAIL FROM:<bob@example.org>")[:9], b"553 5.7.1")
        self.assertEqual(c.cmd("MAIL FROM:<>")[:9], b"553 5.7.1")
        self.assertEqual(c.cmd("MAIL FROM:<Sales@Example.org>")[:3], b"250")
        c.cmd("RSET")
        reply = c.mail("ALICE@example.org", ["x@far.example", "bob@example.org"], b"hi\r\n")
        self.assertEqual(reply[:3], b"250")
        (stored,) = h.inbox("bob@example.org")
        self.assertIn(b"with ESMTPA id", stored)
        self.assertIn(b"(authenticated as alice@example.org)", stored)

    def test_any_sender_when_configured(self) -> None:
        h = Harness(submission=True, config=SMTPConfig(submission_senders=SenderRule.ANY))
        c = h.connect()
        c.hello()
        c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret"))
        self.assertEqual(c.cmd("MAIL FROM:<ceo@far.example>")[:3], b"250")

    def test_login_mechanism_and_cancel(self) -> None:
        c = Harness().connect()
        c.hello()
        self.assertEqual(c.cmd("AUTH LOGIN"), b"334 VXNlcm5hbWU6\r\n")
        self.assertEqual(c.cmd("*")[:9], b"501 5.0.0")
        self.assertEqual(c.cmd("AUTH LOGIN"), b"334 VXNlcm5hbWU6\r\n")
        self.assertEqual(
            c.cmd(base64.b64encode(b"alice@example.org").decode()), b"334 UGFzc3dvcmQ6\r\n"
        )
        self.assertEqual(c.cmd(base64.b64encode(b"secret").decode())[:9], b"235 2.7.0")

    def test_bad_auth_input(self) -> None:
        c = Harness().connect()
        c.hello()
        self.assertEqual(c.cmd("AUTH CRAM-MD5")[:9], b"504 5.5.4")
        self.assertEqual(c.cmd("AUTH PLAIN !!!")[:9], b"501 5.5.2")
        self.assertEqual(c.cmd("AUTH PLAIN")[:4], b"334 ")
        self.assertEqual(c.cmd("not base64")[:9], b"501 5.5.2")
        self.assertEqual(c.cmd("AUTH")[:9], b"501 5.5.4")

    def test_failures_delayed_and_limited(self) -> None:
        h = Harness(config=SMTPConfig(auth_failure_delay=2, max_auth_failures=2))
        c = h.connect()
        c.hello()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", "wrong")), b"")
        h.reactor.advance(1.9)
        self.assertEqual(c.read(), b"")
        self.assertEqual(c.cmd("NOOP"), b"")  # input waits for the answer
        h.reactor.advance(0.2)
        self.assertEqual(
            c.read(), b"535 5.7.8 authentication credentials invalid\r\n250 2.0.0 OK\r\n"
        )
        c.cmd("AUTH PLAIN " + plain("alice@example.org", "wrong"))
        h.reactor.advance(2)
        self.assertEqual(
            c.read()[-47:], b"421 4.7.0 mx.example.org too many authentication failures\r\n"[-47:]
        )
        self.assertTrue(c.closed)

    def test_failures_limited_per_client_address(self) -> None:
        h = Harness(
            config=SMTPConfig(
                auth_failure_delay=0, max_auth_failures_per_ip=2, command_timeout=5000
            )
        )
        for _ in range(2):
            c = h.connect()
            c.hello()
            c.cmd("AUTH PLAIN " + plain("alice@example.org", "wrong"))
            h.reactor.advance(0)
        c = h.connect()
        c.hello()
        self.assertEqual(
            c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret"))[:9], b"454 4.7.0"
        )
        h.reactor.advance(901)
        self.assertEqual(
            c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret"))[:9], b"235 2.7.0"
        )

    def test_no_plaintext_auth_in_the_clear_from_afar(self) -> None:
        c = Harness().connect("198.51.100.7")
        c.read()
        self.assertNotIn(b"AUTH", c.cmd("EHLO c.example"))
        self.assertEqual(
            c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret"))[:10], b"538 5.7.11"
        )
