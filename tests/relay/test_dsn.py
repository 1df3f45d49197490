"""RFC 3464 delivery status notifications, parsed back with the email package."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from email.utils import parsedate_to_datetime

from twisted.trial import unittest

from twisted_mail_stack.relay.dsn import RecipientReport, build_dsn
from twisted_mail_stack.values import Envelope, EnvelopeRecipient

ARRIVAL = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 6, 10, 0, 0, tzinfo=UTC)
ORIGINAL = (
    b"From: Alice <alice@example.org>\r\nTo: bob@remote.example\r\nSubject: hello\r\n"
    b"Message-ID: <orig@example.org>\r\n\r\nbody line\r\n..dotted\r\n"
)
ENVELOPE = Envelope(
    sender="alice@example.org",
    recipients=(
        EnvelopeRecipient("bob@remote.example", None, "rfc822;Bob@Remote.example"),
        EnvelopeRecipient("carol@remote.example", frozenset({"FAILURE", "DELAY"})),
        EnvelopeRecipient("dave@remote.example", frozenset({"NEVER"})),
        EnvelopeRecipient("erin@remote.example", frozenset({"SUCCESS"})),
    ),
    ret="HDRS",
    envid="QQ314159",
)
BOB = RecipientReport(
    "bob@remote.example",
    "failed",
    "5.1.1",
    remote_mta="mx1.remote.example",
    diagnostic="550 5.1.1 <bob@remote.example>: no such user",
    last_attempt=NOW,
)
CAROL = RecipientReport(
    "carol@remote.example",
    "delayed",
    "4.4.1",
    remote_mta="mx2.remote.example",
    diagnostic="451 4.4.1 try later",
    last_attempt=NOW,
    will_retry_until=datetime(2026, 3, 6, 10, 0, 0, tzinfo=UTC),
)


def build(envelope: Envelope, reports: list[RecipientReport], original: bytes = ORIGINAL, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("reporting_mta", "mail.example.org")
    kw.setdefault("arrival", ARRIVAL)
    kw.setdefault("now", NOW)
    kw.setdefault("queue_id", "Q123")
    return build_dsn(envelope, reports, io.BytesIO(original), **kw)


def parse(data: bytes) -> Message:
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF in the notification"
    return message_from_bytes(data, policy=email_policy.default)


class DSNTests(unittest.TestCase):
    def test_failed_and_delayed(self) -> None:
        data = build(ENVELOPE, [BOB, CAROL])
        assert data is not None
        msg = parse(data)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["To"], "alice@example.org")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "MAILER-DAEMON@mail.example.org")
        self.assertEqual(msg["Subject"], "Undelivered Mail Returned to Sender")
        self.assertEqual(msg["Auto-Submitted"], "auto-replied")
        self.assertEqual(parsedate_to_datetime(msg["Date"]), NOW)
        self.assertTrue(msg["Message-ID"].endswith("@mail.example.org>"))
        human, status, headers = msg.get_payload()
        self.assertEqual(human.get_content_type(), "text/plain")
        text = human.get_content()
        self.assertIn("<bob@remote.example> (host mx1.remote.example): failed: 550 5.1.1", text)
        self.assertIn("carol@remote.example", text)

        self.assertEqual(status.get_content_type(), "message/delivery-status")
        per_message, bob, carol = status.get_payload()
        self.assertEqual(per_message["Reporting-MTA"], "dns; mail.example.org")
        self.assertEqual(per_message["Original-Envelope-Id"], "QQ314159")
        self.assertEqual(parsedate_to_datetime(per_message["Arrival-Date"]), ARRIVAL)
        self.assertEqual(per_message["X-MailStack-Queue-ID"], "Q123")
        self.assertEqual(bob["Original-Recipient"], "rfc822; Bob@Remote.example")
        self.assertEqual(bob["Final-Recipient"], "rfc822; bob@remote.example")
        self.assertEqual(bob["Action"], "failed")
        self.assertEqual(bob["Status"], "5.1.1")
        self.assertEqual(bob["Remote-MTA"], "dns; mx1.remote.example")
        self.assertEqual(
            bob["Diagnostic-Code"], "smtp; 550 5.1.1 <bob@remote.example>: no such user"
        )
        self.assertEqual(parsedate_to_datetime(bob["Last-Attempt-Date"]), NOW)
        self.assertIsNone(bob["Will-Retry-Until"])
        self.assertIsNone(carol["Original-Recipient"])
        self.assertEqual(carol["Action"], "delayed")
        self.assertEqual(carol["Status"], "4.4.1")
        self.assertEqual(parsedate_to_datetime(carol["Will-Retry-Until"]), NOW)

        self.assertEqual(headers.get_content_type(), "text/rfc822-headers")
        self.assertEqual(headers.get_payload(decode=True), ORIGINAL.split(b"\r\n\r\n")[0] + b"\r\n")
        self.assertNotIn(b"body line", data)

    def test_only_delays_subject(self) -> None:
        msg = parse(build(ENVELOPE, [CAROL]) or b"")
        self.assertEqual(msg["Subject"], "Delayed Mail (still being retried)")

    def test_ret_full_returns_the_message_unchanged(self) -> None:
        envelope = Envelope("alice@example.org", ENVELOPE.recipients, ret="FULL")
        data = build(envelope, [BOB])
        assert data is not None
        self.assertIn(ORIGINAL, data)
        returned = parse(data).get_payload()[2]
        self.assertEqual(returned.get_content_type(), "message/rfc822")
        inner = returned.get_payload()[0]
        self.assertEqual(inner["Message-ID"], "<orig@example.org>")
        self.assertEqual(inner.get_content(), "body line\r\n..dotted\r\n")
        # Too large for max_full: the headers only.
        part = parse(build(envelope, [BOB], max_full=20) or b"").get_payload()[2]
        self.assertEqual(part.get_content_type(), "text/rfc822-headers")
        self.assertIn(b"Subject: hello", part.get_payload(decode=True))

    def test_bare_lf_original_gets_crlf(self) -> None:
        original = ORIGINAL.replace(b"\r\n", b"\n")
        envelope = Envelope("alice@example.org", ENVELOPE.recipients, ret="FULL")
        data = build(envelope, [BOB], original)
        assert data is not None
        self.assertIn(ORIGINAL, data)
        parse(data)

    def test_notify_rules(self) -> None:
        """NEVER and a NOTIFY without the event keep a recipient out; SUCCESS must be asked."""
        dave = RecipientReport("dave@remote.example", "failed", "5.1.1")
        erin_failed = RecipientReport("erin@remote.example", "failed", "5.1.1")
        erin_ok = RecipientReport("erin@remote.example", "delivered", "2.0.0")
        bob_ok = RecipientReport("bob@remote.example", "relayed", "2.0.0")
        self.assertIsNone(build(ENVELOPE, [dave, erin_failed, bob_ok]))
        msg = parse(build(ENVELOPE, [dave, erin_ok, BOB]) or b"")
        recipients = [b["Final-Recipient"] for b in msg.get_payload()[1].get_payload()[1:]]
        self.assertEqual(recipients, ["rfc822; erin@remote.example", "rfc822; bob@remote.example"])

    def test_never_to_the_null_sender(self) -> None:
        bounce = Envelope("", (EnvelopeRecipient("alice@example.org"),))
        self.assertIsNone(build(bounce, [BOB]))
        # The bounce of a bounce: a notification enqueued from <> produces none either.
        first = build(ENVELOPE, [BOB])
        assert first is not None
        report = RecipientReport("alice@example.org", "failed", "5.1.1")
        self.assertIsNone(build(bounce, [report], first))

    def test_header_injection_is_neutralised(self) -> None:
        evil = RecipientReport(
            "bob@remote.example", "failed", "5.0.0", diagnostic="550 no\r\nX-Evil: 1\r\n\r\nx"
        )
        msg = parse(build(ENVELOPE, [evil]) or b"")
        block = msg.get_payload()[1].get_payload()[1]
        self.assertIsNone(block["X-Evil"])
        self.assertEqual(block["Diagnostic-Code"], "smtp; 550 no X-Evil: 1 x")

    def test_local_diagnostic_type(self) -> None:
        report = RecipientReport(
            "bob@remote.example",
            "failed",
            "5.1.10",
            diagnostic="remote.example accepts no mail (null MX)",
            diagnostic_type="x-local",
        )
        block = parse(build(ENVELOPE, [report]) or b"").get_payload()[1].get_payload()[1]
        self.assertEqual(
            block["Diagnostic-Code"], "x-local; remote.example accepts no mail (null MX)"
        )
        self.assertIsNone(block["Remote-MTA"])

    def test_bad_reports(self) -> None:
        with self.assertRaises(ValueError):
            RecipientReport("a@b", "bounced", "5.0.0")
        with self.assertRaises(ValueError):
            RecipientReport("a@b", "failed", "550")

    def test_smtputf8_global_variant(self) -> None:
        envelope = Envelope(
            "älice@exämple.org",
            (EnvelopeRecipient("bøb@remote.example", None, "utf-8;bøb@remote.example"),),
            smtputf8=True,
            ret="HDRS",
        )
        report = RecipientReport(
            "bøb@remote.example", "failed", "5.1.1", "mx.remote.example", "550 5.1.1 unbekannt: bøb"
        )
        original = "From: älice@exämple.org\r\nSubject: grüße\r\n\r\nhi\r\n".encode()
        data = build(envelope, [report], original)
        assert data is not None
        msg = parse(data)
        self.assertEqual(msg["To"], "älice@exämple.org")
        types = [p.get_content_type() for p in msg.get_payload()]
        self.assertEqual(
            types, ["text/plain", "message/global-delivery-status", "message/global-headers"]
        )
        blocks = raw_part(data, 1).split(b"\r\n\r\n")
        fields = [message_from_bytes(b, policy=email_policy.SMTPUTF8) for b in blocks if b.strip()]
        self.assertEqual(fields[0]["Reporting-MTA"], "dns; mail.example.org")
        self.assertEqual(fields[1]["Original-Recipient"], "utf-8; bøb@remote.example")
        self.assertEqual(fields[1]["Final-Recipient"], "utf-8; bøb@remote.example")
        self.assertEqual(fields[1]["Diagnostic-Code"], "smtp; 550 5.1.1 unbekannt: bøb")
        self.assertEqual(
            raw_part(data, 2), "From: älice@exämple.org\r\nSubject: grüße\r\n".encode()
        )
        # With RET=FULL: message/global with the message as it was.
        full = build(
            Envelope(envelope.sender, envelope.recipients, smtputf8=True, ret="FULL"),
            [report],
            original,
        )
        assert full is not None
        self.assertEqual(parse(full).get_payload()[2].get_content_type(), "message/global")
        self.assertEqual(raw_part(full, 2), original)

    def test_ascii_dsn_of_non_ascii_diagnostic(self) -> None:
        report = RecipientReport("bob@remote.example", "failed", "5.0.0", diagnostic="550 né")
        block = parse(build(ENVELOPE, [report]) or b"").get_payload()[1].get_payload()[1]
        self.assertEqual(block["Diagnostic-Code"], "smtp; 550 n?")


def raw_part(data: bytes, index: int) -> bytes:
    """The body bytes of the top-level part C{index}, as on the wire."""
    boundary = re.search(rb'boundary="([^"]+)"', data)
    assert boundary is not None
    part = data.split(b"--" + boundary.group(1))[index + 1]
    body = part.split(b"\r\n\r\n", 1)[1]
    return body[: -len(b"\r\n")] if body.endswith(b"\r\n") else body
