"""
The relay inside a running MailStack, end to end over loopback: an authenticated submission
with smtplib, MX records from a real DNS server on 127.0.0.1, a real SMTP server as the remote
MX; bounces into the sender's INBOX; a remote that is down, then `mailstack queue flush`.
"""

from __future__ import annotations

import io
import json
import smtplib
import time
from collections.abc import Callable
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import globalLogPublisher
from twisted.names import dns

from twisted_mail_stack.cli import main as cli

from ..relay.dnsserver import DNSServer, Zone
from ..relay.smtpserver import RemoteMX
from .smtp_server import PASSWORD, SMTPServerCase, strip_trace

MESSAGE = (
    b"From: alice@example.org\r\nTo: bob@remote.test\r\nSubject: out\r\n"
    b"Message-ID: <relay-1@example.org>\r\n\r\nfirst line\r\n.leading dot\r\n"
    b"caf\xc3\xa9 8-bit\r\n"
)


class RelayCase(SMTPServerCase):
    """A MailStack whose relay asks our DNS server, where remote.test's MX is a loopback server."""

    timeout = 60
    remote_up = True

    async def setUp(self) -> None:  # type: ignore[override]
        zone = Zone(
            {
                "remote.test": [dns.Record_MX(10, b"mx.remote.test")],
                "mx.remote.test": [dns.Record_A("127.0.0.1")],
            }
        )
        self.dns = DNSServer(reactor, zone)
        self.addCleanup(self.dns.stop)
        self.mx = RemoteMX(reactor)
        self.mx_port = self.mx.address.port
        if self.remote_up:
            self.addCleanup(lambda: self.mx.stop())
        else:
            await self.mx.stop()
        self.lines: list[str] = []
        observer: Callable[[dict[str, Any]], None] = self._log
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.overrides = {
            "relay.nameservers": ["127.0.0.1"],
            "relay.dns_port": self.dns.port,
            "relay.smtp_port": self.mx_port,
            "relay.control_interval": 0.05,
        }
        await super().setUp()

    def _log(self, event: dict[str, Any]) -> None:
        from twisted.logger import formatEvent

        if event.get("log_namespace", "").startswith("twisted_mail_stack.relay"):
            self.lines.append(formatEvent(event))

    async def submit(self, recipients: list[str], message: bytes = MESSAGE) -> None:
        def send() -> None:
            with smtplib.SMTP("127.0.0.1", self.port("submission"), timeout=10) as client:
                client.starttls(context=self.tls_context())
                client.login("alice@example.org", PASSWORD)
                refused = client.sendmail(
                    "alice@example.org", recipients, message, mail_options=["BODY=8BITMIME"]
                )
                self.assertEqual(refused, {})

        await deferToThread(send)

    async def until(self, condition: Callable[[], Any], seconds: float = 15.0) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            await deferLater(reactor, 0.05)
        self.fail(f"timed out waiting; relay log: {self.lines}")

    def queue_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.data / "queue").glob("*.json"))

    def cli(self, *argv: str) -> tuple[int, str]:
        out = io.StringIO()
        code = cli(["--data", str(self.data), *argv], out=out)
        return code, out.getvalue()


class DeliveryTests(RelayCase):
    async def test_submission_travels_to_the_mx_byte_identical(self) -> None:
        await self.submit(["bob@remote.test"])
        [stored] = await self.until(lambda: self.mx.inbox("bob@remote.test"))
        self.assertEqual(strip_trace(stored), MESSAGE)
        # Both servers' trace fields are there: ours first in transit, the remote's on top.
        self.assertIn(b"by mx.example.org (twisted-mail-stack) with ESMTPSA", stored)
        self.assertIn(b"by mx.remote.test", stored)
        await self.until(lambda: not self.queue_ids())
        [line] = [x for x in self.lines if "to=<bob@remote.test>" in x]
        self.assertRegex(
            line,
            r"^[0-9A-F]+: to=<bob@remote.test>, relay=mx.remote.test, delay=\d+\.\d, "
            r"dsn=2\.0\.0, status=sent \(250 ",
        )

    async def test_5xx_bounce_arrives_in_the_senders_inbox(self) -> None:
        await self.submit(["nobody@remote.test", "carol@remote.test"])
        [bounce] = await self.until(lambda: self.maildir("alice@example.org"))
        self.assertEqual(len(self.mx.inbox("carol@remote.test")), 1)
        self.assertTrue(bounce.startswith(b"Return-Path: <>\r\n"))
        report = message_from_bytes(bounce, policy=email_policy.default)
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        parts = report.get_payload()
        assert isinstance(parts, list)
        self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
        blocks = parts[1].get_payload()
        self.assertEqual(len(blocks), 2)  # per-message fields, one recipient
        rcpt = blocks[1]
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; nobody@remote.test")
        self.assertEqual(rcpt["Action"], "failed")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(rcpt["Remote-MTA"], "dns; mx.remote.test")
        self.assertTrue(rcpt["Diagnostic-Code"].startswith("smtp; 550 5.1.1"))
        self.assertIn(b"Message-ID: <relay-1@example.org>", bounce)  # the original headers
        await self.until(lambda: not self.queue_ids())
        self.assertTrue(
            any("status=bounced" in x and "nobody@remote.test" in x for x in self.lines)
        )
        self.assertTrue(any("to=<alice@example.org>, relay=local" in x for x in self.lines))


class RemoteDownTests(RelayCase):
    remote_up = False

    async def test_stays_queued_then_flush_delivers(self) -> None:
        await self.submit(["bob@remote.test"])
        [queue_id] = self.queue_ids()
        state_file = self.data / "queue" / f"{queue_id}.state"
        await self.until(state_file.exists)
        state = json.loads(state_file.read_text())
        self.assertEqual(state["failures"], 1)
        self.assertGreater(state["next_attempt"], time.time() + 200)  # first_retry: 300 s
        [r] = state["recipients"]
        self.assertEqual((r["state"], r["status"]), ("pending", "4.4.1"))
        self.assertTrue(any("status=deferred" in x for x in self.lines), self.lines)
        code, listing = self.cli("queue", "list")
        self.assertEqual(code, 0)
        self.assertIn(queue_id, listing)
        self.assertIn("pending   <bob@remote.test>", listing)

        self.mx = RemoteMX(reactor, port=self.mx_port)  # the remote comes back
        self.addCleanup(lambda: self.mx.stop())
        # The command waits for the server (this process: so it runs in a thread) to act.
        self.assertEqual(
            await deferToThread(self.cli, "queue", "flush"),
            (0, "flush: every message tried now (running server)\n"),
        )
        [stored] = await self.until(lambda: self.mx.inbox("bob@remote.test"))
        self.assertEqual(strip_trace(stored), MESSAGE)
        await self.until(lambda: not self.queue_ids())
        self.assertEqual(self.maildir("alice@example.org"), [])  # no notice
