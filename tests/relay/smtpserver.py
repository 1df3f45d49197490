"""
A remote MX for relay tests: our own SMTP server (twisted_mail_stack.smtp) on a loopback address
with an in-memory store for its domains (default C{remote.test}); users bob, carol and temp. A
policy answers 451 to the first RCPT of each C{temp@} address (later ones pass) and 554 at the
end of DATA for a message whose Subject is C{reject me}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from twisted_mail_stack.auth.directory import Directory
from twisted_mail_stack.auth.userdb import UserDB
from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.interfaces import IMessageSource
from twisted_mail_stack.smtp.policy import SMTPPolicy
from twisted_mail_stack.smtp.server import SMTPFactory
from twisted_mail_stack.values import INBOX, Envelope, SMTPClientInfo, SMTPReply

from ..tools import scratch_dir

USERS = ("bob", "carol", "temp")


class ScriptedPolicy(SMTPPolicy):
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def rcpt(
        self, client: SMTPClientInfo, recipient: str, params: Mapping[str, str | None]
    ) -> Deferred[SMTPReply | None]:
        if recipient.startswith("temp@") and recipient not in self.seen:
            self.seen.add(recipient)
            return defer.succeed(SMTPReply(451, "4.2.0", "mailbox busy, try later"))
        return defer.succeed(None)

    def data(
        self, client: SMTPClientInfo, envelope: Envelope, source: IMessageSource
    ) -> Deferred[SMTPReply | None]:
        with source.open() as f:
            if b"Subject: reject me" in f.read():
                return defer.succeed(SMTPReply(554, "5.7.1", "content refused"))
        return defer.succeed(None)


class RemoteMX:
    """Listens on C{interface}:C{port} (0: a free port) until L{stop}."""

    def __init__(
        self,
        reactor: Any,
        tls_options: Any = None,
        *,
        domains: tuple[str, ...] = ("remote.test",),
        interface: str = "127.0.0.1",
        port: int = 0,
        policies: list[SMTPPolicy] | None = None,
    ) -> None:
        self.store = MemoryMailStore()
        userdb = UserDB(None)
        for domain in domains:
            for user in USERS:
                userdb._set(f"{user}@{domain}", "x")
                self.store.create_account(f"{user}@{domain}")
        self.factory = SMTPFactory(
            hostname=f"mx.{domains[0]}",
            store=self.store,
            queue=None,  # type: ignore[arg-type]
            directory=Directory(list(domains), userdb, {}),
            spool_dir=scratch_dir("relay-mx-spool-"),
            reactor=reactor,
            tls_options=tls_options,
            policies=[ScriptedPolicy()] if policies is None else policies,
        )
        #: Connections accepted so far.
        self.connections = 0
        build = self.factory.buildProtocol

        def counted(addr: Any) -> Any:
            self.connections += 1
            return build(addr)

        self.factory.buildProtocol = counted  # type: ignore[method-assign]
        self._reactor = reactor
        self.port = reactor.listenTCP(port, self.factory, interface=interface)
        self.address = self.port.getHost()

    async def sessions_closed(self, timeout: float = 5.0) -> bool:
        """Wait until every session has ended (the server closes just after its 221)."""
        for _ in range(int(timeout / 0.01)):
            if not self.factory.sessions:
                return True
            await deferLater(self._reactor, 0.01)
        return not self.factory.sessions

    def inbox(self, user: str) -> list[bytes]:
        folder = self.store.account_data(user).folders[INBOX]
        return [m.data for m in folder.messages.values()]

    def stop(self) -> Deferred[Any]:
        return defer.maybeDeferred(self.port.stopListening)
