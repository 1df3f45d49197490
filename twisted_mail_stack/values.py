"""
Frozen values shared by every layer: addresses, flags, mailbox and message facts, change events.

This module imports nothing from the project and does no I/O.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from datetime import UTC, datetime

from attrs import field, frozen

# -- addresses ---------------------------------------------------------------


def normalise_domain(domain: str) -> str:
    """
    Lower-case a domain, drop one trailing dot and encode it as IDNA A-labels.

    Address literals (``[192.0.2.1]``, ``[IPv6:...]``) are only lower-cased.
    Raises L{ValueError} for a domain that cannot be encoded.
    """
    domain = domain.strip()
    if domain.endswith("."):
        domain = domain[:-1]
    if domain.startswith("[") and domain.endswith("]"):
        return domain.lower()
    if not domain:
        raise ValueError("empty domain")
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise ValueError(f"invalid domain {domain!r}: {e}") from None


@frozen
class Address:
    """
    A mailbox address C{local@domain}.

    The local part is kept as given (RFC 5321 2.4: only the receiving host may interpret
    its case); the domain is normalised with L{normalise_domain}.
    """

    local: str
    domain: str = field(converter=normalise_domain)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Split at the last C{@}; raise L{ValueError} if either side is empty."""
        local, at, domain = text.rpartition("@")
        if not at or not local:
            raise ValueError(f"not an address: {text!r}")
        return cls(local, domain)

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def key(self) -> str:
        """The case-insensitive lookup key used for local accounts and aliases."""
        return f"{self.local.lower()}@{self.domain}"


# -- flags -------------------------------------------------------------------


class Flag:
    """The IMAP system flags (RFC 3501 2.3.2) stored with a message; any other atom is a keyword."""

    SEEN = "\\Seen"
    ANSWERED = "\\Answered"
    FLAGGED = "\\Flagged"
    DELETED = "\\Deleted"
    DRAFT = "\\Draft"
    SYSTEM = frozenset({SEEN, ANSWERED, FLAGGED, DELETED, DRAFT})


_CANONICAL_SYSTEM_FLAGS = {f.lower(): f for f in Flag.SYSTEM}


def normalise_flags(flags: Iterable[str]) -> frozenset[str]:
    """
    Return flags as a frozenset with system flags in their canonical case.

    System flags are case-insensitive (RFC 3501 2.3.2); keywords keep their case.
    C{\\Recent} is session state, never stored, and is rejected here.
    """
    if isinstance(flags, frozenset):
        # Indexes hand over the same few sets again and again: check each set once.
        return _normalise_set(flags)
    return _normalise(flags)


@functools.lru_cache(maxsize=4096)
def _normalise_set(flags: frozenset[str]) -> frozenset[str]:
    return _normalise(flags)


def _normalise(flags: Iterable[str]) -> frozenset[str]:
    canonical = _CANONICAL_SYSTEM_FLAGS
    out = set()
    for flag in flags:
        if not flag:
            raise ValueError("empty flag")
        if flag.lower() == "\\recent":
            raise ValueError("\\Recent cannot be stored")
        if flag.startswith("\\"):
            if flag.lower() not in canonical:
                raise ValueError(f"unknown system flag {flag!r}")
            flag = canonical[flag.lower()]
        elif any(c in flag for c in ' (){%*"\\]') or any(
            ord(c) < 0x21 or ord(c) > 0x7E for c in flag
        ):
            raise ValueError(f"invalid keyword {flag!r}")
        out.add(flag)
    return frozenset(out)


class StoreMode(enum.Enum):
    """How L{IMailbox.set_flags} combines the given flags with the current ones."""

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


class SpecialUse(enum.Enum):
    """Mailbox roles of RFC 6154."""

    ALL = "\\All"
    ARCHIVE = "\\Archive"
    DRAFTS = "\\Drafts"
    FLAGGED = "\\Flagged"
    JUNK = "\\Junk"
    SENT = "\\Sent"
    TRASH = "\\Trash"


#: Folders every new account gets, with their roles.
DEFAULT_FOLDERS: tuple[tuple[str, SpecialUse], ...] = (
    ("Sent", SpecialUse.SENT),
    ("Drafts", SpecialUse.DRAFTS),
    ("Trash", SpecialUse.TRASH),
    ("Junk", SpecialUse.JUNK),
    ("Archive", SpecialUse.ARCHIVE),
)

INBOX = "INBOX"
DELIMITER = "/"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("internal_date must be timezone-aware")
    return value.astimezone(UTC)


# -- mailbox and message facts -------------------------------------------------


@frozen
class MailboxInfo:
    """One entry of an account's folder tree, as L{IAccount.list_mailboxes} returns it."""

    name: str
    special_use: SpecialUse | None = None
    subscribed: bool = False
    #: False for a name that exists only as the parent of others (IMAP C{\\Noselect}).
    selectable: bool = True


@frozen
class MailboxStatus:
    """Counters of one folder at one moment (IMAP SELECT and STATUS)."""

    uidvalidity: int
    uidnext: int
    messages: int
    unseen: int
    highestmodseq: int
    #: Messages that no C{claim_recent} has returned yet (RFC 3501 2.3.2): always the newest UIDs.
    recent: int = 0


@frozen
class MessageInfo:
    """What the index knows of a message, without opening its content."""

    uid: int
    flags: frozenset[str] = field(converter=normalise_flags)
    internal_date: datetime = field(converter=_utc)
    size: int
    modseq: int


@frozen
class CopyResult:
    """The outcome of a copy or move: the target's UIDVALIDITY and source UID -> new UID."""

    uidvalidity: int
    uids: dict[int, int]


@frozen
class StoreResult:
    """
    The outcome of L{IMailbox.set_flags}.

    C{updated}: the new state of every message whose flags changed (each with a new modseq).
    C{conflicts}: UIDs left alone because their modseq exceeded C{unchanged_since} (RFC 7162 3.1.3).
    """

    updated: tuple[MessageInfo, ...]
    conflicts: tuple[int, ...] = ()


# -- change events -------------------------------------------------------------


@frozen
class MessageAdded:
    """A message appeared in the folder (delivery, append, copy, move, or another program)."""

    mailbox: str
    info: MessageInfo


@frozen
class FlagsChanged:
    """A message's flags changed; C{info} carries the new flags and modseq."""

    mailbox: str
    info: MessageInfo


@frozen
class MessageExpunged:
    """A message left the folder for good; C{modseq} is the folder's HIGHESTMODSEQ after it."""

    mailbox: str
    uid: int
    modseq: int


@frozen
class MailboxReset:
    """
    The folder's UIDVALIDITY changed (its index was rebuilt): every session must drop
    what it knew of the folder and re-open it.
    """

    mailbox: str
    uidvalidity: int


Change = MessageAdded | FlagsChanged | MessageExpunged | MailboxReset


# -- SMTP envelopes and policy verdicts ------------------------------------------


@frozen
class EnvelopeRecipient:
    """
    One recipient of a queued message, with its DSN parameters (RFC 3461 4.1, 4.2).

    C{notify} is None when the client gave no NOTIFY, else C{{"NEVER"}} or a subset of
    C{{"SUCCESS", "FAILURE", "DELAY"}}. C{orcpt} is the decoded ORCPT (C{"rfc822;alice@x"}).
    """

    address: str
    notify: frozenset[str] | None = None
    orcpt: str | None = None


@frozen
class Envelope:
    """
    The SMTP envelope of one accepted message, as the relay needs it.

    C{sender} is the reverse path without brackets (C{""} for the null path C{<>}). C{body} is
    the BODY parameter (C{7BIT}, C{8BITMIME}, C{BINARYMIME}); C{ret} and C{envid} are the DSN
    parameters of MAIL FROM (RFC 3461 4.3, 4.4), None when not given.
    """

    sender: str
    recipients: tuple[EnvelopeRecipient, ...]
    body: str = "7BIT"
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None


@frozen
class SMTPReply:
    """An SMTP reply a policy hook chooses: code, enhanced status code (RFC 3463) and text."""

    code: int
    enhanced: str
    text: str


@frozen
class SMTPClientInfo:
    """What an SMTP policy hook knows of the session at the moment it is asked."""

    #: The client's IP address (or a UNIX socket path), and port (0 if none).
    host: str
    port: int
    #: The HELO/EHLO argument, once given.
    helo: str | None = None
    #: Whether the session runs over TLS now.
    tls: bool = False
    #: The authenticated account name, if any.
    user: str | None = None
    #: True on a submission listener (587/465), False on the MX listener.
    submission: bool = False


# -- relay routing -------------------------------------------------------------------


@frozen
class MXHost:
    """
    One next hop for a domain: the host's name, its IP addresses in the order to try them,
    and the SMTP port. C{preference} is the MX preference (0 for implicit MX and routes).
    """

    name: str
    addresses: tuple[str, ...]
    port: int = 25
    preference: int = 0
