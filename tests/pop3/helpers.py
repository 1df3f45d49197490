"""A POP3 session on a fake transport over the in-memory store, with a fake clock."""

from __future__ import annotations

from typing import Any

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import Portal
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from twisted_mail_stack.auth.realm import MailRealm
from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.config import POP3Config
from twisted_mail_stack.interfaces import IMailbox
from twisted_mail_stack.pop3.server import POP3Factory, POP3Server
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import INBOX

USER = "alice@example.org"
PASSWORD = b"secret"
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 40000)
REMOTE = IPv4Address("TCP", "192.0.2.7", 40000)


def result(d: Any) -> Any:
    """The result of a Deferred that has already fired (the memory store never waits)."""
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


class World:
    """A memory store with one user, a portal, a clock and a factory."""

    def __init__(self, **config: Any) -> None:
        self.store = MemoryMailStore()
        result(self.store.create_account(USER))
        checker = InMemoryUsernamePasswordDatabaseDontUse(**{USER: PASSWORD})
        self.portal = Portal(MailRealm(self.store), [checker])
        self.clock = Clock()
        self.factory = POP3Factory(self.portal, clock=self.clock, config=POP3Config(**config))

    def deliver(self, data: bytes) -> int:
        infos = result(self.store.deliver([USER], BytesSource(data)))
        return int(infos[USER].uid)

    def inbox(self) -> IMailbox:
        account = result(self.store.open_account(USER))
        return result(account.open_mailbox(INBOX))  # type: ignore[no-any-return]

    def uids(self) -> list[int]:
        mailbox = self.inbox()
        try:
            return [m.uid for m in result(mailbox.list_messages())]
        finally:
            mailbox.close()

    def connect(self, peer: IPv4Address = LOOPBACK) -> Session:
        return Session(self.factory, peer)


class Session:
    def __init__(self, factory: POP3Factory, peer: IPv4Address) -> None:
        self.transport = StringTransport(peerAddress=peer)
        self.protocol: POP3Server = factory.buildProtocol(peer)
        self.protocol.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return bytes(data)

    def send(self, data: bytes) -> bytes:
        self.protocol.dataReceived(data)
        return self.take()

    def cmd(self, line: str | bytes) -> bytes:
        if isinstance(line, str):
            line = line.encode()
        return self.send(line + b"\r\n")

    def login(self) -> bytes:
        assert self.cmd(f"USER {USER}").startswith(b"+OK")
        reply = self.cmd(b"PASS " + PASSWORD)
        assert reply.startswith(b"+OK"), reply
        return reply

    def drop(self) -> None:
        """The client vanishes."""
        self.protocol.connectionLost(Failure(ConnectionDone()))

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting or self.transport.disconnected)
