"""`twistd mailstack` with its IMAP listeners, for the IMAP integration tests."""

from __future__ import annotations

from . import pop3_server
from .pop3_server import DOMAIN, PASSWORD

__all__ = ["DOMAIN", "PASSWORD", "Server"]


class Server(pop3_server.Server):
    """The same server with IMAP (STARTTLS and implicit TLS) and SMTP listening."""

    LISTENERS = ("imap", "imaps", "smtp")

    @property
    def imap(self) -> int:
        return self.ports["IMAP4"]

    @property
    def imaps(self) -> int:
        return self.ports["IMAP4, implicit TLS"]
