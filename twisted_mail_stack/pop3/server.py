"""
The POP3 server: RFC 1939 with capabilities and response codes (RFC 2449, RFC 3206), SASL
AUTH (RFC 5034) and STLS (RFC 2595), over the mailbox contract and twisted.cred.

A session moves AUTHORIZATION -> TRANSACTION -> UPDATE (RFC 1939 3). Commands run one at a time
in the order received (PIPELINING, RFC 2449 6.6); a command that is wrong for the state fails
before it touches anything.
"""

from __future__ import annotations

import enum
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import LoginFailed
from twisted.cred.portal import Portal
from twisted.internet.defer import CancelledError, Deferred, FirstError, gatherResults
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..auth.policy import PlaintextPolicy, plaintext_allowed
from ..auth.sasl import CANCEL, MECHANISMS, Challenge, SASLMechanism, create_mechanism
from ..clientlimits import ClientLimits, client_key
from ..config import POP3Config
from ..errors import MailboxError, MailboxInUse, NoSuchMessage, SASLError
from ..interfaces import IAccount, IMailbox, IMaildropLock, IMessageSizes
from ..streaming import (
    SizeCache,
    TransferStopped,
    canonical_size,
    send_now,
    set_nodelay,
    stream_content,
)
from ..tls import TLSSettings
from ..values import INBOX
from ._wire import (
    AUTH,
    IN_USE,
    SYS_TEMP,
    TERMINATOR,
    CommandError,
    MessageEncoder,
    challenge,
    err,
    multiline,
    ok,
    parse_command,
    parse_number,
)
from .maildrop import Maildrop
from .readahead import Load, ReadAhead

if TYPE_CHECKING:
    from ..service import MailStack

__all__ = ["State", "POP3Server", "POP3Factory", "build_pop3", "build_pop3s"]

_log = Logger()

#: Messages whose sizes are measured at once when STAT or LIST needs them.
_MEASURE_PARALLEL = 8
#: Buffered client bytes above which reading pauses until the commands are done.
_READ_HIGH_WATER = 64 * 1024


class State(enum.Enum):
    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"
    CLOSED = "closed"


#: The verbs each state accepts (RFC 1939 4-6, RFC 2449 5, RFC 2595 4, RFC 5034 4).
ALLOWED: dict[State, frozenset[str]] = {
    State.AUTHORIZATION: frozenset({"USER", "PASS", "AUTH", "STLS", "CAPA", "QUIT"}),
    State.TRANSACTION: frozenset(
        {"STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "NOOP", "RSET", "QUIT", "CAPA"}
    ),
    State.UPDATE: frozenset(),
    State.CLOSED: frozenset(),
}


class POP3Factory(Factory):
    """
    Builds L{POP3Server} sessions. C{implicit_tls}: the listener wraps every connection in TLS
    (port 995); otherwise C{tls}, if given, is offered through STLS.
    """

    noisy = False

    def __init__(
        self,
        portal: Portal,
        *,
        clock: IReactorTime,
        config: POP3Config | None = None,
        policy: PlaintextPolicy = PlaintextPolicy.TLS_OR_LOOPBACK,
        hostname: str = "localhost",
        tls: TLSSettings | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.portal = portal
        self.clock = clock
        self.config = config if config is not None else POP3Config()
        self.policy = policy
        self.hostname = hostname
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.sizes = SizeCache()
        self.limits = ClientLimits(
            clock,
            self.config.max_connections_per_client,
            self.config.max_client_login_failures,
            self.config.login_failure_window,
        )

    def buildProtocol(self, addr: IAddress | None) -> POP3Server:
        return POP3Server(self)


def build_pop3(stack: MailStack) -> POP3Factory:
    """The L{FactoryBuilder} of the C{pop3} listeners (STLS offered)."""
    return _build(stack, implicit_tls=False)


def build_pop3s(stack: MailStack) -> POP3Factory:
    """The L{FactoryBuilder} of the C{pop3s} listeners (the service wraps them in TLS)."""
    return _build(stack, implicit_tls=True)


def _build(stack: MailStack, implicit_tls: bool) -> POP3Factory:
    assert stack.portal is not None
    return POP3Factory(
        stack.portal,
        clock=stack.reactor,
        config=stack.config.pop3,
        policy=stack.config.auth.plaintext,
        hostname=stack.config.hostname,
        tls=stack.tls,
        implicit_tls=implicit_tls,
    )


class POP3Server(Protocol):
    """One POP3 session."""

    def __init__(self, factory: POP3Factory) -> None:
        self.factory = factory
        self._config = factory.config
        self.state = State.AUTHORIZATION
        self._buffer = bytearray()
        self._busy = False  # a command is running; later lines wait in the buffer
        self._processing = False
        self._skipping = False  # discarding the rest of an overlong line
        self._reading_paused = False
        self._secure = factory.implicit_tls
        self._client = ""
        self._counted = False
        self._errors = 0
        self._login_failures = 0
        self._user: bytes | None = None  # from USER, waiting for PASS
        self._sasl: SASLMechanism | None = None  # an AUTH exchange waiting for the next line
        self._idle: IDelayedCall | None = None
        self._sleeping: Deferred[None] | None = None
        self._logout: Any = None
        self._account: IAccount | None = None
        self._mailbox: IMailbox | None = None
        self._lock: IMaildropLock | None = None
        self._maildrop: Maildrop | None = None
        self._readahead: ReadAhead | None = None

    @property
    def _transport(self) -> Any:
        """The connection: TCP or TLS, a consumer, a producer, and able to start TLS."""
        return self.transport

    # -- connection ------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._client = client_key(self._transport.getPeer())
        if not self.factory.limits.connect(self._client):
            self._send(err("too many connections from your address", SYS_TEMP))
            self._close()
            return
        self._counted = True
        set_nodelay(self._transport)
        self._idle = self.factory.clock.callLater(self._config.idle_timeout, self._timed_out)
        self._send(ok(f"{self.factory.hostname} POP3 server ready"))

    def connectionLost(self, reason: Failure | None = None) -> None:
        updating = self.state is State.UPDATE
        self.state = State.CLOSED
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        if self._sleeping is not None:
            self._sleeping.cancel()
        if self._counted:
            self._counted = False
            self.factory.limits.disconnect(self._client)
        # A dropped session never enters UPDATE, so nothing is deleted (RFC 1939 6); a QUIT
        # already in UPDATE finishes its deletions and releases the maildrop itself.
        if not updating:
            self._release()

    def dataReceived(self, data: bytes) -> None:
        if self.state is State.CLOSED:
            return
        self._touch()
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return
            data = data[end + 1 :]
            self._skipping = False
        self._buffer += data
        self._process()

    def _process(self) -> None:
        if self._processing:
            return  # a command finished synchronously inside the loop below: it goes on
        self._processing = True
        try:
            buffer = self._buffer
            while not self._busy and self.state is not State.CLOSED:
                end = buffer.find(b"\n")
                if end < 0:
                    if len(buffer) >= self._config.max_line_length:
                        del buffer[:]
                        self._skipping = True
                        self._error(CommandError("line too long"))
                    break
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if end + 1 > self._config.max_line_length:
                    self._error(CommandError("line too long"))
                    continue
                self._line(line[:-1] if line.endswith(b"\r") else line)
        finally:
            self._processing = False
        self._flow_control()

    def _flow_control(self) -> None:
        size = len(self._buffer)
        if not self._reading_paused and size > _READ_HIGH_WATER:
            self._reading_paused = True
            self._transport.pauseProducing()
        elif self._reading_paused and size <= _READ_HIGH_WATER // 4:
            self._reading_paused = False
            if self.state is not State.CLOSED:
                self._transport.resumeProducing()

    def _line(self, line: bytes) -> None:
        if self._sasl is not None:
            mechanism, self._sasl = self._sasl, None
            self._run(self._sasl_step(mechanism, line))
            return
        if line[:5] == b"RETR " and self.state is State.TRANSACTION and line[5:].isdigit():
            self._retr(line[5:])  # the bulk of a download: skip the general parser
            return
        try:
            command = parse_command(line)
            if command.verb not in ALLOWED[self.state]:
                raise CommandError(f"{command.verb} is not valid in this state")
        except CommandError as e:
            self._error(e)
            return
        if command.verb == "RETR":
            self._retr(*command.args)
            return
        self._run(getattr(self, "_cmd_" + command.verb.lower())(*command.args))

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._busy = True
        d = Deferred.fromCoroutine(coroutine)
        d.addErrback(self._failed)
        d.addBoth(self._finished)

    def _finished(self, _: object) -> None:
        self._busy = False
        self._process()

    def _failed(self, failure: Failure) -> None:
        if self.state is State.CLOSED:
            if not failure.check(CancelledError, TransferStopped, MailboxError):
                _log.failure("POP3 command failed after the connection closed", failure)
            return
        if isinstance(failure.value, FirstError):
            failure = failure.value.subFailure
        error = failure.value
        if isinstance(error, CommandError):
            self._error(error)
        elif isinstance(error, SASLError):
            self._error(CommandError(str(error)))
        elif isinstance(error, MailboxError):
            _log.warn("POP3 backend error: {error}", error=error)
            self._send(err("the mail store failed; try again later", SYS_TEMP))
        else:
            _log.failure("POP3 command failed", failure)
            self._send(err("internal server error", SYS_TEMP))

    def _send(self, data: bytes) -> None:
        send_now(self._transport, data)

    def _error(self, error: CommandError) -> None:
        self._send(err(error.text, error.code))
        self._errors += 1
        if self._errors >= self._config.max_errors:
            self._send(err("too many errors; closing"))
            self._close()

    def _close(self) -> None:
        if self.state is not State.UPDATE:
            self.state = State.CLOSED
        self._transport.loseConnection()

    def _touch(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self._config.idle_timeout)

    def _timed_out(self) -> None:
        # RFC 1939 3: the autologout timer closes the connection without entering UPDATE.
        _log.info("POP3 session from {client} timed out", client=self._client)
        self.state = State.CLOSED
        self._transport.abortConnection()

    def _release(self) -> None:
        """Give the maildrop back: release the lock, close the folder, log out. Idempotent."""
        if self._readahead is not None:
            self._readahead.clear()
        if self._maildrop is not None and self._mailbox is not None:
            self._remember_sizes(self._maildrop)
        lock, self._lock = self._lock, None
        mailbox, self._mailbox = self._mailbox, None
        logout, self._logout = self._logout, None
        if lock is not None:
            lock.release().addErrback(lambda f: _log.failure("releasing the maildrop lock", f))
        if mailbox is not None:
            mailbox.close().addErrback(lambda f: _log.failure("closing the maildrop", f))
        if logout is not None:
            logout()

    # -- AUTHORIZATION ---------------------------------------------------------------------

    def _plaintext_allowed(self) -> bool:
        return plaintext_allowed(
            self.factory.policy, secure=self._secure, peer=self._transport.getPeer()
        )

    def _require_plaintext(self) -> None:
        if not self._plaintext_allowed():
            # RFC 3206 4: AUTH covers "an attempt to authenticate in violation of policy".
            hint = "; use STLS first" if self._can_stls() else ""
            raise CommandError(f"plaintext authentication is not allowed here{hint}", AUTH)

    def _can_stls(self) -> bool:
        return not self._secure and self.factory.tls is not None

    async def _cmd_capa(self) -> None:
        # RFC 2449 5: what this session can use now.
        caps = [b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"]
        caps += [b"EXPIRE NEVER", b"IMPLEMENTATION twisted-mail-stack"]
        if self.state is State.AUTHORIZATION:
            if self._plaintext_allowed():
                caps += [b"USER", b"SASL " + " ".join(MECHANISMS).encode()]
            if self._can_stls():
                caps.append(b"STLS")
        self._send(multiline(ok("capability list follows"), caps))

    async def _cmd_stls(self) -> None:
        if self._secure:
            raise CommandError("TLS is already active")
        if self.factory.tls is None:
            raise CommandError("TLS is not available")
        self._send(ok("begin TLS negotiation"))
        # RFC 2595 4 (and CVE-2011-0411): anything sent after STLS in the clear is dropped, and
        # nothing learnt before the handshake is kept.
        del self._buffer[:]
        self._user = None
        self._transport.startTLS(self.factory.tls.server_options())
        self._secure = True

    async def _cmd_user(self, name: bytes) -> None:
        self._require_plaintext()
        self._user = name
        self._send(ok("send PASS"))

    async def _cmd_pass(self, password: bytes) -> None:
        self._require_plaintext()
        user, self._user = self._user, None
        if user is None:
            raise CommandError("send USER first")
        await self._login(UsernamePassword(user, password))

    async def _cmd_auth(self, name: bytes | None = None, initial: bytes | None = None) -> None:
        if name is None:
            # The mechanism list of RFC 1734 clients (not in RFC 5034, but widely sent).
            names = list(MECHANISMS) if self._plaintext_allowed() else []
            self._send(multiline(ok("methods follow"), [n.encode() for n in names]))
            return
        mechanism = create_mechanism(name.decode("ascii", "replace"))
        if mechanism is None:
            raise CommandError("unsupported authentication mechanism")
        self._require_plaintext()
        self._user = None
        await self._sasl_result(mechanism, mechanism.start(initial))

    async def _sasl_step(self, mechanism: SASLMechanism, line: bytes) -> None:
        if line.strip() == CANCEL:
            raise CommandError("authentication cancelled")  # RFC 5034 4
        await self._sasl_result(mechanism, mechanism.receive(line))

    async def _sasl_result(
        self, mechanism: SASLMechanism, result: Challenge | UsernamePassword
    ) -> None:
        if isinstance(result, Challenge):
            self._sasl = mechanism
            self._send(challenge(result.encoded))
        else:
            await self._login(result)

    async def _login(self, credentials: UsernamePassword) -> None:
        limits = self.factory.limits
        if limits.logins_blocked(self._client):
            raise CommandError("too many failed logins from your address; try again later", AUTH)
        try:
            _, account, logout = await self.factory.portal.login(credentials, None, IAccount)
        except LoginFailed:
            await self._login_failed()
            return
        try:
            mailbox = await account.open_mailbox(INBOX)
            try:
                # RFC 1939 8: the maildrop is locked for the session; the snapshot is taken
                # under the lock.
                lock = await mailbox.lock()
                maildrop = await _snapshot(mailbox)
            except BaseException:
                await mailbox.close()
                raise
        except MailboxInUse:
            logout()
            raise CommandError("maildrop is in use by another session", IN_USE) from None
        except BaseException:
            logout()
            raise
        self._account, self._mailbox, self._lock, self._logout = account, mailbox, lock, logout
        if self.state is State.CLOSED:
            self._release()  # the client left while we were logging in
            return
        self._maildrop = maildrop
        self._readahead = ReadAhead(mailbox, maildrop)
        self.state = State.TRANSACTION
        self._send(ok(f"maildrop locked and ready, {len(maildrop)} messages"))

    async def _login_failed(self) -> None:
        self._login_failures += 1
        self.factory.limits.login_failed(self._client)
        delay = self._config.login_failure_delay
        if delay > 0:
            self._sleeping = deferLater(self.factory.clock, delay)
            try:
                await self._sleeping
            finally:
                self._sleeping = None
        self._send(err("invalid user name or password", AUTH))
        if self._login_failures >= self._config.max_login_failures:
            self._close()

    # -- TRANSACTION -----------------------------------------------------------------------

    @property
    def _drop(self) -> Maildrop:
        assert self._maildrop is not None
        return self._maildrop

    async def _cmd_stat(self) -> None:
        await self._measure(self._drop.live())
        count, total = self._drop.stat()
        self._send(ok(f"{count} {total}"))

    async def _cmd_list(self, arg: bytes | None = None) -> None:
        drop = self._drop
        if arg is not None:
            number = parse_number(arg)
            drop.get(number)
            await self._measure([(number, drop.get(number))])
            self._send(ok(f"{number} {drop.sizes[number]}"))
            return
        await self._measure(drop.live())
        listing = [b"%d %d" % (n, drop.sizes[n]) for n, _ in drop.live()]
        self._send(multiline(ok("scan listing follows"), listing))

    async def _cmd_uidl(self, arg: bytes | None = None) -> None:
        drop = self._drop
        if arg is not None:
            number = parse_number(arg)
            self._send(b"+OK %d %s\r\n" % (number, drop.unique_id(drop.get(number))))
            return
        self._send(ok("unique-id listing follows") + drop.uidl_listing() + TERMINATOR)

    def _retr(self, arg: bytes) -> None:
        """RETR; a message already read ahead goes out at once, without a coroutine."""
        readahead = self._readahead
        assert readahead is not None
        try:
            number = parse_number(arg)
            uid = self._drop.get(number)
        except CommandError as e:
            self._error(e)
            return
        load = readahead.take(number)
        if load is not None and load.response is not None:
            self._send(load.response)
            # The next loads start once the reply is out: the client is not kept waiting.
            readahead.advance(number)
            self._learn_size(number, load.octets)
            return
        readahead.advance(number)
        self._run(self._send_message(number, uid, None, load))

    async def _cmd_top(self, arg: bytes, lines: bytes) -> None:
        number = parse_number(arg)
        uid = self._drop.get(number)
        await self._send_message(number, uid, parse_number(lines, zero=True))

    async def _cmd_dele(self, arg: bytes) -> None:
        number = parse_number(arg)
        self._drop.delete(number)  # only marked: UPDATE applies it (RFC 1939 6)
        self._send(ok(f"message {number} deleted"))

    async def _cmd_rset(self) -> None:
        self._drop.undelete_all()
        self._send(ok(f"maildrop has {len(self._drop)} messages"))

    async def _cmd_noop(self) -> None:
        self._send(ok())

    async def _cmd_quit(self) -> None:
        if self.state is State.AUTHORIZATION:
            self._send(ok("bye"))
            self._close()
            return
        # RFC 1939 6: UPDATE, the only place where messages are removed.
        self.state = State.UPDATE
        assert self._mailbox is not None
        try:
            removed = await self._mailbox.remove(self._drop.deleted_uids())
        except MailboxError as e:
            _log.warn("POP3 UPDATE failed: {error}", error=e)
            self._send(err("some deleted messages not removed", SYS_TEMP))
        else:
            self._send(ok(f"bye, {len(removed)} messages deleted"))
        finally:
            self._release()
            self.state = State.CLOSED
            self._transport.loseConnection()

    def _remember_sizes(self, drop: Maildrop) -> None:
        """Put the sizes this session learnt into the factory's cache, for later sessions."""
        assert self._account is not None and self._mailbox is not None
        key = (self._account.user, self._mailbox.name, self._mailbox.uidvalidity)
        put = self.factory.sizes.put
        for number, size in drop.sizes.items():
            put((*key, drop.uid(number)), size)

    def _size_key(self, uid: int) -> tuple[str, str, int, int]:
        assert self._account is not None and self._mailbox is not None
        return (self._account.user, self._mailbox.name, self._mailbox.uidvalidity, uid)

    async def _measure(self, messages: Iterable[tuple[int, int]]) -> None:
        """Learn the canonical sizes of C{messages}: from the cache, else by reading them."""
        drop, cache = self._drop, self.factory.sizes
        missing = []
        for number, uid in messages:
            if number not in drop.sizes:
                size = cache.get(self._size_key(uid))
                if size is None:
                    missing.append((number, uid))
                else:
                    drop.sizes[number] = size
        if not missing:
            return
        queue = iter(missing)

        async def worker() -> None:
            for number, uid in queue:
                drop.sizes[number] = await self._measure_one(uid, drop.stored_size(number))

        workers = min(_MEASURE_PARALLEL, len(missing))
        await gatherResults(
            [Deferred.fromCoroutine(worker()) for _ in range(workers)], consumeErrors=True
        )

    async def _measure_one(self, uid: int, stored: int) -> int:
        assert self._mailbox is not None
        try:
            content = await self._mailbox.open_content(uid)
        except NoSuchMessage:
            return stored  # expunged by another session: the stored size is all we know
        size = await canonical_size(content)
        self.factory.sizes.put(self._size_key(uid), size)
        return size

    async def _send_message(
        self, number: int, uid: int, lines: int | None, load: Load | None = None
    ) -> None:
        """RETR (C{lines} None) or TOP: stream the message with the status line in front."""
        assert self._mailbox is not None
        if load is not None:
            response = await load.wait()
            if response is not None:
                self._send(response)
                self._learn_size(number, load.octets)
                return
        try:
            content = await self._mailbox.open_content(uid)
        except NoSuchMessage:
            raise CommandError("message was removed by another session") from None
        size = self._drop.sizes.get(number)
        status = ok(f"{size} octets") if lines is None and size is not None else ok()
        encoder = MessageEncoder(lines)
        sent = False

        def progress() -> None:
            nonlocal sent
            sent = True
            self._touch()  # a slow reader taking its time is not idle

        try:
            await stream_content(content, self._transport, encoder, status, progress)
        except TransferStopped:
            return
        except Exception:
            if not sent:
                raise
            # Part of the response is out: the only honest end is to drop the connection.
            _log.failure("POP3 transfer failed midway; closing the connection")
            self.state = State.CLOSED
            self._transport.abortConnection()
            return
        self._learn_size(number, encoder.size)

    def _learn_size(self, number: int, size: int | None) -> None:
        # The factory's cache learns them when the session ends (L{_release}), off the RETRs.
        if size is not None:
            self._drop.sizes[number] = size


async def _snapshot(mailbox: IMailbox) -> Maildrop:
    """The maildrop listing taken at login: compact where the mailbox provides L{IMessageSizes}."""
    sizes = IMessageSizes(mailbox, None)
    if sizes is not None:
        uids, stored = await sizes.list_sizes()
        return Maildrop(uids, stored, mailbox.uidvalidity)
    return Maildrop.from_infos(await mailbox.list_messages(), mailbox.uidvalidity)
