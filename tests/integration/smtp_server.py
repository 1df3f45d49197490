"""A real MailStack on loopback ports for the SMTP integration tests, and Maildir readers."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from twisted.trial import unittest

from twisted_mail_stack.config import load_config
from twisted_mail_stack.service import MailStack

PASSWORD = "s3cret-pw"


class SMTPServerCase(unittest.TestCase):
    """Starts a MailStack (Maildir store) with SMTP MX, submission and submissions on port 0."""

    overrides: dict[str, Any] = {}

    async def setUp(self) -> None:  # type: ignore[override]
        self.data = Path(self.mktemp()).absolute()
        listen = ["tcp:0:interface=127.0.0.1"]
        config = load_config(
            overrides={
                "data_dir": str(self.data),
                "hostname": "mx.example.org",
                "domains": ["example.org"],
                "users": [f"alice@example.org:{PASSWORD}", f"bob@example.org:{PASSWORD}"],
                "listeners.smtp": listen,
                "listeners.submission": listen,
                "listeners.submissions": listen,
                "listeners.pop3": [],
                "listeners.pop3s": [],
                "listeners.imap": [],
                "listeners.imaps": [],
                "smtp.auth_failure_delay": 0.1,
                # The relay asks only loopback, where nothing answers on port 9: queued remote
                # mail stays queued (a temporary DNS failure), and no packet leaves the host.
                "relay.nameservers": ["127.0.0.1"],
                "relay.dns_port": 9,
                **self.overrides,
            }
        )
        self.stack = MailStack(config)
        self.stack.startService()
        self.addCleanup(self.stack.stopService)
        await self.stack.when_ready()

    def port(self, kind: str) -> int:
        return int(self.stack.ports[kind][0].getHost().port)

    def tls_context(self) -> ssl.SSLContext:
        assert self.stack.tls is not None
        return ssl.create_default_context(cadata=self.stack.tls.cert_pem.decode("ascii"))

    def maildir(self, user: str) -> list[bytes]:
        """Every message file of C{user}'s INBOX, oldest first."""
        local, _, domain = user.partition("@")
        root = self.data / "mail" / domain / local
        files = [p for sub in ("new", "cur") for p in (root / sub).glob("*") if p.is_file()]
        return [p.read_bytes() for p in sorted(files, key=lambda p: p.stat().st_mtime_ns)]

    def queued(self) -> list[Path]:
        return sorted((self.data / "queue").glob("*.msg"))


def strip_trace(stored: bytes) -> bytes:
    """The message without the Return-Path and Received fields the server put in front."""
    lines = stored.split(b"\r\n")
    i = 0
    while lines[i].startswith((b"Return-Path:", b"Received:", b"\t")):
        i += 1
    return b"\r\n".join(lines[i:])
