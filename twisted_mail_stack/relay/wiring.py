"""
The relay built from the configuration, for L{twisted_mail_stack.service.MailStack}.

L{Relay.start} takes the queue's server lock (see L{control}), starts the L{RelayManager}
(which scans the spool at once: entries left by a previous process are retried) and the
L{ControlWatcher}. Routes come from C{[relay]}: transports, then the smarthost, then MX records
asked of C{nameservers} (default: /etc/resolv.conf). Local domains' recipients (notices to
local senders) are delivered into the store, never sent out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger

from ..auth.directory import Directory
from ..config import Config, parse_hostport, parse_transport
from ..errors import PermanentDeliveryError
from ..interfaces import IMailStore, IMessageSource
from ..smtp.delivery import new_queue_id
from ..sources import BytesSource
from ..values import Envelope, EnvelopeRecipient, MXHost, normalise_domain
from .attempt import domain_of
from .client import Outgoing, RecipientResult, Timeouts
from .control import ControlWatcher, ServerLock
from .dnsclient import DNSClient, DNSConfig, system_nameservers
from .limits import ConnectionLimits
from .manager import RelayManager
from .mx import MXResolver, Routes
from .mx import Relay as Route
from .queue import DeliveryQueue
from .schedule import RetryPolicy
from .sessions import SessionPool

__all__ = ["Relay", "routes_from_config", "policy_from_config"]

_log = Logger()


def routes_from_config(config: Config) -> Routes:
    relay = config.relay
    smarthost = Route(*parse_hostport(relay.smarthost)) if relay.smarthost else None
    transports = {}
    for entry in relay.transports:
        domain, (host, port) = parse_transport(entry)
        transports[domain] = Route(host, port)
    return Routes(smarthost, transports)


def policy_from_config(config: Config) -> RetryPolicy:
    relay = config.relay
    return RetryPolicy(
        minimal_backoff=relay.first_retry,
        maximal_backoff=relay.max_retry,
        maximal_lifetime=relay.lifetime,
        bounce_lifetime=relay.bounce_lifetime,
        delay_warning=relay.delay_warning or None,
    )


class Sender:
    """The C{send} of the manager: the SMTP client with the TLS and AUTH policy per route."""

    def __init__(self, config: Config, reactor: Any) -> None:
        relay = config.relay
        # Opportunistic STARTTLS does not check the certificate (RFC 7435); required TLS
        # encrypts without authenticating the server either (Postfix's "encrypt" level).
        self.pool = SessionPool(
            reactor,
            helo_name=config.hostname,
            tls_options=CertificateOptions(),
            idle_timeout=relay.connection_cache_time,
            max_idle=relay.max_connections,
            timeouts=Timeouts(
                connect=relay.connect_timeout,
                greeting=relay.greeting_timeout,
                command=relay.command_timeout,
                data_start=relay.data_timeout,
                data_end=relay.data_end_timeout,
            ),
        )
        self.tls_domains = frozenset(normalise_domain(d) for d in relay.tls_required_domains)
        self.smarthost = parse_hostport(relay.smarthost) if relay.smarthost else None
        self.smarthost_tls = relay.smarthost_tls_required
        self.auth = (
            (relay.smarthost_user, relay.smarthost_password)
            if relay.smarthost_user is not None and relay.smarthost_password is not None
            else None
        )

    def __call__(
        self, host: MXHost, address: str, messages: Sequence[Outgoing]
    ) -> Deferred[list[list[RecipientResult]]]:
        domains = {domain_of(r.address) for m in messages for r in m.envelope.recipients}
        to_smarthost = self.smarthost is not None and (host.name, host.port) == self.smarthost
        tls_required = bool(domains & self.tls_domains) or (to_smarthost and self.smarthost_tls)
        return self.pool.deliver(
            address,
            host.port,
            messages,
            tls_required=tls_required,
            auth=self.auth if to_smarthost else None,
        )


class LocalDelivery:
    """Delivers a queued message to a local address: the store, after alias expansion."""

    def __init__(self, store: IMailStore, directory: Directory, queue: DeliveryQueue) -> None:
        self.store = store
        self.directory = directory
        self.queue = queue

    def __call__(self, address: str, source: IMessageSource) -> Deferred[None]:
        return Deferred.fromCoroutine(self._deliver(address, source))

    async def _deliver(self, address: str, source: IMessageSource) -> None:
        targets = self.directory.resolve(address)
        if not targets:
            raise PermanentDeliveryError(f"<{address}>: no such user here", 550, "5.1.1")
        users = [t for t in targets if self.directory.is_local_domain(domain_of(t))]
        remote = [t for t in targets if t not in users]
        if users:
            with source.open() as f:  # notices are small; the store wants one source
                data = b"Return-Path: <>\r\n" + f.read()
            await self.store.deliver(users, BytesSource(data), datetime.now(UTC))
        if remote:  # an alias that forwards: the copy goes out as a new entry
            envelope = Envelope("", tuple(EnvelopeRecipient(t) for t in remote))
            await self.queue.enqueue(new_queue_id(time.time()), envelope, source)


class Relay:
    """The running relay of one server: manager, control watcher and the queue's lock."""

    def __init__(
        self,
        config: Config,
        queue: DeliveryQueue,
        store: IMailStore,
        directory: Directory,
        reactor: Any,
    ) -> None:
        relay = config.relay
        nameservers = relay.nameservers or _system_nameservers()
        dns = DNSClient(reactor, DNSConfig(nameservers, port=relay.dns_port))
        resolver = MXResolver(
            dns,
            routes_from_config(config),
            own_names=[config.hostname],
            smtp_port=relay.smtp_port,
        )
        self.limits = ConnectionLimits(relay.max_connections, relay.max_connections_per_destination)
        self.sender = Sender(config, reactor)
        self.manager = RelayManager(
            queue,
            resolver,
            self.limits.wrap(self.sender),
            clock=reactor,
            hostname=config.hostname,
            policy=policy_from_config(config),
            random=random.SystemRandom(),
            max_parallel=relay.max_connections,
            scan_interval=relay.scan_interval,
            in_thread=queue._in_thread,
            is_local=directory.is_local_domain,
            deliver_local=LocalDelivery(store, directory, queue),
        )
        self.reactor = reactor
        self.watcher = ControlWatcher(self.manager, relay.control_interval)
        self.lock = ServerLock(queue.path)

    def start(self) -> None:
        """Raises L{RuntimeError} if another server runs the relay of this queue."""
        if not self.lock.try_acquire():
            raise RuntimeError(f"another server is running the queue in {self.manager.queue.path}")
        self.manager.startService()
        self.watcher.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """
        Stop; wait at most C{timeout} seconds for attempts in flight, then as long for idle
        sessions to QUIT. An attempt cut short is tried again by the next start (a recipient
        may then get a message twice, as SMTP allows).
        """
        self.watcher.stop()
        try:
            await _bounded(self.reactor, self.manager.stopService(), timeout)
        finally:
            self.lock.release()
        await _bounded(self.reactor, self.sender.pool.close(), timeout)


async def _bounded(reactor: Any, d: Deferred[Any], timeout: float) -> None:
    """Wait for C{d} (its result ignored) or C{timeout} seconds, whichever comes first."""
    done: Deferred[None] = Deferred()

    def finish(result: object = None) -> None:
        if not done.called:
            done.callback(None)

    d.addBoth(finish)
    timer = reactor.callLater(timeout, finish)
    await done
    if timer.active():
        timer.cancel()


def _system_nameservers() -> tuple[str, ...]:
    try:
        return system_nameservers() or ("127.0.0.1",)
    except Exception:  # no /etc/resolv.conf: dnspython's own default
        _log.warn("no nameservers in /etc/resolv.conf; asking 127.0.0.1")
        return ("127.0.0.1",)
