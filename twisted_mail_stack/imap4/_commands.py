"""
Typed values of IMAP client commands (RFC 3501 6 and the extensions we parse).

Mailbox names are Unicode (decoded from modified UTF-7, C{INBOX} canonical), flags are in
canonical case, sequence sets are kept unresolved because C{*} depends on the session.
"""

from __future__ import annotations

import enum
from datetime import datetime

from attrs import frozen

from ..values import SpecialUse, StoreMode
from ._fetch import FetchItem
from ._framer import LiteralSpool
from ._search import SearchKey
from ._sequence import SequenceSet

__all__ = [
    "Append", "Authenticate", "Capability", "Check", "Close", "Command", "Copy", "Create",
    "Delete", "Enable", "Examine", "Expunge", "Fetch", "Id", "Idle", "List", "Login", "Logout",
    "Lsub", "Move", "Namespace", "Noop", "Rename", "Search", "Select", "StartTLS", "Status",
    "State", "StatusItem", "Store", "Subscribe", "TaggedCommand", "Unselect", "Unsubscribe",
    "valid_states",
]  # fmt: skip


# -- any state (RFC 3501 6.1) -----------------------------------------------------------


@frozen
class Capability:
    pass


@frozen
class Noop:
    pass


@frozen
class Logout:
    pass


@frozen
class Id:
    """RFC 2971: the client's field/value pairs, or None for C{ID NIL}."""

    fields: tuple[tuple[str, str | None], ...] | None


@frozen
class Enable:
    """RFC 5161: capability names, upper-cased."""

    capabilities: tuple[str, ...]


# -- not authenticated (RFC 3501 6.2) --------------------------------------------------------


@frozen
class StartTLS:
    pass


@frozen
class Authenticate:
    """
    C{mechanism} upper-cased; C{initial_response} is the SASL-IR (RFC 4959) data, base64 as
    sent, C{b"="} for an empty response, None when absent.
    """

    mechanism: str
    initial_response: bytes | None = None


@frozen
class Login:
    user: bytes
    password: bytes


# -- authenticated (RFC 3501 6.3) --------------------------------------------------------------


@frozen
class Select:
    mailbox: str
    #: RFC 7162 3.1.8: SELECT ... (CONDSTORE).
    condstore: bool = False


@frozen
class Examine:
    mailbox: str
    condstore: bool = False


@frozen
class Create:
    mailbox: str
    #: RFC 6154 3: CREATE name (USE (\Sent ...)).
    special_use: tuple[SpecialUse, ...] = ()


@frozen
class Delete:
    mailbox: str


@frozen
class Rename:
    old: str
    new: str


@frozen
class Subscribe:
    mailbox: str


@frozen
class Unsubscribe:
    mailbox: str


@frozen
class List:
    """
    LIST with the RFC 5258 extensions. C{selection} and C{returns} are upper-cased option
    names (C{SUBSCRIBED}, C{REMOTE}, C{RECURSIVEMATCH}, C{SPECIAL-USE}; C{SUBSCRIBED},
    C{CHILDREN}, C{SPECIAL-USE}); C{extended} is True if either list or several patterns were
    given, which changes the response rules (RFC 5258 3).
    """

    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    extended: bool = False


@frozen
class Lsub:
    reference: str
    pattern: str


@frozen
class Namespace:
    pass


class StatusItem(enum.Enum):
    MESSAGES = "MESSAGES"
    RECENT = "RECENT"
    UIDNEXT = "UIDNEXT"
    UIDVALIDITY = "UIDVALIDITY"
    UNSEEN = "UNSEEN"
    #: RFC 7162 3.1.6.
    HIGHESTMODSEQ = "HIGHESTMODSEQ"


@frozen
class Status:
    mailbox: str
    items: tuple[StatusItem, ...]


@frozen
class Append:
    mailbox: str
    #: The literal, or the spool it was written to if it was large (the session closes it).
    message: bytes | LiteralSpool
    flags: frozenset[str] = frozenset()
    internal_date: datetime | None = None
    #: True if the message came as literal8 (RFC 3516 4.4).
    binary: bool = False


@frozen
class Idle:
    """RFC 2177; the session then waits for a C{DONE} line (L{parse_done})."""


# -- selected (RFC 3501 6.4) ------------------------------------------------------------------


@frozen
class Check:
    pass


@frozen
class Close:
    pass


@frozen
class Unselect:
    """RFC 3691."""


@frozen
class Expunge:
    #: RFC 4315 2.1: UID EXPUNGE set.
    uids: SequenceSet | None = None


@frozen
class Search:
    key: SearchKey
    uid: bool = False
    #: C{UTF-8} or C{US-ASCII} when given; strings in C{key} are already decoded.
    charset: str | None = None


@frozen
class Fetch:
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    #: RFC 7162 3.1.4.
    changed_since: int | None = None
    #: True when a macro (ALL, FAST, FULL) or a single item was sent without parentheses.
    macro: str | None = None


@frozen
class Store:
    sequence: SequenceSet
    mode: StoreMode
    flags: frozenset[str]
    silent: bool = False
    uid: bool = False
    #: RFC 7162 3.1.3.
    unchanged_since: int | None = None


@frozen
class Copy:
    sequence: SequenceSet
    mailbox: str
    uid: bool = False


@frozen
class Move:
    """RFC 6851."""

    sequence: SequenceSet
    mailbox: str
    uid: bool = False


Command = (
    Capability | Noop | Logout | Id | Enable | StartTLS | Authenticate | Login | Select | Examine
    | Create | Delete | Rename | Subscribe | Unsubscribe | List | Lsub | Namespace | Status
    | Append | Idle | Check | Close | Unselect | Expunge | Search | Fetch | Store | Copy | Move
)  # fmt: skip


@frozen
class TaggedCommand:
    tag: str
    command: Command


class State(enum.Flag):
    """The session states of RFC 3501 3 in which a command is valid."""

    NOT_AUTHENTICATED = enum.auto()
    AUTHENTICATED = enum.auto()
    SELECTED = enum.auto()
    ANY = NOT_AUTHENTICATED | AUTHENTICATED | SELECTED


_IN_SESSION = State.AUTHENTICATED | State.SELECTED
_STATES: dict[type, State] = {
    **dict.fromkeys((Capability, Noop, Logout, Id), State.ANY),  # RFC 3501 6.1, RFC 2971
    **dict.fromkeys((StartTLS, Authenticate, Login), State.NOT_AUTHENTICATED),
    # RFC 5161 3: ENABLE only before a mailbox is selected.
    Enable: State.AUTHENTICATED,
    **dict.fromkeys(
        (
            Select,
            Examine,
            Create,
            Delete,
            Rename,
            Subscribe,
            Unsubscribe,
            List,
            Lsub,
            Namespace,
            Status,
            Append,
            Idle,
        ),
        _IN_SESSION,
    ),  # fmt: skip
    **dict.fromkeys(
        (Check, Close, Unselect, Expunge, Search, Fetch, Store, Copy, Move), State.SELECTED
    ),
}


def valid_states(command: Command) -> State:
    """The states in which C{command} may be given; anything else gets BAD."""
    return _STATES[type(command)]
