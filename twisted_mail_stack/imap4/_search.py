"""
SEARCH keys (RFC 3501 6.4.4, 9 search-key; RFC 7162 3.1.5 MODSEQ) as a typed tree.

Juxtaposed keys are an L{And}; C{NEW}, C{OLD} and the C{UN...} keys become L{Not}/L{And} of the
basic keys, so an evaluator has few cases. Strings are decoded with the command's charset.
"""

from __future__ import annotations

import enum
from datetime import date

from attrs import frozen

from ..values import Flag
from ._reader import DIGITS, MAX_MODSEQ, Reader, Syntax
from ._sequence import SequenceSet, looks_like_sequence_set, read_sequence_set

__all__ = [
    "All", "And", "DateField", "DateKey", "DateOp", "FlagKey", "HeaderKey", "ModSeqKey", "Not",
    "Or", "SearchKey", "SequenceKey", "SizeKey", "TextKey", "read_search_keys", "read_date",
    "RECENT", "CHARSETS",
]  # fmt: skip

#: Stands for the session flag C{\Recent} in a L{FlagKey}.
RECENT = "\\Recent"
#: The charsets we search in (RFC 3501 6.4.4 requires US-ASCII and UTF-8).
CHARSETS = ("UTF-8", "US-ASCII")
_MAX_DEPTH = 32


@frozen
class All:
    pass


@frozen
class FlagKey:
    """Messages with C{flag} set (system flags canonical, keywords as sent, or L{RECENT})."""

    flag: str


class DateField(enum.Enum):
    INTERNAL = "internal"
    SENT = "sent"  # the Date: header, RFC 3501 6.4.4 SENTBEFORE etc.


class DateOp(enum.Enum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"


@frozen
class DateKey:
    field: DateField
    op: DateOp
    date: date


@frozen
class SizeKey:
    """RFC822.SIZE larger (C{larger=True}) or smaller than C{size}."""

    larger: bool
    size: int


@frozen
class HeaderKey:
    """The header field C{name} contains C{value} (FROM/TO/CC/BCC/SUBJECT are shorthands)."""

    name: str
    value: str


@frozen
class TextKey:
    """C{value} in the body (BODY) or in the whole message (TEXT)."""

    value: str
    body_only: bool


@frozen
class SequenceKey:
    sequence: SequenceSet
    uid: bool


@frozen
class ModSeqKey:
    """RFC 7162 3.1.5: mod-sequence at least C{modseq}; the entry name/type are informative."""

    modseq: int
    entry: tuple[str, str] | None = None


@frozen
class Not:
    key: SearchKey


@frozen
class Or:
    left: SearchKey
    right: SearchKey


@frozen
class And:
    keys: tuple[SearchKey, ...]


SearchKey = (
    All
    | FlagKey
    | DateKey
    | SizeKey
    | HeaderKey
    | TextKey
    | SequenceKey
    | ModSeqKey
    | Not
    | Or
    | And
)

_FLAG_KEYS = {
    "ANSWERED": Flag.ANSWERED,
    "DELETED": Flag.DELETED,
    "DRAFT": Flag.DRAFT,
    "FLAGGED": Flag.FLAGGED,
    "SEEN": Flag.SEEN,
    "RECENT": RECENT,
}
_HEADER_KEYS = {"FROM", "TO", "CC", "BCC", "SUBJECT"}
_DATE_KEYS = {
    "BEFORE": (DateField.INTERNAL, DateOp.BEFORE),
    "ON": (DateField.INTERNAL, DateOp.ON),
    "SINCE": (DateField.INTERNAL, DateOp.SINCE),
    "SENTBEFORE": (DateField.SENT, DateOp.BEFORE),
    "SENTON": (DateField.SENT, DateOp.ON),
    "SENTSINCE": (DateField.SENT, DateOp.SINCE),
}
ALPHA = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def read_date(reader: Reader) -> date:
    """RFC 3501 9 date: C{d-Mon-yyyy} (day of one or two digits), optionally quoted."""
    quoted = reader.maybe(b'"')
    digits = reader.take(DIGITS, "a day")
    reader.expect(b"-")
    month = reader.take(ALPHA, "a month").decode("ascii").upper()
    reader.expect(b"-")
    year = reader.take(DIGITS, "a year")
    if quoted:
        reader.expect(b'"')
    if len(digits) > 2 or len(year) != 4 or month not in MONTHS:
        raise Syntax("bad date, expected d-Mon-yyyy")
    try:
        return date(int(year), MONTHS.index(month) + 1, int(digits))
    except ValueError:
        raise Syntax("no such date") from None


class _Keys:
    def __init__(self, reader: Reader, charset: str) -> None:
        self.reader = reader
        self.charset = charset

    def string(self) -> str:
        raw = self.reader.astring()
        try:
            return raw.decode("ascii" if self.charset == "US-ASCII" else "utf-8")
        except UnicodeDecodeError:
            raise Syntax(f"search string is not valid {self.charset}") from None

    def keys(self, depth: int) -> list[SearchKey]:
        """One or more keys separated by spaces, up to the end or a C{)}."""
        keys = [self.key(depth)]
        while self.reader.maybe_sp():
            keys.append(self.key(depth))
        return keys

    def key(self, depth: int) -> SearchKey:
        r = self.reader
        if depth > _MAX_DEPTH:
            raise Syntax("search keys nested too deeply")
        if r.maybe(b"("):
            keys = self.keys(depth + 1)
            r.expect(b")")
            return keys[0] if len(keys) == 1 else And(tuple(keys))
        if looks_like_sequence_set(r):
            return SequenceKey(read_sequence_set(r), uid=False)
        name = r.keyword()
        if name in _FLAG_KEYS:
            return FlagKey(_FLAG_KEYS[name])
        if name.startswith("UN") and name[2:] in _FLAG_KEYS and name != "UNRECENT":
            return Not(FlagKey(_FLAG_KEYS[name[2:]]))
        if name in _HEADER_KEYS:
            r.sp()
            return HeaderKey(name.title() if name != "CC" else "Cc", self.string())
        if name in _DATE_KEYS:
            r.sp()
            field, op = _DATE_KEYS[name]
            return DateKey(field, op, read_date(r))
        match name:
            case "ALL":
                return All()
            case "NEW":
                return And((FlagKey(RECENT), Not(FlagKey(Flag.SEEN))))
            case "OLD":
                return Not(FlagKey(RECENT))
            case "KEYWORD" | "UNKEYWORD":
                r.sp()
                key = FlagKey(r.atom().decode("ascii"))
                return key if name == "KEYWORD" else Not(key)
            case "BODY" | "TEXT":
                r.sp()
                return TextKey(self.string(), body_only=name == "BODY")
            case "HEADER":
                r.sp()
                field_name = self.reader.astring().decode("ascii", "replace")
                r.sp()
                return HeaderKey(field_name, self.string())
            case "LARGER" | "SMALLER":
                r.sp()
                return SizeKey(name == "LARGER", r.number())
            case "NOT":
                r.sp()
                return Not(self.key(depth + 1))
            case "OR":
                r.sp()
                left = self.key(depth + 1)
                r.sp()
                return Or(left, self.key(depth + 1))
            case "UID":
                r.sp()
                return SequenceKey(read_sequence_set(r), uid=True)
            case "MODSEQ":
                return self.modseq()
        raise Syntax(f"unknown search key {name}")

    def modseq(self) -> ModSeqKey:
        # RFC 7162 3.1.5: "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer
        r = self.reader
        r.sp()
        entry = None
        if r.peek() == 0x22:
            name = r.quoted().decode("ascii", "replace")
            r.sp()
            kind = r.keyword()
            if kind not in ("PRIV", "SHARED", "ALL"):
                raise Syntax("MODSEQ entry type must be priv, shared or all")
            entry = (name, kind.lower())
            r.sp()
        return ModSeqKey(r.number(limit=MAX_MODSEQ), entry)


def read_search_keys(reader: Reader, charset: str) -> SearchKey:
    """All the keys up to the end of the command, as one key."""
    keys = _Keys(reader, charset).keys(0)
    return keys[0] if len(keys) == 1 else And(tuple(keys))
