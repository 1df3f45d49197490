"""
The contracts between protocols and backends.

A backend implements L{IMailStore}, L{IAccount}, L{IMailbox} and L{IMessageContent}; SMTP,
POP3 and IMAP4 use nothing else. C{twisted_mail_stack.testing.MailStoreConformance} checks every
rule written here, so a backend that passes it works with every protocol.

General rules for every backend:
  - Every method returns a L{Deferred}; errors arrive as failures of the classes in
    L{twisted_mail_stack.errors} (L{StorageError} for anything the client cannot fix).
  - Mailbox names are Unicode strings whose hierarchy delimiter is C{/} (L{DELIMITER}).
    C{INBOX} is matched case-insensitively and always reported as C{"INBOX"}; every other name is
    case-sensitive. A name with an empty component, a C{.} or C{..} component, NUL, or a control
    character fails with L{InvalidMailboxName}, and a backend never touches storage outside the
    account for any name.
  - UIDs of a folder are positive, strictly ascending in order of arrival, survive restarts and are
    never reused while UIDVALIDITY stays the same (RFC 3501 2.3.1.1). UIDVALIDITY changes only when
    a backend has to renumber a folder (e.g. its index was lost); it then fires L{MailboxReset}.
  - Every change to a message (arrival, flag change, expunge) gives it, or the folder, a new
    modification sequence number greater than every earlier one in that folder; the folder's
    HIGHESTMODSEQ is the largest ever given (RFC 7162 3.1.1). Messages changed by one operation
    may share one modseq. Modseqs are positive (a new folder's HIGHESTMODSEQ too) and survive
    restarts.
  - Flags are the system flags of L{Flag} in canonical case plus keywords (any IMAP atom).
    C{\\Recent} is not stored: see L{IMailbox.claim_recent}.
  - Dates are timezone-aware; a naive C{internal_date} fails with L{ValueError} before anything
    is stored.
  - Methods that take UIDs take any iterable; protocols pass UIDs bounded by UIDNEXT.

The imports from values are re-exported for convenience.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO

from zope.interface import Attribute, Interface

from .values import (
    Change,
    CopyResult,
    Envelope,
    MailboxInfo,
    MailboxStatus,
    MessageInfo,
    MXHost,
    SMTPClientInfo,
    SMTPReply,
    SpecialUse,
    StoreMode,
    StoreResult,
)

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

__all__ = [
    "IMessageSource",
    "IMessageContent",
    "IMaildropLock",
    "IMailbox",
    "IMessageReader",
    "IMessageSizes",
    "IMessageCache",
    "IAccount",
    "IMailStore",
    "ChangeListener",
    "IDeliveryQueue",
    "IMXResolver",
    "ISMTPPolicy",
]

#: Called with each L{Change}; see L{IMailbox.add_listener}.
ChangeListener = Callable[[Change], None]


class IMessageSource(Interface):
    """
    The bytes of one message to store, given to L{IMailStore.deliver} and L{IMailbox.append}.

    Sources are read once or more, never modified. C{twisted_mail_stack.sources} has
    C{BytesSource} and C{FileSource}.
    """

    size = Attribute("The exact length of the message in bytes (int).")
    path = Attribute(
        "A filesystem path holding exactly these bytes, or None. A disk backend may hard-link "
        "or copy it instead of reading through open()."
    )

    def open() -> BinaryIO:
        """
        Return a new binary file positioned at the start of the message.

        The caller closes it. Reading may block, so disk backends read it in a worker thread; it
        is used by one thread at a time.
        """


class IMessageContent(Interface):
    """An open message whose bytes can be read by range without loading it whole."""

    size = Attribute("Length of the message in bytes (int); equals MessageInfo.size.")

    def read(offset: int, length: int) -> Deferred[bytes]:
        """
        Read up to C{length} bytes starting at byte C{offset}.

        Returns fewer bytes only at the end of the message, and C{b""} at or past the end.
        Reads of one content may be issued one after another; they never overlap in time.
        """

    def close() -> Deferred[None]:
        """Release the content. Reading after close is undefined. Closing twice is harmless."""


class IMaildropLock(Interface):
    """An exclusive lock on one folder, held by one POP3 session (RFC 1939 8)."""

    def release() -> Deferred[None]:
        """Give the lock up. Releasing twice is harmless."""


class IMailbox(Interface):
    """
    One open folder of one account: a session's handle.

    Several handles of the same folder may be open at once, in one process or several; each sees
    every change the others make (see L{add_listener}). A handle is used by one session and needs
    no thread safety of its own.
    """

    name = Attribute("The folder's name as L{IAccount.list_mailboxes} gives it (str).")
    uidvalidity = Attribute("The folder's UIDVALIDITY when this handle was opened (int > 0).")

    def status() -> Deferred[MailboxStatus]:
        """
        Return current counters: messages, UIDVALIDITY, UIDNEXT (greater than every UID ever given
        in this folder), unseen (messages without \\Seen), HIGHESTMODSEQ, and recent: how many
        messages no L{claim_recent} has returned yet (a peek that claims nothing).

        Cheap: must not read message contents.
        """

    def list_messages() -> Deferred[Sequence[MessageInfo]]:
        """
        Return every message now in the folder, ordered by ascending UID.

        The result is a snapshot: later changes do not alter it. It includes changes made by
        other processes up to the call (as L{refresh} would find them). Cheap per message: flags,
        sizes, dates and modseqs come from an index, never from opening message files.
        POP3 uses this as its session snapshot.
        """

    def get_messages(uids: Iterable[int]) -> Deferred[Sequence[MessageInfo]]:
        """
        Return the current L{MessageInfo} of those C{uids} the folder holds, by ascending UID.

        UIDs the folder does not hold are left out, not errors.
        """

    def open_content(uid: int) -> Deferred[IMessageContent]:
        """
        Open a message's bytes for reading by range.

        Fails with L{NoSuchMessage} if the folder does not hold C{uid}. Content opened before an
        expunge stays readable until closed (a POP3 or IMAP transfer in progress completes).
        """

    def append(
        source: IMessageSource,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> Deferred[MessageInfo]:
        """
        Store a new message in this folder and return its L{MessageInfo}.

        It gets a UID greater than every UID ever given in the folder and a new modseq.
        C{internal_date} defaults to now. If the source yields a different number of bytes than
        its C{size}, the append fails with L{StorageError} and stores nothing. The message is durable (survives a crash or power loss)
        before the Deferred fires; on failure nothing of it is visible.
        """

    def set_flags(
        uids: Iterable[int],
        flags: Iterable[str],
        mode: StoreMode,
        unchanged_since: int | None = None,
    ) -> Deferred[StoreResult]:
        """
        Replace, add or remove flags on the messages C{uids} (missing UIDs are ignored).

        Each message whose flags actually change gets a new modseq and appears in
        C{StoreResult.updated}; a message whose flags do not change keeps its modseq and is
        left out. With C{unchanged_since} (RFC 7162 3.1.3), a message whose modseq is greater is
        not changed and its UID is listed in C{StoreResult.conflicts}.
        Invalid flags fail with L{ValueError} before anything changes.
        """

    def copy(uids: Iterable[int], target: str) -> Deferred[CopyResult]:
        """
        Copy messages, with their flags and internal dates, into folder C{target} of the same
        account (which may be this folder).

        Returns the target's UIDVALIDITY and a map of each copied source UID to its new UID; new
        UIDs ascend in the order of the source UIDs (RFC 4315 3). Missing source UIDs are
        skipped. Fails with L{NoSuchMailbox} before anything is copied if C{target} is missing.
        Atomic: on failure the target holds none of the copies.
        """

    def move(uids: Iterable[int], target: str) -> Deferred[CopyResult]:
        """
        Like L{copy}, then remove the sources from this folder (RFC 6851), firing
        L{MessageExpunged} for each. A message is never lost: it is in the target before it
        leaves the source.
        """

    def expunge(uids: Iterable[int] | None = None) -> Deferred[Sequence[int]]:
        """
        Remove the messages flagged C{\\Deleted}, or only those of them among C{uids}
        (UID EXPUNGE, RFC 4315 2.1). Returns the removed UIDs, ascending.
        """

    def remove(uids: Iterable[int]) -> Deferred[Sequence[int]]:
        """
        Remove the messages C{uids} whatever their flags (POP3's UPDATE state, RFC 1939 6).

        Returns the UIDs that were removed, ascending; UIDs already gone are skipped.
        """

    def claim_recent() -> Deferred[Sequence[int]]:
        """
        Return the UIDs that are C{\\Recent} for the caller (RFC 3501 2.3.2): every message that
        no earlier call on any handle of this folder, in any process, has returned.

        Each message is returned by exactly one call, ever.
        """

    def lock() -> Deferred[IMaildropLock]:
        """
        Take this folder's exclusive maildrop lock, for a POP3 session.

        Fails at once with L{MailboxInUse} if any session in any process holds it, this handle
        included. The lock is
        released by L{IMaildropLock.release}, by L{close}, or by the death of the process holding
        it. IMAP sessions do not take it and keep working while it is held.
        """

    def add_listener(listener: ChangeListener) -> Deferred[None]:
        """
        Call C{listener(change)} for every later L{Change} of this folder, whoever makes it.
        A listener (compared by equality) is registered at most once per folder, across handles.

        Changes made through any handle of the same store instance reach every listener before
        the Deferred of the operation that made them fires, in the order they happened. Changes
        made by other store instances or processes (another server, a program writing the store
        directly) reach it when a handle of that folder runs L{refresh} or L{list_messages}, and
        the backend also looks for them by itself at least every few seconds while a listener is
        registered (IMAP IDLE). Changes found that way may be coalesced: one L{FlagsChanged} per
        message with its latest state; a message added and then changed is one L{MessageAdded}
        with its current flags; a message that came and went between two looks may go unreported.
        Listeners must not raise; an error raised by one is logged and does not affect others.
        """

    def remove_listener(listener: ChangeListener) -> Deferred[None]:
        """Stop calling C{listener}. Removing one that is not registered is harmless."""

    def refresh() -> Deferred[None]:
        """Look for changes made by other processes now, and report them to the listeners."""

    def close() -> Deferred[None]:
        """Remove this handle's listeners, release its lock, free its resources. Idempotent."""


class IMessageReader(Interface):
    """
    Optional for an L{IMailbox}: read many small messages whole in one trip to the storage (one
    worker-thread hop, one index query), where L{IMailbox.open_content} costs a trip per message.
    Protocols that read messages in bulk (POP3 read-ahead) use it when the mailbox provides it.
    """

    def read_messages(uids: Sequence[int], max_size: int) -> Deferred[Mapping[int, bytes]]:
        """
        Return, by UID, the whole bytes (what L{IMailbox.open_content} would give) of each
        message of C{uids} whose size is at most C{max_size}. UIDs the folder does not hold and
        larger messages are left out, not errors.
        """


class IMessageSizes(Interface):
    """
    Optional for an L{IMailbox}: the UID and size of every message as plain integers, where
    L{IMailbox.list_messages} builds a L{MessageInfo} per message. A POP3 login snapshot of a
    large folder needs nothing more.
    """

    def list_sizes() -> Deferred[tuple[Sequence[int], Sequence[int]]]:
        """
        Return the UIDs of every message now in the folder, ascending, and their sizes
        (C{MessageInfo.size}) in the same order: what L{IMailbox.list_messages} would give.
        """


class IMessageCache(Interface):
    """
    Optional for an L{IMailbox}: a persistent cache of values a protocol derives from a message
    (IMAP: its analysed structure, its decoded header fields), so that they are computed once per
    message rather than once per request. Each entry is opaque bytes under (UID, field name);
    the protocol chooses the field names and the format of the values (a field name it changes
    the format of is a new name). A backend need not keep anything: every entry may be evicted
    at any time, and a protocol that misses one derives it again from the message.

    A message's bytes never change under its UID while the folder's UIDVALIDITY stands (RFC 3501
    2.3.1.1) and a UID is never given twice, so no entry ever goes stale while UIDVALIDITY
    stands: entries of expunged UIDs may linger (a backend drops them sooner or later), and no
    entry put under another UIDVALIDITY of the folder is ever returned. Writing to the cache must
    not slow down deliveries.
    """

    def get_cached(
        uids: Sequence[int], fields: Sequence[str]
    ) -> Deferred[Mapping[tuple[int, str], bytes]]:
        """
        Return the entries the cache holds for each of C{uids} and each of C{fields}, by
        (UID, field). Entries it lacks, and UIDs the folder does not hold, are left out.
        """

    def put_cached(entries: Mapping[tuple[int, str], bytes]) -> Deferred[None]:
        """
        Store C{entries} (value by (UID, field)), replacing those with the same key. Entries
        of UIDs the folder does not hold may be ignored. Fires once they are stored or dropped;
        a failure to store them is not an error (the Deferred still fires with None).
        """


class IAccount(Interface):
    """One user's folder tree. Returned by L{IMailStore.open_account}; the cred avatar of every protocol."""

    user = Attribute("The account name: the canonical address C{local@domain}, lower-cased (str).")
    delimiter = Attribute("The hierarchy delimiter of mailbox names: always C{'/'} (str).")

    def list_mailboxes() -> Deferred[Sequence[MailboxInfo]]:
        """
        Return every folder of the account, INBOX first and the rest sorted by code point.

        A name that exists only because it has children (C{a} when only C{a/b} exists) is
        listed with C{selectable=False}. Subscriptions of folders that no longer exist are
        listed as unselectable entries with C{subscribed=True} only if a backend keeps them;
        it need not.
        """

    def create_mailbox(name: str, special_use: SpecialUse | None = None) -> Deferred[None]:
        """
        Create a folder. Fails with L{MailboxExists} if it exists and is selectable (creating a
        name that exists only as a parent makes it selectable), with L{InvalidMailboxName} for a
        bad name. Missing parents need not be created.
        """

    def delete_mailbox(name: str) -> Deferred[None]:
        """
        Delete a folder and its messages (RFC 3501 6.3.4). Its children, if any, stay, and the
        name may remain as an unselectable parent. Fails with L{CannotDeleteInbox} for INBOX and
        L{NoSuchMailbox} for a missing or unselectable name. Open handles of a deleted folder
        see every message expunged (each L{MessageExpunged} carrying the last HIGHESTMODSEQ the
        handle knew); after that their operations fail with L{NoSuchMailbox}, except L{close}
        and the listener calls.
        """

    def rename_mailbox(old: str, new: str) -> Deferred[None]:
        """
        Rename a folder and, with it, every child (C{a/b} follows C{a}) (RFC 3501 6.3.5).

        Renaming INBOX moves all its messages into a new folder C{new} and leaves INBOX empty but
        present. Fails with L{NoSuchMailbox} if C{old} is missing, L{MailboxExists} if C{new}
        exists, L{InvalidMailboxName} for a bad name or a rename of a folder into its own child
        (INBOX excepted: its children do not move with it). Flags, UIDs and subscriptions of the
        Messages keep their bytes, flags and internal dates; their UIDs may be kept or renumbered
        with a new UIDVALIDITY; subscriptions may follow the folder or stay. An unselectable
        parent may be renamed (its children move); a name that exists only as an unselectable
        parent does not count as existing for C{new}. Open handles of a renamed folder may keep
        working under the new name or see their messages expunged.
        """

    def set_subscribed(name: str, subscribed: bool) -> Deferred[None]:
        """Add or remove C{name} from the subscriptions (RFC 3501 6.3.6). The folder need not exist."""

    def open_mailbox(name: str) -> Deferred[IMailbox]:
        """Open a folder. Fails with L{NoSuchMailbox} if it is missing or unselectable."""

    def close() -> Deferred[None]:
        """Release the account's resources (not its open mailboxes). Idempotent."""


class IMailStore(Interface):
    """The root of a backend: every account and local delivery into them."""

    def create_account(user: str) -> Deferred[None]:
        """
        Create an account with an INBOX and the folders of L{DEFAULT_FOLDERS} (with their
        SPECIAL-USE roles); INBOX and those folders are subscribed. Fails with L{AccountExists} if it exists.
        C{user} is the canonical address, lower-cased.
        """

    def delete_account(user: str) -> Deferred[None]:
        """
        Delete an account and all its mail. Fails with L{NoSuchAccount}. Open handles of its
        folders behave as after L{IAccount.delete_mailbox}.
        """

    def list_accounts() -> Deferred[Sequence[str]]:
        """Return the names of every account, sorted."""

    def open_account(user: str) -> Deferred[IAccount]:
        """Open an account. Fails with L{NoSuchAccount}."""

    def deliver(
        users: Sequence[str],
        source: IMessageSource,
        internal_date: datetime | None = None,
    ) -> Deferred[dict[str, MessageInfo]]:
        """
        Put one message into the INBOX of each of C{users} (local delivery of one SMTP
        transaction) and return each user's new L{MessageInfo}; each distinct user gets one copy.

        Every copy is durable before the Deferred fires, so SMTP may then answer 250. If it fails,
        no user keeps a copy (copies already placed are removed again) and the failure is a
        L{NoSuchAccount} naming the missing user or a L{StorageError} (also when the source yields
        a different number of bytes than its C{size}). The message gets no flags.
        Listeners of each INBOX see a L{MessageAdded}.
        """

    def close() -> Deferred[None]:
        """Stop background work (pollers, threads) and release resources. Idempotent."""


class IDeliveryQueue(Interface):
    """
    The durable spool of mail waiting for the relay (remote recipients).

    An entry is one message and its L{Envelope}, named by a queue id (letters and digits).
    """

    def enqueue(queue_id: str, envelope: Envelope, source: IMessageSource) -> Deferred[None]:
        """
        Store a new entry under C{queue_id}, a fresh id from the caller (unique: a random part).

        The message and envelope are durable (fsynced, with their directory) before the
        Deferred fires, so SMTP may answer 250. On failure nothing of the entry is left.
        C{source} is read before the Deferred fires and may be deleted afterwards.
        """

    def remove(queue_id: str) -> Deferred[None]:
        """Delete an entry (delivered, bounced, or taken back). Removing a missing one is harmless."""

    def list_ids() -> Deferred[Sequence[str]]:
        """Return the ids of every complete entry, oldest first."""

    def load(queue_id: str) -> Deferred[tuple[Envelope, IMessageSource]]:
        """
        Return an entry's envelope and message. Fails with L{KeyError} if there is no such
        entry.
        """


class IMXResolver(Interface):
    """Where the relay sends mail for a domain (RFC 5321 5.1)."""

    def resolve(domain: str) -> Deferred[Sequence[MXHost]]:
        """
        Return the hosts to try for C{domain} (a domain or an address literal such as
        C{[192.0.2.1]}), best first, each with at least one address. Fails with
        L{twisted_mail_stack.errors.PermanentRoutingError} when mail for the domain can never be
        delivered and L{twisted_mail_stack.errors.TemporaryRoutingError} when the answer is not
        known now.
        """


class ISMTPPolicy(Interface):
    """
    Hooks through which Python code accepts or refuses mail as an SMTP session goes on: the
    place for SPF, DKIM, reputation and spam checks.

    Each hook returns a Deferred firing with None to let the session go on (the server's own
    checks still apply) or with an L{SMTPReply}: a 4xx or 5xx reply refuses the step with that
    reply, a 2xx reply accepts it with that text. A hook that fails answers 451 4.3.0.
    """

    def connect(client: SMTPClientInfo) -> Deferred[SMTPReply | None]:
        """Before the greeting. A refusal is sent instead of the greeting, then the session ends."""

    def helo(client: SMTPClientInfo, name: str) -> Deferred[SMTPReply | None]:
        """At HELO or EHLO with its argument."""

    def mail(
        client: SMTPClientInfo, sender: str, params: Mapping[str, str | None]
    ) -> Deferred[SMTPReply | None]:
        """At MAIL FROM, after the server's checks; C{sender} is C{""} for C{<>}."""

    def rcpt(
        client: SMTPClientInfo, recipient: str, params: Mapping[str, str | None]
    ) -> Deferred[SMTPReply | None]:
        """At RCPT TO, after the server's checks accepted the recipient."""

    def data(
        client: SMTPClientInfo, envelope: Envelope, source: IMessageSource
    ) -> Deferred[SMTPReply | None]:
        """
        At the end of DATA (or BDAT LAST), before delivery. C{source} is the message as
        received, with the trace headers the server added.
        """
