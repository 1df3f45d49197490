"""
The relay manager: runs every queue entry on the retry schedule until it is done.

For each entry, one run at a time: load envelope and state, L{attempt.attempt} the pending
recipients, save the state, enqueue the notifications due (failures, expiry, the delay notice)
from the null sender as entries C{<id>N<n>} (a repeat after a crash finds the id taken), save
again, then remove the entry when no recipient is pending or set a timer for the next try. A
notice is sent only once its entry's saved state counts it (L{RelayManager._confirmed}). Entry
ids must not contain C{N} (SMTP's are upper-case hex).
Timers run on the injected clock; a scan of the spool every C{scan_interval} (and at start-up)
picks up entries left by a previous process, so nothing is lost; an entry SMTP enqueues wakes
the manager at once (L{DeliveryQueue.listeners}). Operator actions (L{operate}) wait for a run
of their entry to end, and hold its next one back until they are done.

One log line per recipient per attempt, like Postfix's: C{<id>: to=<rcpt>, relay=<host>,
delay=<s>, dsn=<status>, status=sent|deferred|bounced (<reply>)}. Limits on connections are
the C{send} callable's (L{limits}); the wiring from the config is L{wiring}.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from attrs import evolve
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..interfaces import IMessageSource, IMXResolver
from ..sources import BytesSource
from ..values import Envelope, EnvelopeRecipient
from .attempt import LocalDeliver, Send, attempt
from .dsn import RecipientReport, build_dsn
from .queue import DeliveryQueue
from .schedule import Expire, RetryPolicy, next_attempt
from .state import DELIVERED, FAILED, PENDING, EntryState, RecipientState
from .timers import Timers

__all__ = ["RelayManager", "operator_bounce"]

T = TypeVar("T")
_log = Logger()


def _inline(f: Callable[[], T]) -> Deferred[T]:
    return maybeDeferred(f)


def _no_local(domain: str) -> bool:
    return False


class RelayManager(Service):
    """
    Delivers the entries of C{queue} through C{resolver} and C{send} (see L{attempt}).

    C{clock} (L{IReactorTime}) drives every timer; C{in_thread} runs the blocking read of an
    original message for a notification (default: inline). At most C{max_parallel} entries
    are tried at once. C{hostname} names this MTA in notifications. Recipients in domains for
    which C{is_local} is true go to C{deliver_local} (see L{attempt.attempt}), never out.
    """

    def __init__(
        self,
        queue: DeliveryQueue,
        resolver: IMXResolver,
        send: Send,
        *,
        clock: Any,
        hostname: str,
        policy: RetryPolicy | None = None,
        random: _random.Random | None = None,
        max_parallel: int = 20,
        scan_interval: float = 300.0,
        in_thread: Callable[[Callable[[], Any]], Deferred[Any]] = _inline,
        is_local: Callable[[str], bool] | None = None,
        deliver_local: LocalDeliver | None = None,
    ) -> None:
        self.queue = queue
        self.resolver = resolver
        self.send = send
        self.clock = clock
        self.hostname = hostname
        self.policy = policy or RetryPolicy()
        self.random = random or _random.Random()
        self.scan_interval = scan_interval
        self._in_thread = in_thread
        self._is_local = is_local or _no_local
        self._deliver_local = deliver_local
        self._slots = DeferredSemaphore(max_parallel)
        self._timers = Timers(clock, self._start)
        self._running: dict[str, Deferred[None]] = {}
        self._again: set[str] = set()
        self._scans: list[Deferred[None]] = []
        self._scanner: LoopingCall | None = None
        self._held: set[str] = set()
        self._ops: list[Deferred[None]] = []
        self._quiet: set[str] = set()  # notices we enqueue ourselves (woken once confirmed)

    # -- service -------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._scanner = LoopingCall(self._scan_logged)
        self._scanner.clock = self.clock
        self._scanner.start(self.scan_interval, now=True).addErrback(
            lambda f: _log.failure("queue scan stopped", f)
        )
        self.queue.listeners.append(self._enqueued)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        if self._enqueued in self.queue.listeners:
            self.queue.listeners.remove(self._enqueued)
        if self._scanner is not None and self._scanner.running:
            self._scanner.stop()
        self._timers.clear()
        return DeferredList(list(self._running.values()))

    def wait_idle(self) -> Deferred[None]:
        """Fires once no entry is being tried nor changed (timers may still be set)."""

        async def run() -> None:
            while self._running or self._scans or self._ops:
                await DeferredList([*self._running.values(), *self._scans, *self._ops])

        return Deferred.fromCoroutine(run())

    # -- scheduling ------------------------------------------------------------------

    def scan(self) -> Deferred[None]:
        """Schedule every entry of the spool not yet known, at its saved next attempt."""
        d = Deferred.fromCoroutine(self._scan())
        self._scans.append(d)

        def done(result: object) -> object:
            self._scans.remove(d)
            return result

        d.addBoth(done)
        return d

    def _scan_logged(self) -> Deferred[None]:
        # A failed scan (a spool I/O error) is logged; the next one runs as planned.
        return self.scan().addErrback(lambda f: _log.failure("queue scan failed", f))

    async def _scan(self) -> None:
        # One read of the whole spool (not a thread round trip per entry): a start with
        # 100,000 entries queued schedules them in seconds.
        for queue_id, when in await self.queue.next_attempts():
            if queue_id in self._timers or queue_id in self._running:
                continue
            self.schedule(queue_id, when)

    def schedule(self, queue_id: str, when: float) -> None:
        """Try C{queue_id} at C{when} (clock seconds; the past means now); not once stopped."""
        self._timers.cancel(queue_id)
        if not self.running:  # a run that ends after stopService sets no timer
            return
        self._timers.set(queue_id, when - self.clock.seconds())

    def _enqueued(self, queue_id: str) -> None:
        if queue_id in self._quiet:
            self._quiet.discard(queue_id)
        elif self.running:
            self.wake(queue_id)

    def wake(self, queue_id: str) -> None:
        """Try C{queue_id} now (a new entry, or an operator's retry)."""
        self.schedule(queue_id, 0.0)

    def flush(self) -> Deferred[None]:
        """Try every entry now."""

        async def run() -> None:
            for queue_id in await self.queue.list_ids():
                self.wake(queue_id)

        return self._track(Deferred.fromCoroutine(run()))

    def _track(self, d: Deferred[None]) -> Deferred[None]:
        """Count C{d} as work in progress for L{wait_idle} until it fires."""
        self._ops.append(d)

        def done(result: object) -> object:
            self._ops.remove(d)
            return result

        return d.addBoth(done)

    def _start(self, queue_id: str) -> None:
        self._timers.cancel(queue_id)
        if queue_id in self._running or queue_id in self._held:
            self._again.add(queue_id)
            return
        d = self._slots.run(lambda: Deferred.fromCoroutine(self._process(queue_id)))
        self._running[queue_id] = d

        def done(result: object) -> None:
            del self._running[queue_id]
            if queue_id in self._again:
                self._again.discard(queue_id)
                self.wake(queue_id)

        d.addErrback(lambda f: _log.failure("relay of {queue_id} failed", f, queue_id=queue_id))
        d.addBoth(done)

    # -- one run ------------------------------------------------------------------------

    async def _process(self, queue_id: str) -> None:
        if not await self._confirmed(queue_id):
            return  # an unconfirmed notice: its entry's run confirms it and wakes it
        try:
            envelope, source = await self.queue.load(queue_id)
        except KeyError:
            return  # removed meanwhile
        state = await self.queue.load_state(queue_id) or EntryState.initial(envelope)
        arrival = (await self.queue.queued_at(queue_id)).timestamp()
        now = self.clock.seconds()
        if state.pending:
            state = await attempt(
                envelope,
                source,
                state,
                resolver=self.resolver,
                send=self.send,
                now=now,
                is_local=self._is_local,
                deliver_local=self._deliver_local,
                progress=lambda done: self.queue.save_state(queue_id, done),
            )
            self._log_attempt(queue_id, state, arrival, now)
        if state.pending:
            state = self._reschedule(queue_id, state, envelope, arrival, now)
        await self.queue.save_state(queue_id, state)
        state = await self._notify(queue_id, envelope, source, state, arrival)
        if state.done:
            await self.queue.remove(queue_id)
        else:
            self.schedule(queue_id, state.next_attempt)

    async def _confirmed(self, queue_id: str) -> bool:
        """
        False for a notice C{<parent>N<n>} whose parent entry exists and has not yet saved
        C{notices > n}: after a crash between its enqueue and that save, the parent's next run
        finds the id taken and confirms it. Sending it before would let that run enqueue it again.
        """
        parent, marker, number = queue_id.rpartition("N")
        if not marker or not parent or not number.isdigit():
            return True
        try:
            await self.queue.queued_at(parent)
        except KeyError:
            return True  # the parent is gone, and it goes only once its notices are confirmed
        state = await self.queue.load_state(parent)
        if state is None:
            # Never saved, or removed since we looked: a removal takes the envelope first and
            # the state last, so a parent still there now has truly not saved yet.
            try:
                await self.queue.queued_at(parent)
            except KeyError:
                return True
            return False
        return state.notices > int(number)

    def _reschedule(
        self, queue_id: str, state: EntryState, envelope: Envelope, arrival: float, now: float
    ) -> EntryState:
        failures = state.failures + 1
        decision = next_attempt(
            self.policy,
            arrival=arrival,
            now=now,
            failures=failures,
            sender=envelope.sender,
            random=self.random,
        )
        if isinstance(decision, Expire):  # the last error stays as the reason (Postfix too)
            for r in state.pending:
                state = state.update(r.address, state=FAILED, status=r.status or "4.4.7")
                _log.info(
                    "{queue_id}: to=<{to}>, delay={delay:.1f}, dsn={dsn}, status=expired, "
                    "returned to sender ({reply})",
                    queue_id=queue_id,
                    to=r.address,
                    delay=now - arrival,
                    dsn=r.status or "4.4.7",
                    reply=r.reply,
                )
            return evolve(state, failures=failures)
        return evolve(state, failures=failures, next_attempt=decision.when)

    async def _notify(
        self,
        queue_id: str,
        envelope: Envelope,
        source: IMessageSource,
        state: EntryState,
        arrival: float,
    ) -> EntryState:
        if state.unnotified:
            state = await self._notice(
                queue_id, envelope, source, state, arrival, "failed", state.mark_notified()
            )
        now = self.clock.seconds()
        if state.pending and self.policy.warn_delay(arrival, now, state.warned):
            state = await self._notice(
                queue_id, envelope, source, state, arrival, "delayed", evolve(state, warned=True)
            )
        return state

    async def _notice(
        self,
        queue_id: str,
        envelope: Envelope,
        source: IMessageSource,
        state: EntryState,
        arrival: float,
        action: str,
        after: EntryState,
    ) -> EntryState:
        """Send notice C{action} about C{state}; save and return C{after}, counting it."""
        sent = await self._send_notice(queue_id, envelope, source, state, arrival, action)
        after = evolve(after, notices=state.notices + 1)
        await self.queue.save_state(queue_id, after)
        if sent:
            self.wake(sent)
        return after

    async def _send_notice(
        self,
        queue_id: str,
        envelope: Envelope,
        source: IMessageSource,
        state: EntryState,
        arrival: float,
        action: str,
    ) -> str | None:
        """Enqueue (without waking) notice number C{state.notices}; return its id if any."""
        chosen = state.unnotified if action == "failed" else state.pending
        until = _dt(self.policy.expires_at(arrival, envelope.sender))
        reports = [_report(r, action, until) for r in chosen]

        def build() -> bytes | None:
            with source.open() as original:
                return build_dsn(
                    envelope,
                    reports,
                    original,
                    reporting_mta=self.hostname,
                    arrival=_dt(arrival),
                    now=_dt(self.clock.seconds()),
                    queue_id=queue_id,
                )

        data = await self._in_thread(build)
        if data is None:
            return None  # a bounce (null sender), or nobody asked
        notice = Envelope("", (EnvelopeRecipient(envelope.sender),), smtputf8=envelope.smtputf8)
        notice_id = f"{queue_id}N{state.notices}"
        self._quiet.add(notice_id)
        try:
            await self.queue.enqueue(notice_id, notice, BytesSource(data))
        except FileExistsError:
            pass  # enqueued before a crash: not twice
        finally:
            self._quiet.discard(notice_id)
        return notice_id

    # -- operator actions -------------------------------------------------------------

    def operate(self, queue_id: str, action: str) -> Deferred[None]:
        """
        Apply an operator's C{action} to entry C{queue_id}: C{retry} (try it now), C{delete}
        (remove it, no notice), or C{bounce} (fail its pending recipients for good, notify the
        sender, remove it). Fails with L{KeyError} if there is no such entry.
        """
        if action not in ("retry", "delete", "bounce"):
            raise ValueError(f"unknown action {action!r}")
        return self._track(Deferred.fromCoroutine(self._operate(queue_id, action)))

    async def _operate(self, queue_id: str, action: str) -> None:
        await self.queue.queued_at(queue_id)  # KeyError if missing
        self._held.add(queue_id)
        try:
            while queue_id in self._running:  # let a run in progress finish first
                await DeferredList([self._running[queue_id]])
            if action == "delete":
                self._timers.cancel(queue_id)
                self._again.discard(queue_id)
                await self.queue.remove(queue_id)
                _log.info("{queue_id}: removed by the operator", queue_id=queue_id)
                return
            if action == "bounce":
                envelope, _ = await self.queue.load(queue_id)
                state = await self.queue.load_state(queue_id) or EntryState.initial(envelope)
                await self.queue.save_state(queue_id, operator_bounce(state, self.clock.seconds()))
                _log.info("{queue_id}: bounced by the operator", queue_id=queue_id)
        finally:
            self._held.discard(queue_id)
        self._again.discard(queue_id)
        self.wake(queue_id)

    def _log_attempt(self, queue_id: str, state: EntryState, arrival: float, now: float) -> None:
        for r in state.recipients:
            if r.last_attempt == now:
                _log.info(
                    "{queue_id}: to=<{to}>, relay={relay}, delay={delay:.1f}, dsn={dsn}, "
                    "status={state} ({reply})",
                    queue_id=queue_id,
                    to=r.address,
                    relay=r.remote_mta or ("local" if r.diagnostic_type == "x-local" else "none"),
                    delay=now - arrival,
                    dsn=r.status,
                    state=_LOG_STATUS[r.state],
                    reply=r.reply,
                )


_LOG_STATUS = {DELIVERED: "sent", PENDING: "deferred", FAILED: "bounced"}


def operator_bounce(state: EntryState, now: float) -> EntryState:
    """C{state} with every pending recipient failed by the operator (to be notified)."""
    for r in state.pending:
        state = state.update(
            r.address,
            state=FAILED,
            status="5.0.0",
            reply="delivery cancelled by the mail system administrator",
            remote_mta=None,
            diagnostic_type="x-local",
            last_attempt=now,
        )
    return evolve(state, next_attempt=0.0)


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _report(r: RecipientState, action: str, until: datetime) -> RecipientReport:
    fallback = "5.0.0" if action == "failed" else "4.0.0"
    return RecipientReport(
        r.address,
        action,
        r.status or fallback,
        remote_mta=r.remote_mta if r.diagnostic_type == "smtp" else None,
        diagnostic=r.reply,
        diagnostic_type=r.diagnostic_type,
        last_attempt=_dt(r.last_attempt) if r.last_attempt is not None else None,
        will_retry_until=until if action == "delayed" else None,
    )
