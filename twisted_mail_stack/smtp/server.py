"""
The ESMTP server session (RFC 5321) and its factories: MX (port 25) and submission (RFC 6409,
587 with STARTTLS and 465 with implicit TLS).

One L{SMTPSession} per connection. Input is handled one command at a time: while a command
waits for something (a policy hook, a login, the disk), later input stays buffered, so
PIPELINING (RFC 2920) needs nothing more. The grammar lives in L{_wire}, message bodies in
L{_data}, and making copies durable in L{delivery}.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from attrs import evolve
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorThreads
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..auth.directory import Directory
from ..auth.policy import PlaintextPolicy, plaintext_allowed
from ..auth.sasl import CANCEL, Challenge, SASLMechanism, create_mechanism
from ..config import SenderRule, SMTPConfig
from ..directwrite import write_now
from ..errors import SASLError
from ..interfaces import IAccount, IDeliveryQueue, IMailStore, ISMTPPolicy
from ..values import Address, Envelope, EnvelopeRecipient, SMTPClientInfo, SMTPReply
from . import _wire
from ._data import BodySink, DataReader
from .delivery import Spool, deliver, new_queue_id, received_header
from .limits import ConnectionCounter, FailureThrottle, Networks

__all__ = ["SMTPSession", "SMTPFactory", "build_mx", "build_submission", "build_submissions"]

_log = Logger()

#: Stop reading from a client while this much input waits unprocessed.
_BUFFER_HIGH = 256 * 1024
_AUTH_LINE_MAX = 12288  # RFC 4954 4: at least 12288 octets for AUTH lines
_AUTH_FAILURE_WINDOW = 900.0
#: Messages up to this size wait in memory, not in a spool file (64 clients: 4 MiB at most).
_SPOOL_IN_MEMORY = 64 * 1024
#: The log line of an accepted message (one per message, for operators to grep).
_ACCEPTED = (
    "smtp accepted id={queue_id} from=<{sender}> to={to} size={size} client={client} "
    "helo={helo} tls={tls} auth={auth}"
)

_HELP = "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH"


class State(enum.Enum):
    GREETING = "greeting"  # connect policy pending
    COMMAND = "command"
    AUTH = "auth"  # waiting for a SASL response line
    DATA = "data"
    BDAT = "bdat"
    BUSY = "busy"  # a command is being handled
    CLOSED = "closed"


class _Reject(Exception):
    """Answer the current command with this reply."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(text)
        self.reply = (code, enhanced, text)


class _Recipient:
    __slots__ = ("path", "users", "remote")

    def __init__(self, path: str, users: list[str], remote: list[EnvelopeRecipient]) -> None:
        self.path = path
        self.users = users
        self.remote = remote


class _Transaction:
    """One mail transaction: MAIL, RCPTs, then DATA or BDAT chunks."""

    def __init__(self, sender: str, params: dict[str, str | None]) -> None:
        self.sender = sender
        self.params = params
        self.recipients: list[_Recipient] = []
        self.queue_id = ""
        self.spool: Spool | None = None
        self.sink: BodySink | None = None
        self.reader: DataReader | None = None
        self.header_size = 0
        self.return_path_size = 0
        self.bdat_failed: tuple[int, str, str] | None = None
        self.used_data = False

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.params

    def envelope(self, recipients: tuple[EnvelopeRecipient, ...]) -> Envelope:
        p = self.params
        return Envelope(
            sender=self.sender,
            recipients=recipients,
            body=(p.get("BODY") or "7BIT").upper(),
            smtputf8=self.smtputf8,
            ret=(p.get("RET") or "").upper() or None,
            envid=_wire.decode_xtext(p.get("ENVID") or "") or None,
        )


def _host_port(address: object) -> tuple[str, int]:
    if isinstance(address, IPv4Address | IPv6Address):
        return address.host, address.port
    if isinstance(address, UNIXAddress):
        return str(address.name or "unix"), 0
    return "unknown", 0


def _literal(host: str) -> str:
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"


class SMTPSession(Protocol):
    """One SMTP connection."""

    factory: SMTPFactory

    def __init__(self) -> None:
        self.state = State.GREETING
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long command line
        self._paused = False
        self._timer: IDelayedCall | None = None
        self.host = "unknown"
        self.port = 0
        self.helo: str | None = None
        self.esmtp = False
        self.tls = False
        self.user: str | None = None
        self._logout: Callable[[], None] | None = None
        self._auth: SASLMechanism | None = None
        self._auth_failures = 0
        self._errors = 0
        self._txn: _Transaction | None = None
        self._bdat_left = 0
        self._bdat_last = False
        self._bdat_refusal: tuple[int, str, str] | None = None
        self._close_after_busy = False
        self._counted = False

    # -- connection --------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.host, self.port = _host_port(self.transport.getPeer())  # type: ignore[union-attr]
        self.tls = self.factory.implicit_tls
        if not self.factory.connections.acquire(self.host):
            self._write(
                _wire.format_reply(421, "4.7.0", f"{self.factory.hostname} too many connections")
            )
            self.state = State.CLOSED
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self._counted = True
        self.factory.sessions.add(self)
        self._set_timer(self.factory.config.command_timeout)
        if self.factory.policies:
            self._run(self._connect_policy())
        else:
            self._greet()

    def _greet(self) -> None:
        self.state = State.COMMAND
        name = self.factory.hostname
        self._reply(220, "", f"{name} ESMTP twisted-mail-stack ready")

    async def _connect_policy(self) -> None:
        verdict = await self._ask("connect")
        if verdict is not None and verdict.code >= 400:
            self._reply(verdict.code, verdict.enhanced, verdict.text)
            self._close()
            return
        self._greet()

    def connectionLost(self, reason: Failure | None = None) -> None:
        busy, self.state = self.state is State.BUSY, State.CLOSED
        self._cancel_timer()
        if not busy:  # a command still running (a delivery) cleans up after itself
            self._reset_transaction()
        self._end_login()
        if self._counted:
            self._counted = False
            self.factory.connections.release(self.host)
            self.factory.sessions.discard(self)

    def _close(self) -> None:
        self.state = State.CLOSED
        self._buffer.clear()
        self._cancel_timer()
        self.transport.loseConnection()  # type: ignore[union-attr]

    def shutdown(self) -> None:
        """The server is stopping: say so (421, RFC 5321 3.8) now, or after the command running."""
        if self.state is State.BUSY:
            self._close_after_busy = True
        elif self.state is not State.CLOSED:
            self._reply(421, "4.3.2", f"{self.factory.hostname} service shutting down")
            self._close()

    # -- timers ------------------------------------------------------------------------------

    def _set_timer(self, seconds: float | None) -> None:
        self._cancel_timer()
        if seconds is not None:
            self._timer = self.factory.reactor.callLater(seconds, self._timed_out)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.state is State.CLOSED:
            return
        # RFC 5321 4.5.3.2.7: the server may close after its timeout, with 421.
        self._reply(421, "4.4.2", f"{self.factory.hostname} timeout exceeded")
        self._close()

    # -- input -------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        if self._timer is not None:
            self._timer.reset(
                self.factory.config.data_timeout
                if self.state in (State.DATA, State.BDAT)
                else self.factory.config.command_timeout
            )
        self._buffer += data
        self._process()

    def _process(self) -> None:
        buffer = self._buffer
        while buffer:
            state = self.state
            if state is State.DATA:
                self._feed_data()
            elif state is State.BDAT:
                self._feed_bdat()
            elif state is State.COMMAND or state is State.AUTH:
                if not self._next_line():
                    break
            else:  # GREETING, BUSY, CLOSED
                break
        if self.state is State.CLOSED:
            return
        transport = self.transport
        if len(buffer) > _BUFFER_HIGH and not self._paused:
            self._paused = True
            transport.pauseProducing()  # type: ignore[union-attr]
        elif self._paused and len(buffer) <= _BUFFER_HIGH:
            self._paused = False
            transport.resumeProducing()  # type: ignore[union-attr]

    def _next_line(self) -> bool:
        """Handle one line from the buffer; False if no whole line is there yet."""
        buffer = self._buffer
        limit = _AUTH_LINE_MAX if self.state is State.AUTH else self.factory.config.max_line_length
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > limit:
                # RFC 5321 4.5.3.1.4 / 4.2.2: line too long; skip to its end.
                if not self._discarding:
                    self._discarding = True
                    self._error(500, "5.5.2", "line too long")
                buffer.clear()
            return False
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        if self._discarding:
            self._discarding = False
            return True
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) + 2 > limit:
            if self.state is State.AUTH:
                self._auth, self.state = None, State.COMMAND
            self._error(500, "5.5.2", "line too long")
            return True
        if self.state is State.AUTH:
            self._auth_line(line)
        else:
            self._command(line)
        return True

    # -- replies -----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        write_now(self.transport, data)

    def _reply(self, code: int, enhanced: str, text: str | Sequence[str]) -> None:
        if self.state is not State.CLOSED:
            self._write(_wire.format_reply(code, enhanced or None, text))

    def _error(self, code: int, enhanced: str, text: str) -> None:
        """A reply that counts against the session's error limit."""
        self._reply(code, enhanced, text)
        self._errors += 1
        if self._errors >= self.factory.config.max_errors and self.state is not State.CLOSED:
            self._reply(421, "4.7.0", f"{self.factory.hostname} too many errors")
            self._close()

    def _answer(self, reply: tuple[int, str, str]) -> None:
        code, enhanced, text = reply
        if code >= 400:
            self._error(code, enhanced, text)
        else:
            self._reply(code, enhanced, text)

    # -- running commands --------------------------------------------------------------------

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a command that waits for something; input waits meanwhile."""
        resume = self.state if self.state is not State.GREETING else State.COMMAND
        self.state = State.BUSY
        self._cancel_timer()
        done = Deferred.fromCoroutine(work)

        def finish(result: object) -> None:
            if isinstance(result, Failure):
                if isinstance(result.value, _Reject):
                    self.state = resume
                    self._answer(result.value.reply)
                else:
                    _log.failure("SMTP session error", result)
                    self.state = resume
                    self._reply(451, "4.3.0", "local error, try again later")
            if self.state is State.CLOSED:
                return
            if self.state is State.BUSY:
                self.state = resume
            if self._close_after_busy:
                self.shutdown()
                return
            self._set_timer(
                self.factory.config.data_timeout
                if self.state in (State.DATA, State.BDAT)
                else self.factory.config.command_timeout
            )
            self._process()

        done.addBoth(finish)

    def _command(self, line: bytes) -> None:
        try:
            command = _wire.parse_command(line)
            handler = self._handlers.get(command.verb)
            if handler is None:
                if command.verb in ("EXPN", "TURN", "ETRN", "SEND", "SOML", "SAML"):
                    raise _Reject(502, "5.5.1", "command not implemented")
                raise _Reject(500, "5.5.2", "command unrecognized")
            result = handler(self, command.argument)
        except _wire.SMTPSyntaxError as e:
            self._error(e.code, e.enhanced, e.text)
            return
        except _Reject as e:
            self._answer(e.reply)
            return
        except Exception:
            _log.failure("SMTP command failed: {line!r}", line=line[:100])
            self._reply(451, "4.3.0", "local error, try again later")
            return
        if result is not None:
            self._run(result)

    async def _ask(self, hook: str, *args: Any) -> SMTPReply | None:
        """Run the policies' C{hook} in order; the first that answers decides."""
        info = self.client_info()
        for policy in self.factory.policies:
            verdict = await getattr(policy, hook)(info, *args)
            if verdict is not None:
                return verdict  # type: ignore[no-any-return]
        return None

    async def _check_policy(self, hook: str, *args: Any) -> SMTPReply | None:
        verdict = await self._ask(hook, *args)
        if verdict is not None and verdict.code >= 400:
            raise _Reject(verdict.code, verdict.enhanced, verdict.text)
        return verdict

    def client_info(self) -> SMTPClientInfo:
        return SMTPClientInfo(
            host=self.host,
            port=self.port,
            helo=self.helo,
            tls=self.tls,
            user=self.user,
            submission=self.factory.submission,
        )

    # -- commands without a transaction --------------------------------------------------------

    def do_EHLO(self, argument: str) -> Coroutine[Any, Any, None] | None:
        return self._hello(argument, esmtp=True)

    def do_HELO(self, argument: str) -> Coroutine[Any, Any, None] | None:
        return self._hello(argument, esmtp=False)

    def _hello(self, argument: str, esmtp: bool) -> Coroutine[Any, Any, None] | None:
        name = argument.strip()
        if not name or " " in name:
            raise _Reject(501, "5.5.4", "syntax: EHLO domain-or-address-literal")
        self._reset_transaction()  # RFC 5321 4.1.4: EHLO resets like RSET
        if self.factory.policies:
            return self._hello_policy(name, esmtp)
        self._hello_done(name, esmtp, None)
        return None

    async def _hello_policy(self, name: str, esmtp: bool) -> None:
        verdict = await self._check_policy("helo", name)
        self._hello_done(name, esmtp, verdict)

    def _hello_done(self, name: str, esmtp: bool, verdict: SMTPReply | None) -> None:
        self.helo, self.esmtp = name, esmtp
        greeting = verdict.text if verdict else f"{self.factory.hostname} greets {name}"
        if not esmtp:
            self._reply(250, "", greeting)
            return
        self._reply(250, "", [greeting, *self.extensions()])

    def extensions(self) -> list[str]:
        """The EHLO keywords (RFC 5321 4.1.1.1) for this session's current state."""
        config = self.factory.config
        ext = [
            "PIPELINING",
            f"SIZE {config.max_message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
            "DSN",
        ]
        if self.factory.tls_options is not None and not self.tls:
            ext.append("STARTTLS")
        if self.user is None and self._may_auth():
            ext.append("AUTH PLAIN LOGIN")
        ext.append("HELP")
        return ext

    def _may_auth(self) -> bool:
        return plaintext_allowed(
            self.factory.plaintext,
            secure=self.tls,
            peer=self.transport.getPeer(),  # type: ignore[union-attr]
        )

    def do_NOOP(self, argument: str) -> None:
        self._reply(250, "2.0.0", "OK")

    def do_RSET(self, argument: str) -> None:
        if argument.strip():
            raise _Reject(501, "5.5.4", "RSET takes no argument")
        self._reset_transaction()
        self._reply(250, "2.0.0", "OK")

    def do_QUIT(self, argument: str) -> None:
        self._reply(221, "2.0.0", f"{self.factory.hostname} closing connection")
        self._close()

    def do_HELP(self, argument: str) -> None:
        self._reply(214, "2.0.0", [_HELP, "See RFC 5321."])

    def do_VRFY(self, argument: str) -> None:
        if not argument.strip():
            raise _Reject(501, "5.5.4", "syntax: VRFY address")
        # RFC 5321 3.5.3: 252 when the server will not verify, to avoid address harvesting.
        self._reply(252, "2.5.0", "cannot VRFY user, but will accept message and attempt delivery")

    def do_STARTTLS(self, argument: str) -> None:
        if self.factory.tls_options is None:
            raise _Reject(502, "5.5.1", "STARTTLS not available")
        if self.tls:
            raise _Reject(503, "5.5.1", "TLS already active")
        if argument.strip():
            raise _Reject(501, "5.5.4", "STARTTLS takes no argument")
        self._reply(220, "2.0.0", "ready to start TLS")
        # RFC 3207 4.2 and CVE-2011-0411: whatever the client sent in the clear after the
        # command is thrown away, and the session starts over.
        self._buffer.clear()
        self._reset_transaction()
        self._end_login()
        self.helo, self.esmtp = None, False
        self.tls = True
        self.transport.startTLS(self.factory.tls_options)  # type: ignore[union-attr]

    # -- AUTH (RFC 4954) -------------------------------------------------------------------------

    def do_AUTH(self, argument: str) -> Coroutine[Any, Any, None] | None:
        if not self.esmtp:
            raise _Reject(503, "5.5.1", "send EHLO first")
        if self.user is not None:
            raise _Reject(503, "5.5.1", "already authenticated")
        if self._txn is not None:
            raise _Reject(503, "5.5.1", "AUTH not allowed during a mail transaction")
        parts = argument.split()
        if not parts or len(parts) > 2:
            raise _Reject(501, "5.5.4", "syntax: AUTH mechanism [initial-response]")
        if self.factory.auth_throttle.blocked(self.host):
            raise _Reject(454, "4.7.0", "too many authentication failures, try again later")
        mechanism = create_mechanism(parts[0])
        if mechanism is None:
            raise _Reject(504, "5.5.4", "unrecognized authentication mechanism")
        if self.factory.portal is None or not self._may_auth():
            raise _Reject(
                538, "5.7.11", "encryption required for requested authentication mechanism"
            )
        initial = parts[1].encode("ascii", "replace") if len(parts) == 2 else None
        self._auth = mechanism
        try:
            step = mechanism.start(initial)
        except SASLError as e:
            self._auth = None
            raise _Reject(501, "5.5.2", str(e)) from None
        return self._auth_step(step)

    def _auth_line(self, line: bytes) -> None:
        mechanism, self._auth = self._auth, None
        self.state = State.COMMAND
        if mechanism is None:  # cannot happen: AUTH state always has one
            return
        if line.strip() == CANCEL:
            self._error(501, "5.0.0", "authentication cancelled")
            return
        try:
            step = mechanism.receive(line)
        except SASLError as e:
            self._error(501, "5.5.2", str(e))
            return
        self._auth = mechanism
        work = self._auth_step(step)
        if work is not None:
            self._run(work)

    def _auth_step(self, step: Challenge | Any) -> Coroutine[Any, Any, None] | None:
        if isinstance(step, Challenge):
            self._reply(334, "", step.encoded.decode("ascii"))
            self.state = State.AUTH
            return None
        self._auth = None
        return self._login(step)

    async def _login(self, credentials: Any) -> None:
        factory = self.factory
        assert factory.portal is not None
        try:
            _, avatar, logout = await factory.portal.login(credentials, None, IAccount)
        except UnauthorizedLogin:
            factory.auth_throttle.record(self.host)
            self._auth_failures += 1
            # Slow down password guessing (every failure waits, whoever the client is).
            await deferLater(factory.reactor, factory.config.auth_failure_delay, lambda: None)
            self._error(535, "5.7.8", "authentication credentials invalid")
            if (
                self._auth_failures >= factory.config.max_auth_failures
                and self.state is not State.CLOSED
            ):
                self._reply(421, "4.7.0", f"{factory.hostname} too many authentication failures")
                self._close()
            return
        self.user = IAccount(avatar).user
        self._logout = logout
        self._reply(235, "2.7.0", "authentication successful")

    def _end_login(self) -> None:
        logout, self._logout = self._logout, None
        self.user = None
        if logout is not None:
            logout()

    # -- the mail transaction ----------------------------------------------------------------------

    def _reset_transaction(self) -> None:
        txn, self._txn = self._txn, None
        if txn is not None and txn.spool is not None:
            txn.spool.discard()

    def do_MAIL(self, argument: str) -> Coroutine[Any, Any, None] | None:
        factory = self.factory
        if self.helo is None:
            raise _Reject(503, "5.5.1", "send HELO or EHLO first")
        if self._txn is not None:
            raise _Reject(503, "5.5.1", "nested MAIL command")
        if factory.submission and self.user is None:
            raise _Reject(530, "5.7.0", "authentication required")  # RFC 4954 6
        if argument[:5].upper() != "FROM:":
            raise _Reject(501, "5.5.4", "syntax: MAIL FROM:<address> [parameters]")
        path, rest = _wire.parse_path(argument[5:].lstrip(" "), utf8=True, null_ok=True)
        params = self._params(rest, ("SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH"))
        if not str(path).isascii() and "SMTPUTF8" not in params:
            raise _Reject(553, "5.6.7", "non-ASCII address needs SMTPUTF8")  # RFC 6531 3.7.4.1
        _wire.check_mail_params(params, factory.config.max_message_size)
        sender = str(path)
        if not path.is_null:
            try:
                sender = (
                    f"{_wire.quote_local(path.local)}@{Address(path.local, path.domain).domain}"
                )
            except ValueError:
                raise _Reject(553, "5.1.7", "bad sender address") from None
        if factory.submission and not self._owns(path):
            raise _Reject(553, "5.7.1", f"sender <{sender}> not owned by user {self.user}")
        if factory.policies:
            return self._mail_policy(sender, params)
        self._txn = _Transaction(sender, params)
        self._reply(250, "2.1.0", "OK")
        return None

    async def _mail_policy(self, sender: str, params: dict[str, str | None]) -> None:
        await self._check_policy("mail", sender, params)
        self._txn = _Transaction(sender, params)
        self._reply(250, "2.1.0", "OK")

    def _params(self, text: str, known: Sequence[str]) -> dict[str, str | None]:
        params = _wire.parse_params(text)
        if params and not self.esmtp:
            raise _Reject(555, "5.5.4", "parameters need EHLO")
        _wire.check_known(params, known)
        return params

    def _owns(self, path: _wire.MailboxPath) -> bool:
        """May the logged-in user send as C{path}? (RFC 6409 6.1: the sender is checked.)"""
        if self.factory.config.submission_senders is SenderRule.ANY:
            return True
        if path.is_null or path.is_literal or self.user is None:
            return False
        try:
            address = Address(path.local, path.domain)
        except ValueError:
            return False
        if address.key == self.user:
            return True
        return self.user in (self.factory.directory.resolve(address) or [])

    def do_RCPT(self, argument: str) -> Coroutine[Any, Any, None] | None:
        factory = self.factory
        txn = self._txn
        if txn is None:
            raise _Reject(503, "5.5.1", "need MAIL before RCPT")
        if txn.spool is not None:
            raise _Reject(503, "5.5.1", "RCPT after the message began")
        if argument[:3].upper() != "TO:":
            raise _Reject(501, "5.5.4", "syntax: RCPT TO:<address> [parameters]")
        path, rest = _wire.parse_path(argument[3:].lstrip(" "), utf8=True, postmaster_ok=True)
        params = self._params(rest, ("NOTIFY", "ORCPT"))
        if not str(path).isascii() and not txn.smtputf8:
            raise _Reject(553, "5.6.7", "non-ASCII address needs SMTPUTF8")
        notify, orcpt = _wire.parse_rcpt_dsn(params)
        if len(txn.recipients) >= factory.config.max_recipients:
            raise _Reject(452, "4.5.3", "too many recipients")  # RFC 5321 4.5.3.1.10
        recipient = self._route(path, notify, orcpt)
        if factory.policies:
            return self._rcpt_policy(recipient, params)
        txn.recipients.append(recipient)
        self._reply(250, "2.1.5", "OK")
        return None

    async def _rcpt_policy(self, recipient: _Recipient, params: dict[str, str | None]) -> None:
        await self._check_policy("rcpt", recipient.path, params)
        if self._txn is not None:
            self._txn.recipients.append(recipient)
        self._reply(250, "2.1.5", "OK")

    def _route(
        self, path: _wire.MailboxPath, notify: frozenset[str] | None, orcpt: str | None
    ) -> _Recipient:
        """Where a recipient goes, or the refusal (RFC 5321 3.6.2: no open relay)."""
        factory = self.factory
        directory = factory.directory
        domain = path.domain or (directory.default_domain or factory.hostname)
        try:
            address = Address(path.local, domain)
        except ValueError:
            raise _Reject(553, "5.1.3", "bad recipient address") from None
        text = f"{_wire.quote_local(path.local)}@{address.domain}"
        if not path.is_literal and directory.is_local_domain(address.domain):
            targets = directory.resolve(address)
            if not targets:
                raise _Reject(550, "5.1.1", f"<{text}>: no such user here")
            users: list[str] = []
            remote: list[EnvelopeRecipient] = []
            for target in targets:
                target_domain = target.rpartition("@")[2]
                if directory.is_local_domain(target_domain):
                    users.append(target)
                else:  # an alias pointing elsewhere: the operator chose to forward
                    remote.append(EnvelopeRecipient(target, notify, orcpt or f"rfc822;{text}"))
            return _Recipient(text, users, remote)
        if self.user is None and self.host not in factory.trusted:
            raise _Reject(554, "5.7.1", f"<{text}>: relay access denied")
        return _Recipient(text, [], [EnvelopeRecipient(text, notify, orcpt)])

    # -- message content ---------------------------------------------------------------------

    def _begin_message(self, txn: _Transaction) -> None:
        """Start the spool with the trace headers (RFC 5321 4.4)."""
        factory = self.factory
        now = factory.reactor.seconds()
        txn.queue_id = new_queue_id(now)
        spool = txn.spool = Spool(factory.spool_dir, txn.queue_id, factory.spool_in_memory)
        users = [u for r in txn.recipients for u in r.users]
        if users:
            return_path = f"Return-Path: <{txn.sender}>\r\n".encode()
            spool.write(return_path)
            txn.return_path_size = len(return_path)
        single = txn.recipients[0].path if len(txn.recipients) == 1 else None
        spool.write(
            received_header(
                helo=self.helo,
                client=_literal(self.host),
                hostname=factory.hostname,
                protocol=self._protocol_name(),
                queue_id=txn.queue_id,
                tls=self._tls_note(),
                user=self.user,
                recipient=single,
                when=now,
            )
        )
        txn.header_size = spool.size
        config = factory.config
        txn.sink = BodySink(
            spool.write,
            max_size=config.max_message_size - txn.header_size + txn.return_path_size,
            max_line=config.max_body_line_length,
            bare=config.bare_line_ends,
        )

    def _protocol_name(self) -> str:
        """RFC 3848 / RFC 6531 3.7.3 names for the Received 'with' clause."""
        name = "ESMTP" if self.esmtp else "SMTP"
        if self._txn is not None and self._txn.smtputf8:
            name = "UTF8SMTP"
        if self.tls:
            name += "S"
        if self.user is not None:
            name += "A"
        return name

    def _tls_note(self) -> str | None:
        if not self.tls:
            return None
        try:
            handle = self.transport.getHandle()  # type: ignore[union-attr]
            return (
                f"using {handle.get_protocol_version_name()} with cipher {handle.get_cipher_name()}"
            )
        except Exception:
            return "using TLS"

    def _need_recipients(self) -> _Transaction:
        txn = self._txn
        if txn is None:
            raise _Reject(503, "5.5.1", "need MAIL command")
        if not txn.recipients:
            raise _Reject(554, "5.5.1", "no valid recipients")  # RFC 5321 3.3
        return txn

    def do_DATA(self, argument: str) -> None:
        if argument.strip():
            raise _Reject(501, "5.5.4", "DATA takes no argument")
        txn = self._need_recipients()
        if txn.spool is not None:
            raise _Reject(503, "5.5.1", "DATA after BDAT")  # RFC 3030 3
        self._begin_message(txn)
        assert txn.sink is not None
        txn.used_data = True
        txn.reader = DataReader(txn.sink)
        self._reply(354, "", "end data with <CR><LF>.<CR><LF>")
        self.state = State.DATA
        self._set_timer(self.factory.config.data_timeout)

    def _feed_data(self) -> None:
        txn = self._txn
        assert txn is not None and txn.reader is not None
        data = bytes(self._buffer)
        self._buffer.clear()
        rest = txn.reader.feed(data)
        if rest is not None:
            self._buffer += rest
            self.state = State.COMMAND
            self._end_message()

    def do_BDAT(self, argument: str) -> None:
        parts = argument.split()
        if not 1 <= len(parts) <= 2 or not parts[0].isdigit() or len(parts[0]) > 20:
            raise _Reject(501, "5.5.4", "syntax: BDAT size [LAST]")
        if len(parts) == 2 and parts[1].upper() != "LAST":
            raise _Reject(501, "5.5.4", "syntax: BDAT size [LAST]")
        self._bdat_left = int(parts[0])
        self._bdat_last = len(parts) == 2
        txn = self._txn
        try:
            # The chunk is read whatever the verdict (RFC 3030 2): the reply waits for it.
            if txn is not None and txn.bdat_failed:
                raise _Reject(*txn.bdat_failed)
            txn = self._need_recipients()
            if txn.used_data:
                raise _Reject(503, "5.5.1", "BDAT after DATA")
            if txn.spool is None:
                self._begin_message(txn)
        except _Reject as e:
            if self._txn is not None:
                self._txn.bdat_failed = e.reply
            self._bdat_refusal = e.reply
        else:
            self._bdat_refusal = None
        self.state = State.BDAT
        self._set_timer(self.factory.config.data_timeout)
        if self._bdat_left == 0:
            self._bdat_chunk_done()

    def _feed_bdat(self) -> None:
        buffer = self._buffer
        take = min(self._bdat_left, len(buffer))
        chunk = bytes(buffer[:take])
        del buffer[:take]
        self._bdat_left -= take
        if self._bdat_refusal is None:
            txn = self._txn
            assert txn is not None and txn.sink is not None
            txn.sink.feed_chunk(chunk, last=self._bdat_last and self._bdat_left == 0)
        if self._bdat_left == 0:
            self._bdat_chunk_done()

    def _bdat_chunk_done(self) -> None:
        self.state = State.COMMAND
        if self._bdat_refusal is not None:
            refusal, self._bdat_refusal = self._bdat_refusal, None
            if self._bdat_last:
                self._reset_transaction()
            self._answer(refusal)
            return
        txn = self._txn
        assert txn is not None and txn.sink is not None
        if self._bdat_last:
            txn.sink.feed_chunk(b"", last=True)
            self._end_message()
        elif txn.sink.too_big:
            txn.bdat_failed = (552, "5.3.4", "message size exceeds fixed maximum message size")
            self._answer(txn.bdat_failed)
        else:
            self._reply(250, "2.0.0", f"{txn.sink.size} octets received")

    def _end_message(self) -> None:
        txn = self._txn
        assert txn is not None and txn.sink is not None and txn.spool is not None
        sink = txn.sink
        refusal = None
        if sink.too_big:
            refusal = (552, "5.3.4", "message size exceeds fixed maximum message size")
        elif sink.bare_line_end:
            # RFC 5321 2.3.8: CR and LF appear only together; anything else may smuggle.
            refusal = (550, "5.6.0", "message contains a bare CR or LF")
        elif sink.line_too_long:
            refusal = (500, "5.5.2", "message line too long")  # RFC 5321 4.5.3.1.6
        txn.spool.close()
        if refusal is None and txn.spool.error is not None:
            refusal = (451, "4.3.0", "local error writing the message, try again later")
        if refusal is not None:
            self._reset_transaction()
            self._answer(refusal)
            return
        self._run(self._deliver(txn))

    async def _deliver(self, txn: _Transaction) -> None:
        factory = self.factory
        spool = txn.spool
        assert spool is not None
        try:
            users = list(dict.fromkeys(u for r in txn.recipients for u in r.users))
            remote = tuple({r.address: r for rcpt in txn.recipients for r in rcpt.remote}.values())
            envelope = txn.envelope(remote)
            local = spool.source()
            if factory.policies:
                await self._check_policy(
                    "data", evolve(envelope, recipients=tuple(_all(txn))), local
                )
            outbound = spool.source(txn.return_path_size) if txn.return_path_size else local
            await deliver(
                factory.store, factory.queue, txn.queue_id, users, envelope, local, outbound
            )
        except BaseException:
            self._reset_transaction()
            raise
        self._txn = None
        self._reply(250, "2.0.0", f"OK queued as {txn.queue_id}")
        # The copies are made: the spool goes; a file off the reactor thread (an unlink may
        # wait for the file system journal while other sessions fsync).
        if spool.in_file:
            factory.in_thread(spool.discard).addErrback(
                lambda f: _log.failure("removing spool file {path}", f, path=spool.path)
            )
        else:
            spool.discard()
        fields = {
            "queue_id": txn.queue_id,
            "sender": txn.sender,
            "to": ",".join(f"<{r.path}>" for r in txn.recipients),
            "size": spool.size - txn.return_path_size,
            "client": self.host,
            "helo": self.helo,
            "tls": "yes" if self.tls else "no",
            "auth": self.user or "-",
        }
        # Formatted here, leaving the observers one field to format: their formatting of
        # eight fields took 18 of the line's 47 µs (once per message, in the reactor thread).
        _log.info("{line}", line=_ACCEPTED.format_map(fields), **fields)

    _handlers: dict[str, Callable[[SMTPSession, str], Coroutine[Any, Any, None] | None]] = {}


def _all(txn: _Transaction) -> list[EnvelopeRecipient]:
    """Every recipient as the client gave it (for the end-of-data policy hook)."""
    return [EnvelopeRecipient(r.path) for r in txn.recipients]


SMTPSession._handlers = {
    name[3:]: getattr(SMTPSession, name) for name in dir(SMTPSession) if name.startswith("do_")
}


class SMTPFactory(Factory):
    """
    Makes sessions for one listener kind. C{submission} sessions need AUTH before MAIL and
    relay anywhere; MX sessions take mail for local recipients from anyone and relay only for
    authenticated users and C{trusted_networks}.
    """

    protocol = SMTPSession  # type: ignore[assignment]

    def __init__(
        self,
        *,
        hostname: str,
        store: IMailStore,
        queue: IDeliveryQueue,
        directory: Directory,
        spool_dir: str,
        reactor: Any,
        config: SMTPConfig | None = None,
        portal: Portal | None = None,
        plaintext: PlaintextPolicy = PlaintextPolicy.TLS_OR_LOOPBACK,
        tls_options: Any = None,
        submission: bool = False,
        implicit_tls: bool = False,
        policies: Sequence[ISMTPPolicy] = (),
    ) -> None:
        self.hostname = hostname
        self.store = store
        self.queue = queue
        self.directory = directory
        self.spool_dir = spool_dir
        os.makedirs(spool_dir, mode=0o700, exist_ok=True)
        #: Messages up to this size are held in memory until stored (no spool file).
        self.spool_in_memory = _SPOOL_IN_MEMORY
        self.reactor = reactor
        self.config = config = config if config is not None else SMTPConfig()
        self.portal = portal
        self.plaintext = plaintext
        self.tls_options = tls_options
        self.submission = submission
        self.implicit_tls = implicit_tls
        self.policies = tuple(policies)
        self.trusted = Networks(config.trusted_networks)
        self.connections = ConnectionCounter(config.max_connections, config.max_connections_per_ip)
        self.auth_throttle = FailureThrottle(
            config.max_auth_failures_per_ip, _AUTH_FAILURE_WINDOW, reactor.seconds
        )
        self.sessions: set[SMTPSession] = set()
        threads = IReactorThreads(reactor, None)
        self._pool = threads.getThreadPool() if threads is not None else None

    def in_thread(self, f: Callable[[], object]) -> Deferred[object]:
        """Run blocking C{f} in the reactor's thread pool (inline on a reactor without one)."""
        if self._pool is None:
            return maybeDeferred(f)
        return deferToThreadPool(self.reactor, self._pool, f)

    def stopFactory(self) -> None:
        for session in list(self.sessions):
            session.shutdown()


def _build(stack: Any, *, submission: bool, implicit_tls: bool) -> SMTPFactory:
    config = stack.config
    return SMTPFactory(
        hostname=config.hostname,
        store=stack.store,
        queue=stack.queue,
        directory=stack.directory,
        spool_dir=str(config.data_path / "spool"),
        reactor=stack.reactor,
        config=config.smtp,
        portal=stack.portal,
        plaintext=config.auth.plaintext,
        tls_options=None if implicit_tls else stack.tls.server_options(),
        submission=submission,
        implicit_tls=implicit_tls,
        policies=stack.smtp_policies,
    )


def build_mx(stack: Any) -> SMTPFactory:
    """The MX listener (port 25) of a running L{MailStack}."""
    return _build(stack, submission=False, implicit_tls=False)


def build_submission(stack: Any) -> SMTPFactory:
    """The submission listener with STARTTLS (port 587)."""
    return _build(stack, submission=True, implicit_tls=False)


def build_submissions(stack: Any) -> SMTPFactory:
    """The submission listener inside implicit TLS (port 465, RFC 8314)."""
    return _build(stack, submission=True, implicit_tls=True)
