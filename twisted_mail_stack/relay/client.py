"""
The outbound ESMTP client over Twisted: one session to one host carries several messages.

L{deliver} connects to one address of an L{MXHost}, greets (EHLO, HELO if EHLO is refused,
RFC 5321 3.2), upgrades with STARTTLS when offered (opportunistic, RFC 3207; required with
C{tls_required}), then sends each L{Outgoing} in turn: MAIL, RCPT... and DATA in one write when
the server offers PIPELINING (RFC 2920), one at a time otherwise, and RSET between messages.
It returns one L{RecipientResult} per recipient per message. A failure of the session itself
(connection, greeting, EHLO, TLS, timeout, garbage) raises L{SessionError}: the manager then
tries the next address or host (RFC 5321 5.1), and results already returned for earlier
messages on the session stand.

Timeouts follow RFC 5321 4.5.3.2 (L{Timeouts}). The body is read from the message's file in
the reactor thread under producer flow control, dot-stuffed on the way (L{DotStuffer}).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from attrs import frozen
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure

from ..errors import DeliveryError
from ..interfaces import IMessageSource
from ..values import Envelope, EnvelopeRecipient
from ._smtpclient import (
    DotStuffer,
    Extensions,
    Reply,
    ReplyParser,
    SMTPProtocolError,
    check_message,
    mail_command,
    rcpt_command,
)

#: Replies the server may send ahead of our commands (a pipelined group) before we give up.
_MAX_UNREAD = 10_000

__all__ = ["Timeouts", "Outgoing", "RecipientResult", "SessionError", "SMTPClient", "deliver"]


@frozen
class Timeouts:
    """Seconds to wait for each reply (RFC 5321 4.5.3.2 minimums) and for the TCP connect."""

    connect: float = 30.0
    greeting: float = 300.0
    command: float = 300.0  # EHLO, STARTTLS, MAIL, RCPT, RSET, QUIT
    data_start: float = 120.0
    data_end: float = 600.0


@frozen
class Outgoing:
    """One message to send: its envelope (only the recipients to try here) and its bytes."""

    envelope: Envelope
    source: IMessageSource


@frozen
class RecipientResult:
    """
    What became of one recipient. C{reply} is the server's decisive reply (the RCPT refusal,
    or the reply to the end of DATA); C{error} is set instead when the message was never
    offered (L{check_message}: SMTPUTF8, 8BITMIME, SIZE), with its code and enhanced status.
    """

    recipient: EnvelopeRecipient
    reply: Reply | None = None
    error: DeliveryError | None = None

    @property
    def delivered(self) -> bool:
        return self.reply is not None and self.reply.ok

    @property
    def permanent(self) -> bool:
        """True if this recipient must not be retried (5xx, or a permanent local error)."""
        if self.error is not None:
            return self.error.permanent
        return self.reply is not None and self.reply.permanent


class SessionError(Exception):
    """The session failed as a whole at C{stage}; C{reply} is the server's, if it gave one."""

    def __init__(self, stage: str, message: str, reply: Reply | None = None) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.reply = reply


class SMTPClient(Protocol):
    """The protocol; use L{deliver}, or L{start}, L{send} and L{quit} in that order."""

    def __init__(
        self,
        helo_name: str,
        clock: Any,
        *,
        tls_options: Any = None,
        tls_required: bool = False,
        timeouts: Timeouts | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.helo_name = helo_name
        self.clock = clock
        self.tls_options = tls_options
        self.tls_required = tls_required or auth is not None
        self.auth = auth
        self.timeouts = timeouts or Timeouts()
        self.extensions = Extensions()
        self.tls = False
        self._parser = ReplyParser()
        self._replies: list[Reply] = []
        self._waiting: Deferred[Reply] | None = None
        self._lost: Failure | None = None

    # -- Twisted ------------------------------------------------------------------

    def connectionMade(self) -> None:
        # Commands and the message's last bytes go out at once: with Nagle's algorithm the
        # final ".\r\n" waits for the ACK of the body, which the server delays (~40 ms).
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)

    def dataReceived(self, data: bytes) -> None:
        try:
            self._replies += self._parser.feed(data)
            if len(self._replies) > _MAX_UNREAD:
                raise SMTPProtocolError("too many unsolicited replies")
        except SMTPProtocolError as e:
            self._fail(Failure(SessionError("reply", str(e))))
            assert self.transport is not None
            self.transport.abortConnection()  # type: ignore[attr-defined]
            return
        self._wake()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._fail(Failure(SessionError("connection", f"lost: {reason.getErrorMessage()}")))

    def _fail(self, failure: Failure) -> None:
        if self._lost is None:
            self._lost = failure
        self._wake()

    def _wake(self) -> None:
        d, self._waiting = self._waiting, None
        if d is None or d.called:  # none waits, or it timed out
            return
        if self._replies:
            d.callback(self._replies.pop(0))
        elif self._lost is not None:
            d.errback(self._lost)
        else:
            self._waiting = d

    async def _reply(self, stage: str, timeout: float) -> Reply:
        d: Deferred[Reply] = Deferred()
        self._waiting = d
        self._wake()
        try:
            reply = await d.addTimeout(timeout, self.clock)
        except defer.TimeoutError:
            assert self.transport is not None
            self.transport.abortConnection()  # type: ignore[attr-defined]
            raise SessionError(stage, f"no reply in {timeout:g}s") from None
        if reply.code == 421:  # RFC 5321 3.8: the server is closing the session
            raise SessionError(stage, reply.text, reply)
        return reply

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    # -- the session ----------------------------------------------------------------

    async def start(self) -> None:
        """Greeting, EHLO (HELO fallback), STARTTLS. Raises L{SessionError}."""
        greeting = await self._reply("greeting", self.timeouts.greeting)
        if greeting.code != 220:
            raise SessionError("greeting", greeting.text, greeting)
        await self._ehlo()
        if "STARTTLS" in self.extensions and self.tls_options is not None:
            self._write(b"STARTTLS\r\n")
            reply = await self._reply("STARTTLS", self.timeouts.command)
            if reply.code == 220:
                if self._replies or self._parser.pending:  # plaintext injection (RFC 3207 5)
                    raise SessionError("STARTTLS", "data after the 220 reply")
                assert self.transport is not None
                self.transport.startTLS(self.tls_options)  # type: ignore[attr-defined]
                self.tls = True
                await self._ehlo()  # RFC 3207 4.2: forget what was learned before
            elif self.tls_required:
                raise SessionError("STARTTLS", reply.text, reply)
        if self.tls_required and not self.tls:
            raise SessionError("STARTTLS", "TLS is required and the server does not offer it")
        if self.auth is not None:
            await self._authenticate(*self.auth)

    async def _authenticate(self, user: str, password: str) -> None:
        """AUTH PLAIN with an initial response (RFC 4954 4, RFC 4616), only ever over TLS."""
        mechanisms = self.extensions.keywords.get("AUTH", "").upper().split()
        if "PLAIN" not in mechanisms:
            raise SessionError("AUTH", "the server does not offer AUTH PLAIN")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
        self._write(f"AUTH PLAIN {token}\r\n".encode("ascii"))
        reply = await self._reply("AUTH", self.timeouts.command)
        if reply.code != 235:
            raise SessionError("AUTH", reply.text, reply)

    async def _ehlo(self) -> None:
        self._write(f"EHLO {self.helo_name}\r\n".encode())
        reply = await self._reply("EHLO", self.timeouts.command)
        if reply.code == 250:
            self.extensions = Extensions.from_ehlo(reply)
            return
        if reply.code not in (500, 501, 502, 504, 550) or self.tls:
            raise SessionError("EHLO", reply.text, reply)
        self._write(f"HELO {self.helo_name}\r\n".encode())
        reply = await self._reply("HELO", self.timeouts.command)
        if reply.code != 250:
            raise SessionError("HELO", reply.text, reply)
        self.extensions = Extensions()

    async def send(self, message: Outgoing) -> list[RecipientResult]:
        """One transaction; RSET after it unless it ended cleanly. Raises L{SessionError}."""
        envelope, recipients = message.envelope, message.envelope.recipients
        try:
            check_message(envelope, message.source.size, self.extensions)
        except DeliveryError as e:
            return [RecipientResult(r, error=e) for r in recipients]
        ext, t = self.extensions, self.timeouts
        commands = [mail_command(envelope, message.source.size, ext)]
        commands += [rcpt_command(r, ext) for r in recipients]
        pipelining = "PIPELINING" in ext
        if pipelining:  # RFC 2920 3.1: DATA may close the group
            self._write(b"".join(commands) + b"DATA\r\n")
        else:
            self._write(commands[0])
        mail = await self._reply("MAIL", t.command)
        if not mail.ok and not pipelining:
            await self._rset()
            return [RecipientResult(r, mail) for r in recipients]
        accepted: list[EnvelopeRecipient] = []
        results: dict[int, RecipientResult] = {}
        for i, (rcpt, command) in enumerate(zip(recipients, commands[1:], strict=True)):
            if not pipelining:
                self._write(command)
            reply = await self._reply("RCPT", t.command)
            if not mail.ok:
                reply = mail  # the refusal of MAIL decides for every recipient
            if reply.ok:
                accepted.append(rcpt)
            else:
                results[i] = RecipientResult(rcpt, reply)
        if not pipelining and accepted:
            self._write(b"DATA\r\n")
        data = await self._reply("DATA", t.data_start) if pipelining or accepted else None
        if data is not None and data.code == 354 and not accepted:
            self._write(b".\r\n")  # RFC 2920 3.1: nobody to send to; end the empty message
            await self._reply("DATA", t.data_end)
            data = None
        if data is not None and data.code == 354:
            await self._body(message.source)
            final = await self._reply("end of DATA", t.data_end)
            for i, rcpt in enumerate(recipients):
                results.setdefault(i, RecipientResult(rcpt, final))
            if final.ok:
                return [results[i] for i in range(len(recipients))]
        else:
            for i, rcpt in enumerate(recipients):
                results.setdefault(i, RecipientResult(rcpt, data or mail))
        await self._rset()
        return [results[i] for i in range(len(recipients))]

    async def _body(self, source: IMessageSource) -> None:
        stuffer = DotStuffer()
        with source.open() as f:
            try:
                await FileSender().beginFileTransfer(f, self.transport, stuffer.feed)
            except Exception as e:  # the connection stopped the producer, or a read failed
                raise SessionError("DATA", f"sending the message failed: {e}") from None
        self._write(stuffer.end())

    async def _rset(self) -> None:
        self._write(b"RSET\r\n")
        reply = await self._reply("RSET", self.timeouts.command)
        if not reply.ok:
            raise SessionError("RSET", reply.text, reply)

    @property
    def alive(self) -> bool:
        """Connected, with nothing received unasked: a session that may carry another message."""
        return (
            self.transport is not None
            and self._lost is None
            and not self._replies
            and not self._parser.pending
        )

    async def reset(self) -> None:
        """RSET: check that an idle session still works before reusing it. Raises L{SessionError}."""
        await self._rset()

    async def quit(self) -> None:
        """QUIT, then close whatever the server answers."""
        try:
            self._write(b"QUIT\r\n")
            await self._reply("QUIT", self.timeouts.command)
        except SessionError:
            pass
        finally:
            if self.transport is not None:
                self.transport.loseConnection()


async def _deliver(
    reactor: Any, address: str, port: int, messages: Sequence[Outgoing], client: SMTPClient
) -> list[list[RecipientResult]]:
    kind = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
    endpoint = kind(reactor, address, port, timeout=client.timeouts.connect)
    try:
        await connectProtocol(endpoint, client)
    except Exception as e:
        raise SessionError("connect", f"{address}:{port}: {e}") from None
    try:
        await client.start()
        results = [await client.send(m) for m in messages]
    except BaseException:
        assert client.transport is not None
        client.transport.abortConnection()  # type: ignore[attr-defined]
        raise
    await client.quit()
    return results


def deliver(
    reactor: Any,
    address: str,
    port: int,
    messages: Sequence[Outgoing],
    *,
    helo_name: str,
    tls_options: Any = None,
    tls_required: bool = False,
    timeouts: Timeouts | None = None,
    auth: tuple[str, str] | None = None,
) -> Deferred[list[list[RecipientResult]]]:
    """
    Send C{messages} over one session to C{address}:C{port}; fires with their results in order.

    C{tls_options} is an C{IOpenSSLClientConnectionCreator} for STARTTLS (None: never start
    TLS); opportunistic TLS on port 25 normally does not verify the certificate (RFC 7435).
    C{auth} (user, password) authenticates with AUTH PLAIN after STARTTLS (TLS is then required).
    Fails with L{SessionError} if the session failed before every message was sent.
    """
    client = SMTPClient(
        helo_name,
        reactor,
        tls_options=tls_options,
        tls_required=tls_required,
        timeouts=timeouts,
        auth=auth,
    )
    return Deferred.fromCoroutine(_deliver(reactor, address, port, messages, client))
