"""A fake-transport harness for SMTP sessions: MemoryMailStore, an in-memory queue, a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from zope.interface import implementer

from twisted_mail_stack.auth.directory import Directory
from twisted_mail_stack.auth.policy import PlaintextPolicy
from twisted_mail_stack.auth.realm import MailRealm
from twisted_mail_stack.auth.userdb import UserDB
from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.config import SMTPConfig
from twisted_mail_stack.interfaces import IDeliveryQueue, IMessageSource
from twisted_mail_stack.smtp.server import SMTPFactory, SMTPSession
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import INBOX, Envelope

from ..tools import scratch_dir

USERS = ("alice@example.org", "bob@example.org")


@implementer(IDeliveryQueue)
class FakeQueue:
    """Entries in a dict; C{fail} makes the next enqueue fail."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Envelope, bytes]] = {}
        self.fail = False

    def enqueue(self, queue_id: str, envelope: Envelope, source: IMessageSource) -> Deferred[None]:
        if self.fail:
            return defer.fail(OSError("disk full"))
        with source.open() as f:
            self.entries[queue_id] = (envelope, f.read())
        return defer.succeed(None)

    def remove(self, queue_id: str) -> Deferred[None]:
        self.entries.pop(queue_id, None)
        return defer.succeed(None)

    def list_ids(self) -> Deferred[Sequence[str]]:
        return defer.succeed(list(self.entries))

    def load(self, queue_id: str) -> Deferred[tuple[Envelope, IMessageSource]]:
        envelope, data = self.entries[queue_id]
        return defer.succeed((envelope, BytesSource(data)))


class Harness:
    def __init__(
        self,
        *,
        submission: bool = False,
        config: SMTPConfig | None = None,
        tls: Any = None,
        implicit_tls: bool = False,
        policies: Sequence[Any] = (),
        aliases: dict[str, list[str]] | None = None,
        plaintext: PlaintextPolicy = PlaintextPolicy.TLS_OR_LOOPBACK,
    ) -> None:
        self.reactor = MemoryReactorClock()
        self.store = MemoryMailStore()
        self.userdb = UserDB(None)
        for user in USERS:
            self.userdb._set(user, "x")
        self.directory = Directory(["example.org", "example.net"], self.userdb, aliases or {})
        for user in USERS[:1]:  # bob exists in the userdb only: created at first delivery
            self.store.create_account(user)
        checker = InMemoryUsernamePasswordDatabaseDontUse(**{"alice@example.org": b"secret"})
        self.portal = Portal(MailRealm(self.store), [checker])
        self.queue = FakeQueue()
        self.spool_dir = scratch_dir("smtp-spool-")
        self.factory = SMTPFactory(
            hostname="mx.example.org",
            store=self.store,
            queue=self.queue,
            directory=self.directory,
            spool_dir=self.spool_dir,
            reactor=self.reactor,
            config=config,
            portal=self.portal,
            plaintext=plaintext,
            tls_options=tls,
            submission=submission,
            implicit_tls=implicit_tls,
            policies=policies,
        )

    def connect(self, host: str = "127.0.0.1") -> Client:
        return Client(self, host)

    def inbox(self, user: str) -> list[bytes]:
        folder = self.store.account_data(user).folders[INBOX]
        return [m.data for m in folder.messages.values()]


class Client:
    def __init__(self, harness: Harness, host: str) -> None:
        self.harness = harness
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
        self.session: SMTPSession = harness.factory.buildProtocol(self.transport.getPeer())
        self.session.makeConnection(self.transport)

    def read(self) -> bytes:
        out = self.transport.value()
        self.transport.clear()
        return out

    def send(self, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.session.dataReceived(data)
        return self.read()

    def cmd(self, line: str) -> bytes:
        return self.send(line + "\r\n")

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    def hello(self) -> None:
        self.read()
        assert self.cmd("EHLO client.example").startswith(b"250-")

    def mail(self, sender: str, rcpts: Sequence[str], body: bytes) -> bytes:
        out = self.cmd(f"MAIL FROM:<{sender}>")
        assert out.startswith(b"250"), out
        for r in rcpts:
            out = self.cmd(f"RCPT TO:<{r}>")
            assert out.startswith(b"250"), out
        assert self.cmd("DATA").startswith(b"354")
        return self.send(body + b".\r\n")


def body_of(stored: bytes) -> bytes:
    """The message without the trace headers the server put in front."""
    lines = stored.split(b"\r\n")
    i = 0
    while lines[i].startswith((b"Return-Path:", b"Received:", b"\t")):
        i += 1
    return b"\r\n".join(lines[i:])
