"""
The IMAP4rev1 server session (RFC 3501) and its factories, over the mailbox contract and
twisted.cred.

Client bytes go through the sans-IO framer and parser; commands run one at a time, in the order
received (a pipelining client waits in the queue). A command that is wrong for the state gets
BAD before it touches anything. Untagged updates of the selected mailbox are sent before each
tagged response and while idling, following RFC 3501 7.4.1.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from typing import TYPE_CHECKING, Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import LoginFailed
from twisted.cred.portal import Portal
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..auth.policy import PlaintextPolicy, plaintext_allowed
from ..auth.sasl import MECHANISMS, Challenge, SASLMechanism, create_mechanism
from ..clientlimits import ClientLimits, client_key
from ..config import IMAPConfig
from ..errors import SASLError
from ..interfaces import IAccount
from ..streaming import TransferStopped, set_nodelay
from ..tls import TLSSettings
from . import _commands as c
from . import _format as fmt
from ._framer import ContinuationRequest, Fatal, Framer, FramerEvent, RawCommand, Rejected
from ._parser import ParseError, parse_command, parse_done, parse_sasl_response
from ._session import ANSWERED, Refusal, Reply, bad, mailbox_refusal
from .cache import MessageCache
from .mailboxcmds import MailboxCommands
from .messagecmds import MessageCommands
from .selected import ListingCache, SelectedMailbox
from .spool import LiteralFile, remove_stale

if TYPE_CHECKING:
    from ..service import MailStack

__all__ = ["IMAP4Server", "IMAP4Factory", "build_imap", "build_imaps", "CAPABILITIES"]

_log = Logger()

#: What an authenticated session can use (RFC 3501 7.2.1 and the extensions' RFCs).
CAPABILITIES = (
    b"IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN "
    b"SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED CONDSTORE"
)
_PREAUTH_BASE = b"IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE"
#: Largest literal an unauthenticated client may send (a LOGIN password, a SASL-IR response).
_PREAUTH_LITERAL = 64 * 1024
#: Queued commands above which reading pauses until the session catches up.
_QUEUE_HIGH = 128
#: Literals above this size go to a spool file instead of memory (an APPENDed message).
_SPOOL_OVER = 64 * 1024


class IMAP4Factory(Factory):
    """
    Builds L{IMAP4Server} sessions. C{implicit_tls}: the listener wraps every connection in TLS
    (port 993); otherwise C{tls}, if given, is offered through STARTTLS. Large literals are
    spooled to files in C{spool_dir} (the system's temporary directory if None).
    """

    noisy = False

    def __init__(
        self,
        portal: Portal,
        *,
        clock: IReactorTime,
        config: IMAPConfig | None = None,
        policy: PlaintextPolicy = PlaintextPolicy.TLS_OR_LOOPBACK,
        hostname: str = "localhost",
        tls: TLSSettings | None = None,
        implicit_tls: bool = False,
        spool_dir: str | None = None,
    ) -> None:
        self.portal = portal
        self.clock = clock
        self.config = config if config is not None else IMAPConfig()
        self.policy = policy
        self.hostname = hostname
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.spool_dir = spool_dir if spool_dir is not None else tempfile.gettempdir()
        os.makedirs(self.spool_dir, mode=0o700, exist_ok=True)
        #: Folder listings shared by the sessions (see L{ListingCache}).
        self.listings = ListingCache()
        self.limits = ClientLimits(
            clock,
            self.config.max_connections_per_client,
            self.config.max_client_login_failures,
            self.config.login_failure_window,
        )

    def buildProtocol(self, addr: IAddress | None) -> IMAP4Server:
        return IMAP4Server(self)


def build_imap(stack: MailStack) -> IMAP4Factory:
    """The L{FactoryBuilder} of the C{imap} listeners (STARTTLS offered)."""
    return _build(stack, implicit_tls=False)


def build_imaps(stack: MailStack) -> IMAP4Factory:
    """The L{FactoryBuilder} of the C{imaps} listeners (the service wraps them in TLS)."""
    return _build(stack, implicit_tls=True)


def _build(stack: MailStack, implicit_tls: bool) -> IMAP4Factory:
    assert stack.portal is not None
    spool_dir = str(stack.config.data_path / "spool")
    remove_stale(spool_dir)
    return IMAP4Factory(
        stack.portal,
        clock=stack.reactor,
        config=stack.config.imap,
        policy=stack.config.auth.plaintext,
        hostname=stack.config.hostname,
        tls=stack.tls,
        implicit_tls=implicit_tls,
        # The store's file system, so that the store can hard-link an APPENDed message.
        spool_dir=spool_dir,
    )


def _expunge_allowed(command: c.Command) -> bool:
    """RFC 3501 7.4.1: no EXPUNGE response during FETCH, STORE or SEARCH (their UID forms may)."""
    if isinstance(command, c.Fetch | c.Store | c.Search):
        return command.uid
    return True


class IMAP4Server(MessageCommands, MailboxCommands, Protocol):
    """One IMAP session."""

    def __init__(self, factory: IMAP4Factory) -> None:
        self.factory = factory
        self._config = factory.config
        self.state = c.State.NOT_AUTHENTICATED
        self.closed = False
        self.account: IAccount | None = None
        self.login_name: Hashable = None
        self.listings = factory.listings
        self.selected: SelectedMailbox | None = None
        self.mailbox = None
        self.condstore = False
        self.cache = MessageCache()
        self._framer = self._new_framer()
        self._events: deque[FramerEvent] = deque()
        self._busy = False
        self._processing = False
        self._reading_paused = False
        self._secure = factory.implicit_tls
        self._client = ""
        self._counted = False
        self._errors = 0
        self._login_failures = 0
        self._sasl: tuple[str, SASLMechanism] | None = None
        self._idle_tag: str | None = None
        self._idle_flush: IDelayedCall | None = None
        self._timer: IDelayedCall | None = None
        self._sleeping: Deferred[None] | None = None
        self._logout: Callable[[], None] | None = None

    def _new_framer(self) -> Framer:
        return Framer(
            max_line_length=self._config.max_line_length,
            max_literal_size=self._config.max_literal_size,
            # Before login, a non-synchronising literal may carry at most 4096 octets (the
            # LITERAL- limit of RFC 7888 4), so that no stranger makes us buffer megabytes;
            # synchronising ones are checked when they come up (_PREAUTH_LITERAL).
            literal_minus=self.state is c.State.NOT_AUTHENTICATED,
            spool=self._open_spool,
            spool_over=_SPOOL_OVER,
        )

    def _open_spool(self, size: int) -> LiteralFile:
        return LiteralFile(self.factory.spool_dir, size)

    # -- connection ------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._client = client_key(self.transport.getPeer())
        if not self.factory.limits.connect(self._client):
            self.send(b"* BYE [UNAVAILABLE] too many connections from your address\r\n")
            self.close_connection()
            return
        self._counted = True
        set_nodelay(self.transport)
        self._timer = self.factory.clock.callLater(self._config.idle_timeout, self._timed_out)
        caps = self._capabilities()
        self.send(fmt.untagged_status(b"OK", f"{self.factory.hostname} IMAP4rev1 ready", caps))

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed = True
        for call in (self._timer, self._idle_flush):
            if call is not None and call.active():
                call.cancel()
        if self._sleeping is not None:
            self._sleeping.cancel()
        if self._counted:
            self._counted = False
            self.factory.limits.disconnect(self._client)
        self._framer.abort()
        self._drop_events()
        Deferred.fromCoroutine(self.deselect()).addErrback(
            lambda f: _log.failure("closing the selected mailbox", f)
        )
        logout, self._logout = self._logout, None
        if logout is not None:
            logout()

    def close_connection(self) -> None:
        self.closed = True
        self._drop_events()
        self.transport.loseConnection()

    def _drop_events(self) -> None:
        """Forget the queued input, releasing the spools of its commands."""
        for event in self._events:
            if isinstance(event, RawCommand):
                event.close_spools()
        self._events.clear()

    def _touch(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self._config.idle_timeout)

    def _timed_out(self) -> None:
        # RFC 3501 5.4: the autologout timer (at least 30 minutes).
        self.send(b"* BYE autologout; idle for too long\r\n")
        self.close_connection()

    # -- input -------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        self._touch()
        self._events.extend(self._framer.feed(data))
        self._process()

    def _process(self) -> None:
        if self._processing:
            return
        self._processing = True
        try:
            while not self._busy and self._events and not self.closed:
                self._event(self._events.popleft())
        finally:
            self._processing = False
        self._flow_control()

    def _flow_control(self) -> None:
        size = len(self._events)
        if not self._reading_paused and size > _QUEUE_HIGH:
            self._reading_paused = True
            self.transport.pauseProducing()
        elif self._reading_paused and size <= _QUEUE_HIGH // 4:
            self._reading_paused = False
            if not self.closed:
                self.transport.resumeProducing()

    def _event(self, event: FramerEvent) -> None:
        if isinstance(event, RawCommand):
            if self._sasl is not None:
                event.close_spools()
                self._sasl_response(event)
            elif self._idle_tag is not None:
                event.close_spools()
                self._idle_line(event)
            else:
                self._command(event)
        elif isinstance(event, ContinuationRequest):
            if self.state is c.State.NOT_AUTHENTICATED and event.size > _PREAUTH_LITERAL:
                tag = event.tag.decode("ascii") if event.tag is not None else "*"
                self.send(fmt.tagged(tag, b"BAD", "literal too big before login", b"TOOBIG"))
                self._events.extend(self._framer.refuse_literal())
                self._count_error()
                return
            self.send(fmt.continuation(b"Ready for literal data"))
            self._events.extend(self._framer.accept_literal())
        elif isinstance(event, Rejected):
            self.send(fmt.rejected_response(event))
            self._count_error()
        elif isinstance(event, Fatal):
            self.send(fmt.untagged_status(b"BYE", event.reason))
            self.close_connection()

    def _count_error(self) -> None:
        self._errors += 1
        if self._errors >= self._config.max_errors:
            self.send(b"* BYE too many bad commands\r\n")
            self.close_connection()

    def _command(self, raw: RawCommand) -> None:
        parsed = parse_command(raw)
        if isinstance(parsed, ParseError) or not isinstance(parsed.command, c.Append):
            raw.close_spools()  # only APPEND reads a spool after parsing
        if isinstance(parsed, ParseError):
            self.send(fmt.parse_error_response(parsed))
            if parsed.status == "BAD":
                self._count_error()
            return
        tag, command = parsed.tag, parsed.command
        if not c.valid_states(command) & self.state:
            raw.close_spools()
            self.send(fmt.tagged(tag, b"BAD", f"{_name(command)} is not valid in this state"))
            self._count_error()
            return
        handler = getattr(self, "_cmd_" + type(command).__name__.lower())
        self._run(self._execute(tag, command, handler), raw)

    def _run(self, coroutine: Coroutine[Any, Any, None], raw: RawCommand | None = None) -> None:
        self._busy = True
        d = Deferred.fromCoroutine(coroutine)
        d.addErrback(self._crashed)
        if raw is not None and raw.spools:
            d.addBoth(_release, raw)
        d.addBoth(self._finished)

    def _finished(self, _: object) -> None:
        self._busy = False
        self._process()

    def _crashed(self, failure: Failure) -> None:
        if not failure.check(CancelledError, TransferStopped):
            _log.failure("IMAP session failed", failure)
        if not self.closed:
            self.send(b"* BYE [SERVERBUG] internal server error\r\n")
            self.close_connection()

    async def _execute(
        self, tag: str, command: c.Command, handler: Callable[..., Coroutine[Any, Any, Reply]]
    ) -> None:
        try:
            reply = await handler(tag, command)
        except Refusal as e:
            reply = e.reply
        except (TransferStopped, CancelledError):
            return
        except ValueError as e:
            reply = Reply(b"BAD", str(e))
        except Exception as e:
            refusal = mailbox_refusal(e)
            if refusal is None:
                _log.failure("IMAP {command} failed", command=_name(command))
                refusal = Refusal("internal server error", "SERVERBUG")
            reply = refusal.reply
        if reply is ANSWERED or self.closed:
            return
        try:
            await self.flush(expunge=_expunge_allowed(command))
        except Exception:
            _log.failure("IMAP untagged updates failed")
        if reply.status == b"BAD":
            self._count_error()
        self.send(fmt.tagged(tag, reply.status, reply.text, reply.code))

    # -- any state ------------------------------------------------------------------------------

    def _plaintext_allowed(self) -> bool:
        return plaintext_allowed(
            self.factory.policy, secure=self._secure, peer=self.transport.getPeer()
        )

    def _capabilities(self) -> bytes:
        if self.state is not c.State.NOT_AUTHENTICATED:
            return b"CAPABILITY " + CAPABILITIES
        caps = [b"CAPABILITY", _PREAUTH_BASE]
        if not self._secure and self.factory.tls is not None:
            caps.append(b"STARTTLS")
        if self._plaintext_allowed():
            caps += [b"AUTH=" + name.encode("ascii") for name in MECHANISMS]
        else:
            caps.append(b"LOGINDISABLED")  # RFC 3501 6.2.3
        return b" ".join(caps)

    async def _cmd_capability(self, tag: str, command: c.Capability) -> Reply:
        self.send(fmt.untagged(self._capabilities()))
        return Reply(text="CAPABILITY completed")

    async def _cmd_noop(self, tag: str, command: c.Noop) -> Reply:
        if self.mailbox is not None:
            await self.mailbox.refresh()
        return Reply(text="NOOP completed")

    async def _cmd_logout(self, tag: str, command: c.Logout) -> Reply:
        self.send(b"* BYE logging out\r\n" + fmt.tagged(tag, b"OK", "LOGOUT completed"))
        self.close_connection()
        return ANSWERED

    # -- not authenticated ----------------------------------------------------------------------

    async def _cmd_starttls(self, tag: str, command: c.StartTLS) -> Reply:
        if self._secure:
            raise bad("TLS is already active")
        if self.factory.tls is None:
            raise bad("TLS is not available")
        self.send(fmt.tagged(tag, b"OK", "begin TLS negotiation now"))
        # RFC 3501 6.2.1 (and CVE-2011-0411): what the client pipelined in the clear is dropped.
        self._drop_events()
        self._framer.abort()
        self._framer = self._new_framer()
        self.transport.startTLS(self.factory.tls.server_options())
        self._secure = True
        return ANSWERED

    def _require_plaintext(self) -> None:
        if not self._plaintext_allowed():
            hint = "; use STARTTLS first" if self.factory.tls is not None else ""
            raise Refusal(f"plaintext authentication is disabled{hint}", "PRIVACYREQUIRED")

    async def _cmd_login(self, tag: str, command: c.Login) -> Reply:
        self._require_plaintext()
        return await self._login(UsernamePassword(command.user, command.password))

    async def _cmd_authenticate(self, tag: str, command: c.Authenticate) -> Reply:
        mechanism = create_mechanism(command.mechanism)
        if mechanism is None:
            raise Refusal("unsupported authentication mechanism", "CANNOT")
        self._require_plaintext()
        try:
            result = mechanism.start(command.initial_response)
        except SASLError as e:
            raise bad(str(e)) from None
        return await self._sasl_result(tag, mechanism, result)

    async def _sasl_result(
        self, tag: str, mechanism: SASLMechanism, result: Challenge | UsernamePassword
    ) -> Reply:
        if isinstance(result, Challenge):
            self._sasl = (tag, mechanism)
            self.send(fmt.continuation(result.encoded))
            return ANSWERED
        return await self._login(result)

    def _sasl_response(self, raw: RawCommand) -> None:
        assert self._sasl is not None
        (tag, mechanism), self._sasl = self._sasl, None
        line = parse_sasl_response(raw, tag)

        async def step() -> Reply:
            if isinstance(line, ParseError):
                raise bad(line.text)
            if line is None:
                raise bad("AUTHENTICATE cancelled")  # RFC 3501 6.2.2
            try:
                result = mechanism.receive(line)
            except SASLError as e:
                raise bad(str(e)) from None
            return await self._sasl_result(tag, mechanism, result)

        async def handler(tag: str, command: c.Command) -> Reply:
            return await step()

        self._run(self._execute(tag, c.Noop(), handler))

    async def _login(self, credentials: UsernamePassword) -> Reply:
        limits = self.factory.limits
        if limits.logins_blocked(self._client):
            raise Refusal("too many failed logins from your address; try later", "UNAVAILABLE")
        try:
            _, account, logout = await self.factory.portal.login(credentials, None, IAccount)
        except LoginFailed:
            return await self._login_failed()
        if self.closed:
            logout()
            return ANSWERED
        self.account, self._logout = IAccount(account), logout
        self.login_name = credentials.username
        self.state = c.State.AUTHENTICATED
        self._framer.literal_minus = False
        self._sasl = None
        return Reply(text="logged in", code=self._capabilities())

    async def _login_failed(self) -> Reply:
        self._login_failures += 1
        self.factory.limits.login_failed(self._client)
        delay = self._config.login_failure_delay
        if delay > 0:
            self._sleeping = deferLater(self.factory.clock, delay)
            try:
                await self._sleeping
            finally:
                self._sleeping = None
        if self._login_failures >= self._config.max_login_failures:
            self.send(fmt.untagged_status(b"BYE", "too many failed logins"))
            self.close_connection()
            return ANSWERED
        return Reply(b"NO", "invalid user name or password", "AUTHENTICATIONFAILED")

    # -- IDLE (RFC 2177) --------------------------------------------------------------------------

    async def _cmd_idle(self, tag: str, command: c.Idle) -> Reply:
        self._idle_tag = tag
        self.send(fmt.continuation(b"idling"))
        await self.flush(expunge=True)
        return ANSWERED

    def mailbox_changed(self, selected: SelectedMailbox) -> None:
        if self._idle_tag is None or selected is not self.selected or self.closed:
            return
        if self._idle_flush is None or not self._idle_flush.active():
            # On the next turn: one push for all the changes one operation makes.
            self._idle_flush = self.factory.clock.callLater(0, self._push)

    def _push(self) -> None:
        if self._idle_tag is None or self.closed:
            return
        if self._busy:  # IDLE's own first flush is still running: look again shortly
            self._idle_flush = self.factory.clock.callLater(0.01, self._push)
            return
        d = Deferred.fromCoroutine(self.flush(expunge=True))
        d.addErrback(lambda f: _log.failure("IMAP IDLE update failed", f))

    def _idle_line(self, raw: RawCommand) -> None:
        tag, self._idle_tag = self._idle_tag, None
        assert tag is not None
        if self._idle_flush is not None and self._idle_flush.active():
            self._idle_flush.cancel()

        async def handler(tag: str, command: c.Command) -> Reply:
            if not parse_done(raw):
                raise bad("expected DONE")
            return Reply(text="IDLE terminated")

        self._run(self._execute(tag, c.Idle(), handler))


def _release(result: object, raw: RawCommand) -> object:
    """Delete the spool files of a command that has run."""
    raw.close_spools()
    return result


def _name(command: c.Command) -> str:
    name = type(command).__name__.upper()
    return ("UID " + name) if getattr(command, "uid", False) is True else name
