"""
What every part of the IMAP session shares: its state, how it answers, how backend errors
become responses (RFC 5530 response codes), and the output that streams FETCH under flow control.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import frozen
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from ..errors import (
    CannotDeleteInbox,
    InvalidMailboxName,
    MailboxError,
    MailboxExists,
    MailboxNotEmpty,
    NoSuchMailbox,
    NoSuchMessage,
)
from ..interfaces import IAccount, IMailbox
from ..streaming import TransferStopped, send_now
from ._commands import State
from .selected import SelectedMailbox

__all__ = ["Refusal", "Reply", "SessionBase", "TransportOutput", "ANSWERED"]

_log = Logger()


@frozen
class Reply:
    """The tagged response a command ends with."""

    status: bytes = b"OK"
    text: str = "completed"
    code: str | bytes | None = None


#: A handler's result when it has sent its tagged response itself.
ANSWERED = Reply(b"", "")


class Refusal(Exception):
    """Ends a command with C{NO} or C{BAD} (and a response code)."""

    def __init__(self, text: str, code: str | bytes | None = None, status: bytes = b"NO") -> None:
        super().__init__(text)
        self.reply = Reply(status, text, code)


def bad(text: str, code: str | None = None) -> Refusal:
    return Refusal(text, code, b"BAD")


def mailbox_refusal(error: Exception, *, missing_code: str = "NONEXISTENT") -> Refusal | None:
    """The NO for a mailbox-contract error (RFC 5530 codes), or None if it is no such error."""
    if isinstance(error, NoSuchMailbox):
        return Refusal("no such mailbox", missing_code)
    if isinstance(error, MailboxExists):
        return Refusal("mailbox already exists", "ALREADYEXISTS")
    if isinstance(error, InvalidMailboxName):
        return Refusal(f"invalid mailbox name: {error}", "CANNOT")
    if isinstance(error, CannotDeleteInbox):
        return Refusal("INBOX cannot be deleted", "CANNOT")
    if isinstance(error, MailboxNotEmpty):
        return Refusal("mailbox has children", "HASCHILDREN")
    if isinstance(error, NoSuchMessage):
        return Refusal("some messages were expunged", "EXPUNGEISSUED")
    if isinstance(error, MailboxError):
        _log.warn("IMAP backend error: {error!r}", error=error)
        return Refusal("the mail store failed; try again later", "UNAVAILABLE")
    return None


@implementer(IPushProducer)
class TransportOutput:
    """
    The C{FetchOutput} of C{imap4.fetch}: writes to the transport while registered as its
    streaming producer, so that C{drained} waits while the client reads slowly.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._paused = False
        self._stopped = False
        self._waiting: Deferred[None] | None = None
        self._tail = b""

    @property
    def midway(self) -> bool:
        """True if a FETCH response has been started and not finished."""
        return bool(self._tail) and not self._tail.endswith(b")\r\n")

    def write(self, data: bytes) -> None:
        if not self._stopped and data:
            self._tail = (self._tail + data[-3:])[-3:]
            self._transport.write(data)

    def drained(self) -> Deferred[None]:
        if self._stopped:
            return fail(TransferStopped())
        if not self._paused:
            return succeed(None)
        if self._waiting is None:
            self._waiting = Deferred()
        return self._waiting

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._wake()

    def stopProducing(self) -> None:
        self._stopped = True
        self._wake()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            if self._stopped:
                waiting.errback(TransferStopped())
            else:
                waiting.callback(None)


class SessionBase:
    """State and helpers shared by the command mixins of L{IMAP4Server}."""

    transport: Any
    state: State
    closed: bool
    account: IAccount | None
    selected: SelectedMailbox | None
    mailbox: IMailbox | None
    condstore: bool

    def send(self, data: bytes) -> None:
        if data and not self.closed:
            send_now(self.transport, data)

    def require_selected(self) -> tuple[SelectedMailbox, IMailbox]:
        assert self.selected is not None and self.mailbox is not None
        return self.selected, self.mailbox

    def require_account(self) -> IAccount:
        assert self.account is not None
        return self.account

    async def flush(self, *, expunge: bool) -> None:
        """
        Send the untagged updates of the selected mailbox that may be sent now. New messages
        are told at once; their RECENT count follows once this session has claimed them, so
        that a thousand idling sessions hear of a delivery without waiting for each other.
        """
        selected, mailbox = self.selected, self.mailbox
        if selected is None or mailbox is None:
            return
        if selected.reset:
            # UIDVALIDITY changed under us: nothing the client holds is valid any more.
            self.send(b"* BYE [UNAVAILABLE] mailbox was renumbered; select it again\r\n")
            self.close_connection()
            return
        self.send(selected.updates(expunge=expunge, condstore=self.condstore))
        if not selected.unclaimed:
            return
        uids: Sequence[int] = ()
        selected.unclaimed = []
        if not selected.read_only:
            # RFC 3501 2.3.2: a new message is \Recent in exactly one session; EXAMINE claims none.
            try:
                uids = await mailbox.claim_recent()
            except MailboxError as e:  # the messages were told; only not as \Recent
                _log.warn("IMAP claiming \\Recent failed: {error!r}", error=e)
        selected.claimed(uids)
        if selected is self.selected:
            self.send(selected.recent_update())

    def close_connection(self) -> None:
        raise NotImplementedError

    def mailbox_changed(self, selected: SelectedMailbox) -> None:
        """A listener saw a change of the selected mailbox (IDLE pushes it)."""

    async def deselect(self, *, expunge: bool = False) -> None:
        """Leave the selected state; with C{expunge}, remove \\Deleted messages silently (CLOSE)."""
        selected, mailbox = self.selected, self.mailbox
        self.selected = self.mailbox = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED
        if mailbox is None:
            return
        try:
            if expunge and selected is not None and not selected.read_only:
                await mailbox.expunge()
        finally:
            mailbox.close().addErrback(lambda f: _log.failure("closing a mailbox", f))
