"""The sans-IO outbound SMTP client pieces: bytes in, bytes out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial import unittest

from twisted_mail_stack.errors import PermanentDeliveryError
from twisted_mail_stack.relay._smtpclient import (
    DotStuffer,
    Extensions,
    Reply,
    ReplyParser,
    SMTPProtocolError,
    check_message,
    mail_command,
    rcpt_command,
)
from twisted_mail_stack.values import Envelope, EnvelopeRecipient

EHLO = (
    b"250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
    b"250-smtputf8\r\n250-DSN\r\n250 STARTTLS\r\n"
)


def unstuff(data: bytes) -> bytes:
    assert data.endswith(b"\r\n.\r\n") or data == b".\r\n"
    body = data[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


class ReplyTests(unittest.TestCase):
    def test_multiline_in_pieces(self) -> None:
        parser = ReplyParser()
        replies = []
        for i in range(len(EHLO)):
            replies += parser.feed(EHLO[i : i + 1])
        self.assertEqual(len(replies), 1)
        ext = Extensions.from_ehlo(replies[0])
        self.assertIn("pipelining", ext)
        self.assertIn("SMTPUTF8", ext)
        self.assertEqual(ext.size_limit, 1000)
        self.assertNotIn("CHUNKING", ext)

    def test_several_replies_and_fields(self) -> None:
        replies = ReplyParser().feed(
            b"250 2.1.0 ok\r\n550 5.1.1 <b@x> unknown\r\n451\r\n452 4.5.3 \n"
        )
        self.assertEqual([r.code for r in replies], [250, 550, 451, 452])
        self.assertEqual(replies[1].enhanced, "5.1.1")
        self.assertEqual(replies[1].text, "550 5.1.1 <b@x> unknown")
        self.assertTrue(replies[1].permanent)
        self.assertFalse(replies[2].permanent)
        self.assertIsNone(replies[2].enhanced)
        self.assertEqual(replies[2].status("5.0.0"), "4.0.0")
        self.assertEqual(replies[3].enhanced, "4.5.3")
        # An enhanced code of another class than the reply is not believed.
        self.assertIsNone(Reply(550, ["2.0.0 odd"]).enhanced)

    def test_malformed(self) -> None:
        for bad in (b"hello\r\n", b"250-a\r\n251 b\r\n", b"600 x\r\n", b"25 x\r\n"):
            with self.assertRaises(SMTPProtocolError):
                ReplyParser().feed(bad)
        with self.assertRaises(SMTPProtocolError):
            ReplyParser(max_line=10).feed(b"250 " + b"x" * 20)
        with self.assertRaises(SMTPProtocolError):
            ReplyParser(max_lines=3).feed(b"250-a\r\n" * 4)


class CommandTests(unittest.TestCase):
    ext = Extensions.from_ehlo(ReplyParser().feed(EHLO)[0])

    def test_mail_and_rcpt_with_dsn(self) -> None:
        env = Envelope(
            "a@example.org",
            (EnvelopeRecipient("b@x", frozenset({"FAILURE", "DELAY"}), "rfc822;B+1=@x"),),
            body="8BITMIME",
            ret="HDRS",
            envid="id 1",
        )
        self.assertEqual(
            mail_command(env, 500, self.ext),
            b"MAIL FROM:<a@example.org> SIZE=500 BODY=8BITMIME RET=HDRS ENVID=id+201\r\n",
        )
        self.assertEqual(
            rcpt_command(env.recipients[0], self.ext),
            b"RCPT TO:<b@x> NOTIFY=DELAY,FAILURE ORCPT=rfc822;B+2B1+3D@x\r\n",
        )
        bare = Extensions()
        self.assertEqual(
            mail_command(env, 500, bare), b"MAIL FROM:<a@example.org> BODY=8BITMIME\r\n"
        )
        self.assertEqual(rcpt_command(env.recipients[0], bare), b"RCPT TO:<b@x>\r\n")
        self.assertEqual(mail_command(Envelope("", ()), 1, bare), b"MAIL FROM:<>\r\n")
        with self.assertRaises(ValueError):
            mail_command(Envelope("a@b\r\nRSET", ()), 1, bare)

    def test_smtputf8(self) -> None:
        env = Envelope("ä@example.org", (EnvelopeRecipient("ü@x"),), smtputf8=True)
        self.assertEqual(
            mail_command(env, 5, self.ext), "MAIL FROM:<ä@example.org> SIZE=5 SMTPUTF8\r\n".encode()
        )
        check_message(env, 5, self.ext)
        with self.assertRaises(PermanentDeliveryError) as e:
            check_message(env, 5, Extensions())
        self.assertEqual(e.exception.enhanced, "5.6.7")

    def test_capability_checks(self) -> None:
        for env, size, enhanced in (
            (Envelope("a@b", (), body="8BITMIME"), 10, "5.6.3"),
            (Envelope("a@b", (), body="BINARYMIME"), 10, "5.6.3"),
        ):
            with self.assertRaises(PermanentDeliveryError) as e:
                check_message(env, size, Extensions())
            self.assertEqual(e.exception.enhanced, enhanced)
        with self.assertRaises(PermanentDeliveryError) as e:
            check_message(Envelope("a@b", ()), 1001, self.ext)
        self.assertEqual((e.exception.code, e.exception.enhanced), (552, "5.3.4"))
        check_message(Envelope("a@b", ()), 1000, self.ext)
        check_message(Envelope("a@b", ()), 10**9, Extensions({"SIZE": ""}))


class DotStufferTests(unittest.TestCase):
    def test_examples(self) -> None:
        s = DotStuffer()
        out = (
            s.feed(b".start\r\nmid\r\n.") + s.feed(b"x\r\n") + s.feed(b"..two\r") + s.feed(b"\nend")
        )
        out += s.end()
        self.assertEqual(out, b"..start\r\nmid\r\n..x\r\n...two\r\nend\r\n.\r\n")
        self.assertEqual(DotStuffer().end(), b".\r\n")
        s = DotStuffer()
        self.assertEqual(s.feed(b"bare\nlf\rcr\r") + s.end(), b"bare\r\nlf\r\ncr\r\n.\r\n")

    @given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"")), max_size=8))
    def test_round_trip_any_split(self, chunks: list[bytes]) -> None:
        s = DotStuffer()
        out = b"".join(s.feed(c) for c in chunks) + s.end()
        original = b"".join(chunks).replace(b"\n", b"\r\n")
        self.assertNotIn(b"\r\n.\r\n", out[:-3])
        expected = original if original.endswith(b"\r\n") or not original else original + b"\r\n"
        self.assertEqual(unstuff(out), expected)
        self.assertNotIn(b"\n", out.replace(b"\r\n", b""))
