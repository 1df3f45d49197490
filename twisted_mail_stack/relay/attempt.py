"""
One delivery attempt of one queue entry: the step the manager repeats on its schedule.

L{attempt} takes the entry's pending recipients, groups them by domain, routes each domain
(L{IMXResolver}) and hands that domain's recipients to the hosts in order over one session
(C{send}, normally L{client.deliver} bound to the reactor, HELO name and TLS policy). It
returns the new L{EntryState}; it neither saves it nor schedules: the manager saves it first
(see L{state}), then bounces the C{failed} recipients, then schedules the rest with
L{schedule.next_attempt} (C{failures + 1}) or removes the entry when L{EntryState.done}.

Per domain: a permanent routing error fails its recipients (C{x-local} diagnostic); a
temporary one leaves them pending. Hosts are tried best first, each address in turn; a session
failure (refused connection, 4xx/5xx greeting, timeout, TLS) moves to the next address
(RFC 5321 5.1). The first session that runs decides: 2xx delivers a recipient, 5xx fails it,
4xx leaves it pending for the next attempt (not the next host, as Postfix does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from attrs import evolve
from twisted.internet.defer import Deferred

from ..errors import DeliveryError
from ..interfaces import IMessageSource, IMXResolver
from ..values import Envelope, MXHost
from .client import Outgoing, RecipientResult, SessionError
from .state import DELIVERED, FAILED, EntryState

__all__ = ["Send", "attempt", "domain_of"]

#: Deliver messages over one session to (host, address); see L{client.deliver}.
Send = Callable[[MXHost, str, Sequence[Outgoing]], Deferred[list[list[RecipientResult]]]]

#: Deliver the message to one recipient of a local domain (into the store, after alias
#: expansion). Fails with L{DeliveryError} (permanent: e.g. no such user, 5.1.1) or with any
#: other error, which is temporary.
LocalDeliver = Callable[[str, IMessageSource], Deferred[None]]


def _no_local(domain: str) -> bool:
    return False


def domain_of(address: str) -> str:
    """The domain of an envelope address (after the last C{@}), lower-cased."""
    return address.rpartition("@")[2].lower()


async def attempt(
    envelope: Envelope,
    source: IMessageSource,
    state: EntryState,
    *,
    resolver: IMXResolver,
    send: Send,
    now: float,
    is_local: Callable[[str], bool] = _no_local,
    deliver_local: LocalDeliver | None = None,
    progress: Callable[[EntryState], Awaitable[None]] | None = None,
) -> EntryState:
    """
    Try every pending recipient once; return the updated state (C{failures} unchanged).
    Recipients in a domain for which C{is_local} is true never go out: C{deliver_local}
    takes them (notices to local senders come this way). C{progress} (to save the state) is
    awaited after each domain that is not the last, so a crash later in the run does not
    send again to the domains already done.
    """
    domains: dict[str, list[str]] = {}
    for r in state.pending:
        domains.setdefault(domain_of(r.address), []).append(r.address)
    for n, (domain, addresses) in enumerate(domains.items(), 1):
        if deliver_local is not None and is_local(domain):
            state = await _attempt_local(source, state, addresses, deliver_local, now)
        else:
            state = await _attempt_domain(
                envelope, source, state, domain, addresses, resolver, send, now
            )
        if progress is not None and n < len(domains):
            await progress(state)
    return state


async def _attempt_local(
    source: IMessageSource,
    state: EntryState,
    addresses: list[str],
    deliver_local: LocalDeliver,
    now: float,
) -> EntryState:
    for a in addresses:
        try:
            await deliver_local(a, source)
        except DeliveryError as e:
            state = _set(state, a, e.permanent, str(e), e.enhanced, None, "x-local", now)
        except Exception as e:
            reason = f"local delivery failed: {e}"
            state = _set(state, a, False, reason, "4.3.0", None, "x-local", now)
        else:
            state = state.update(
                a,
                state=DELIVERED,
                reply="delivered to the local store",
                status="2.0.0",
                remote_mta=None,
                diagnostic_type="x-local",
                last_attempt=now,
            )
    return state


async def _attempt_domain(
    envelope: Envelope,
    source: IMessageSource,
    state: EntryState,
    domain: str,
    addresses: list[str],
    resolver: IMXResolver,
    send: Send,
    now: float,
) -> EntryState:
    try:
        hosts = await resolver.resolve(domain)
    except DeliveryError as e:
        for a in addresses:
            state = _set(state, a, e.permanent, str(e), e.enhanced, None, "x-local", now)
        return state
    wanted = set(addresses)
    recipients = tuple(r for r in envelope.recipients if r.address in wanted)
    message = Outgoing(evolve(envelope, recipients=recipients), source)
    last: EntryState | None = None
    for host in hosts:
        for address in host.addresses:
            try:
                [results] = await send(host, address, [message])
            except SessionError as e:
                last = _session_failed(state, addresses, host, address, e, now)
                continue
            return _record(state, results, host, now)
    if last is None:  # IMXResolver.resolve promises at least one address
        raise AssertionError(f"no address to try for {domain}")
    return last


def _set(
    state: EntryState,
    address: str,
    permanent: bool,
    reply: str,
    status: str,
    remote_mta: str | None,
    diagnostic_type: str,
    now: float,
) -> EntryState:
    """Record the outcome of one recipient: failed if permanent, else still pending."""
    changes = {"state": FAILED} if permanent else {}
    return state.update(
        address,
        reply=reply,
        status=status,
        remote_mta=remote_mta,
        diagnostic_type=diagnostic_type,
        last_attempt=now,
        **changes,
    )


def _session_failed(
    state: EntryState, addresses: list[str], host: MXHost, ip: str, error: SessionError, now: float
) -> EntryState:
    """Every recipient stays pending (even after a 5xx greeting) with the reason recorded."""
    reply = error.reply
    for a in addresses:
        if reply is not None:  # the server said why: report its answer, as a delay
            status = "4" + reply.status("4.0.0")[1:]
            state = _set(state, a, False, reply.text, status, host.name, "smtp", now)
        else:
            reason = f"{host.name}[{ip}]:{host.port}: {error}"
            status = "4.4.1" if error.stage == "connect" else "4.4.2"
            state = _set(state, a, False, reason, status, None, "x-local", now)
    return state


def _record(
    state: EntryState, results: list[RecipientResult], host: MXHost, now: float
) -> EntryState:
    for result in results:
        address = result.recipient.address
        error, reply = result.error, result.reply
        if error is not None:  # refused before sending (SMTPUTF8, SIZE, 8BITMIME)
            state = _set(
                state,
                address,
                error.permanent,
                str(error),
                error.enhanced,
                host.name,
                "x-local",
                now,
            )
        elif reply is not None and reply.ok:
            state = state.update(
                address,
                state=DELIVERED,
                reply=reply.text,
                status=reply.status("2.0.0"),
                remote_mta=host.name,
                diagnostic_type="smtp",
                last_attempt=now,
            )
        elif reply is not None:
            status = reply.status("5.0.0")
            state = _set(
                state, address, reply.permanent, reply.text, status, host.name, "smtp", now
            )
    return state
