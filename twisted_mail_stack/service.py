"""
L{MailStack}: the embedding API. One MultiService that owns the store, accounts, TLS settings,
portal and listeners, built from one L{Config}.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import frozen
from twisted.application.service import MultiService
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from .auth.cache import LoginCache
from .auth.directory import AliasFile, Directory
from .auth.realm import build_portal
from .auth.userdb import UserDB
from .config import Backend, Config
from .errors import ConfigError
from .interfaces import IDeliveryQueue, IMailStore, ISMTPPolicy
from .tls import TLSSettings, load_or_create_tls
from .values import Address

_log = Logger()

#: A builder makes the protocol factory of one listener kind for a running L{MailStack}.
FactoryBuilder = Callable[["MailStack"], IProtocolFactory]


@frozen
class ListenerKind:
    """One kind of listener: its config key, what it serves, and whether TLS wraps the socket."""

    key: str
    label: str
    implicit_tls: bool
    #: "module:function" of the L{FactoryBuilder}, or None while the protocol is not built yet.
    builder: str | None = None


LISTENER_KINDS: tuple[ListenerKind, ...] = (
    ListenerKind("smtp", "SMTP (MX)", False, "twisted_mail_stack.smtp.server:build_mx"),
    ListenerKind(
        "submission", "SMTP submission", False, "twisted_mail_stack.smtp.server:build_submission"
    ),
    ListenerKind(
        "submissions",
        "SMTP submission, implicit TLS",
        True,
        "twisted_mail_stack.smtp.server:build_submissions",
    ),
    ListenerKind("pop3", "POP3", False, "twisted_mail_stack.pop3.server:build_pop3"),
    ListenerKind("pop3s", "POP3, implicit TLS", True, "twisted_mail_stack.pop3.server:build_pop3s"),
    ListenerKind("imap", "IMAP4", False, "twisted_mail_stack.imap4.server:build_imap"),
    ListenerKind(
        "imaps", "IMAP4, implicit TLS", True, "twisted_mail_stack.imap4.server:build_imaps"
    ),
)


def prepare_data_dir(config: Config) -> Path:
    """
    Create the data directory (owner-only) if missing and prove it is writable.

    Raises L{ConfigError} naming C{data_dir} with the reason, so C{twistd} and C{mailstack}
    print one clear line instead of a traceback.
    """
    path = config.data_path
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ConfigError(
            "data_dir", f"{path} is not a writable directory ({e.strerror})"
        ) from None
    return path


def open_store(config: Config, reactor: Any = None) -> IMailStore:
    """Build the configured backend."""
    if config.store.backend is Backend.MEMORY:
        from .backends.memory import MemoryMailStore

        return MemoryMailStore()
    from .backends.maildir import MaildirMailStore

    return MaildirMailStore(
        str(config.data_path / "mail"), reactor=reactor, poll_interval=config.store.poll_interval
    )


def apply_quick_users(config: Config, userdb: UserDB) -> str | None:
    """
    Create or update the C{--user} accounts; with none and an empty password file, create a demo
    user and return its generated password (shown once, never stored in clear).
    """
    for entry in config.users:
        address, _, password = entry.partition(":")
        user = Address.parse(address).key
        if userdb.get_hash(user) is None:
            userdb.add(user, password)
        else:
            userdb.set_password(user, password)
    demo_password = None
    if not config.users and not userdb.users():
        demo_password = secrets.token_urlsafe(12)
        userdb.add(f"demo@{config.domains[0]}", demo_password)
    if config.users or demo_password:
        userdb.save()
    return demo_password


class MailStack(MultiService):
    """
    A whole mail server as one service: add it to any Twisted application.

    After C{startService}, L{when_ready} fires once the store is open and every listener listens
    (or fails with the reason). C{store}, C{userdb}, C{directory}, C{portal}, C{tls} and C{ports}
    are then available to the embedding application.
    """

    name = "mailstack"

    def __init__(self, config: Config, reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.config = config
        self.reactor = reactor
        self._started: Deferred[None] | None = None
        self._waiters: list[Deferred[None]] = []
        self._outcome: Failure | bool | None = None
        self.ports: dict[str, list[IListeningPort]] = {}
        self.store: IMailStore | None = None
        self.queue: IDeliveryQueue | None = None
        #: The outbound relay (L{twisted_mail_stack.relay.wiring.Relay}), once started.
        self.relay: Any = None
        #: SMTP policy hooks (L{ISMTPPolicy}) every SMTP listener consults; set before starting.
        self.smtp_policies: list[ISMTPPolicy] = []
        self.userdb: UserDB | None = None
        self.directory: Directory | None = None
        self.portal: Portal | None = None
        self.tls: TLSSettings | None = None
        self.demo_password: str | None = None
        #: The thread pool of password verification, while running.
        self.hash_pool: ThreadPool | None = None

    def startService(self) -> None:
        super().startService()
        self._started = Deferred.fromCoroutine(self._start())
        self._started.addErrback(self._start_failed)

    def when_ready(self) -> Deferred[None]:
        """A new Deferred that fires when start-up has finished, or fails with its error."""
        if self._started is None:
            raise RuntimeError("when_ready() before startService()")
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        if self._outcome is not None:
            self._notify_waiters()
        return d

    def _notify_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if isinstance(self._outcome, Failure):
                d.errback(self._outcome)
            else:
                d.callback(None)

    async def _start(self) -> None:
        config = self.config
        data = prepare_data_dir(config)
        self.userdb = UserDB.load(str(data / "passwd"))
        self.demo_password = apply_quick_users(config, self.userdb)
        self.directory = Directory(
            config.domains,
            self.userdb,
            postmaster=config.auth.postmaster,
            alias_file=AliasFile.load(str(data / "aliases")),
        )
        self.tls = load_or_create_tls(config.tls.cert, config.tls.key, str(data), config.hostname)
        self.store = open_store(config, self.reactor)
        from .relay.queue import DeliveryQueue

        self.queue = DeliveryQueue(str(data / "queue"), self.reactor)
        await self._ensure_accounts()
        self._start_relay()
        self.portal = build_portal(
            self.store,
            self.userdb,
            self.directory,
            reactor=self.reactor,
            threadpool=self._start_hash_pool(),
            cache=LoginCache(config.auth.cache_ttl, config.auth.cache_size),
        )
        if self.demo_password is not None:
            _log.info(
                "Created demo user {user} with password {password} (shown only this once; "
                "change it with: mailstack user passwd {user})",
                user=self.userdb.users()[0],
                password=self.demo_password,
            )
        await self._listen()
        self._outcome = True
        self._notify_waiters()
        _log.info(
            "mailstack ready: domains {domains}, data in {data}, {backend} store",
            domains=", ".join(config.domains),
            data=os.path.abspath(data),
            backend=config.store.backend.value,
        )

    def _start_hash_pool(self) -> ThreadPool:
        """Password checks get threads of their own: storage never queues behind scrypt."""
        pool = ThreadPool(0, self.config.auth.hash_threads, name="mailstack-auth")
        pool.start()
        self.hash_pool = pool
        return pool

    def _start_relay(self) -> None:
        """Start delivering the queue (entries left by a previous run first)."""
        from .relay.queue import DeliveryQueue
        from .relay.wiring import Relay

        assert isinstance(self.queue, DeliveryQueue) and self.store and self.directory
        relay = Relay(self.config, self.queue, self.store, self.directory, self.reactor)
        try:
            relay.start()
        except RuntimeError as e:
            raise ConfigError("data_dir", str(e)) from None
        self.relay = relay

    async def _ensure_accounts(self) -> None:
        """Give every user of the password file an account in the store."""
        assert self.store is not None and self.userdb is not None
        existing = set(await self.store.list_accounts())
        for user in self.userdb.users():
            if user not in existing:
                await self.store.create_account(user)

    async def _listen(self) -> None:
        assert self.tls is not None
        for kind in LISTENER_KINDS:
            descriptions = getattr(self.config.listeners, kind.key)
            if not descriptions:
                continue
            if kind.builder is None:
                _log.info(
                    "{label} is not part of this version yet: not listening", label=kind.label
                )
                continue
            module_name, _, attr = kind.builder.partition(":")
            module = __import__(module_name, fromlist=[attr])
            factory = getattr(module, attr)(self)
            if kind.implicit_tls:
                factory = self.tls.wrap_factory(factory)
            for description in descriptions:
                port = await serverFromString(self.reactor, description).listen(factory)
                self.ports.setdefault(kind.key, []).append(port)
                _log.info(
                    "{label} listening on {address}", label=kind.label, address=port.getHost()
                )

    def _start_failed(self, failure: Failure) -> None:
        self._outcome = failure
        self._notify_waiters()
        _log.failure("mailstack failed to start", failure)
        # A server that cannot start must not sit there looking alive.
        if self.reactor.running:
            self.reactor.stop()

    def stopService(self) -> Deferred[None]:
        d = Deferred.fromCoroutine(self._stop())
        super().stopService()
        return d

    async def _stop(self) -> None:
        ports = [port for group in self.ports.values() for port in group]
        self.ports = {}
        await DeferredList([maybeDeferred(port.stopListening) for port in ports])
        if self.hash_pool is not None:
            pool, self.hash_pool = self.hash_pool, None
            pool.stop()
        if self.relay is not None:
            relay, self.relay = self.relay, None
            await relay.stop()
        if self.store is not None:
            await self.store.close()
