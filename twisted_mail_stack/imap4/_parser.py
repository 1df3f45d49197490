"""
IMAP command parsing (RFC 3501 9 formal syntax and the extensions we support): one framed
L{RawCommand} in, a L{TaggedCommand} or a L{ParseError} out. Nothing here raises to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from attrs import frozen

from ..values import SpecialUse, StoreMode, normalise_flags
from . import _commands as c
from ._fetch import read_fetch_items
from ._framer import RawCommand
from ._reader import MAX_MODSEQ, TAG_CHARS, Reader, Syntax
from ._search import CHARSETS, MONTHS, read_search_keys
from ._sequence import SequenceSet, read_sequence_set

__all__ = ["ParseError", "parse_command", "parse_done", "parse_sasl_response"]


@frozen
class ParseError:
    """
    How to answer a command we could not parse: C{<tag> BAD text} when the tag is known, else
    C{* BAD text}; C{status} is C{NO} for the few errors the RFCs answer with NO (BADCHARSET,
    USEATTR), and C{code} the response code without brackets.
    """

    tag: str | None
    text: str
    code: str | None = None
    status: str = "BAD"


def parse_command(raw: RawCommand) -> c.TaggedCommand | ParseError:
    reader = Reader(raw)
    try:
        tag = reader.take(TAG_CHARS, "a tag").decode("ascii")
        if reader.peek() not in (None, ord(" ")):
            raise Syntax("invalid tag")
    except Syntax:
        return ParseError(None, "missing or invalid tag")
    try:
        if not reader.maybe_sp():
            raise Syntax("missing command")
        name = reader.keyword()
        if name == "UID":
            reader.sp()
            name = "UID " + reader.keyword()
        handler = _HANDLERS.get(name)
        if handler is None:
            raise Syntax(f"unknown command {name}")
        command = handler(reader)
        reader.end()
    except Syntax as e:
        return ParseError(tag, e.text, e.code, e.status)
    return c.TaggedCommand(tag, command)


def parse_done(raw: RawCommand) -> bool:
    """True if the line that ends IDLE is C{DONE} (RFC 2177 3; case-insensitive)."""
    return len(raw.parts) == 1 and raw.parts[0].upper() == b"DONE"


_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def parse_sasl_response(raw: RawCommand, tag: str) -> bytes | None | ParseError:
    """
    A client's line during AUTHENTICATE C{tag} (RFC 3501 6.2.2): the base64 text as sent, None
    for C{*} (the client cancels), or an error for anything that is not base64.
    """
    if raw.parts == (b"*",):
        return None
    if len(raw.parts) != 1 or not _BASE64.fullmatch(raw.parts[0]):
        return ParseError(tag, "AUTHENTICATE response is not base64")
    return raw.parts[0]


# -- helpers ------------------------------------------------------------------------------


def _paren_atoms(reader: Reader) -> list[str]:
    """C{"(" [atom *(SP atom)] ")"}, upper-cased."""
    reader.expect(b"(")
    words: list[str] = []
    if not reader.maybe(b")"):
        words.append(reader.keyword())
        while not reader.maybe(b")"):
            reader.sp()
            words.append(reader.keyword())
    return words


def _flags(raw_flags: tuple[str, ...]) -> frozenset[str]:
    try:
        return normalise_flags(raw_flags)
    except ValueError as e:
        raise Syntax(str(e)) from None


# RFC 3501 9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
_DATE_TIME = re.compile(
    rb"( ?[0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-5][0-9])"
)


def _date_time(reader: Reader) -> datetime:
    """C{"dd-Mon-yyyy hh:mm:ss +zzzz"}; a one-digit day may come without its padding space."""
    match = _DATE_TIME.fullmatch(reader.quoted())
    try:
        if match is None:
            raise ValueError("no match")
        day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
        offset = timedelta(hours=int(zh), minutes=int(zm))
        tz = timezone(-offset if sign == b"-" else offset)
        number = MONTHS.index(month.decode("ascii").upper()) + 1
        return datetime(int(year), number, int(day), int(hh), int(mm), int(ss), tzinfo=tz)
    except ValueError:
        raise Syntax('bad date-time, expected "dd-Mon-yyyy hh:mm:ss +zzzz"') from None


# -- commands --------------------------------------------------------------------------


def _id(reader: Reader) -> c.Id:
    # RFC 2971 3.3: "ID" SP ("(" string SP nstring *(SP string SP nstring) ")" / nil)
    reader.sp()
    if reader.maybe(b"NIL"):
        return c.Id(None)
    reader.expect(b"(")
    fields: list[tuple[str, str | None]] = []
    while True:
        name = reader.utf8(reader.string())
        reader.sp()
        value = reader.nstring()
        fields.append((name, None if value is None else reader.utf8(value)))
        if len(fields) > 30:
            raise Syntax("too many ID fields")
        if reader.maybe(b")"):
            return c.Id(tuple(fields))
        reader.sp()


def _enable(reader: Reader) -> c.Enable:
    names = []
    reader.sp()
    names.append(reader.keyword())
    while reader.maybe_sp():
        names.append(reader.keyword())
    return c.Enable(tuple(names))


def _authenticate(reader: Reader) -> c.Authenticate:
    reader.sp()
    mechanism = reader.keyword()
    initial = None
    if reader.maybe_sp():
        # RFC 4959 7: initial-response = base64 / "="
        initial = reader.atom()
        if not _BASE64.fullmatch(initial):
            raise Syntax("initial response is not base64")
    return c.Authenticate(mechanism, initial)


def _login(reader: Reader) -> c.Login:
    reader.sp()
    user = reader.astring()
    reader.sp()
    return c.Login(user, reader.astring())


def _select_params(reader: Reader) -> bool:
    if not reader.maybe_sp():
        return False
    params = _paren_atoms(reader)
    if any(p != "CONDSTORE" for p in params):
        raise Syntax("unknown SELECT parameter")
    return bool(params)


def _select(reader: Reader) -> c.Select:
    reader.sp()
    mailbox = reader.mailbox()
    return c.Select(mailbox, _select_params(reader))


def _examine(reader: Reader) -> c.Examine:
    reader.sp()
    mailbox = reader.mailbox()
    return c.Examine(mailbox, _select_params(reader))


_USES = {u.value.upper(): u for u in SpecialUse}


def _create(reader: Reader) -> c.Create:
    reader.sp()
    mailbox = reader.mailbox()
    uses: list[SpecialUse] = []
    if reader.maybe_sp():
        # RFC 6154 6: create-param = "USE" SP "(" [use-attr *(SP use-attr)] ")"
        reader.expect(b"(")
        reader.expect(b"USE")
        reader.sp()
        reader.expect(b"(")
        while not reader.maybe(b")"):
            if uses:
                reader.sp()
            flag = reader.flag().upper()
            if flag not in _USES:
                raise Syntax(f"unsupported special use {flag}", code="USEATTR", status="NO")
            uses.append(_USES[flag])
        reader.expect(b")")
    return c.Create(mailbox, tuple(uses))


def _one_mailbox(kind: Callable[[str], c.Command]) -> Callable[[Reader], c.Command]:
    def handler(reader: Reader) -> c.Command:
        reader.sp()
        return kind(reader.mailbox())

    return handler


def _rename(reader: Reader) -> c.Rename:
    reader.sp()
    old = reader.mailbox()
    reader.sp()
    return c.Rename(old, reader.mailbox())


_SELECT_OPTIONS = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
_RETURN_OPTIONS = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"}


def _list(reader: Reader) -> c.List:
    # RFC 5258 6: "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    reader.sp()
    extended = False
    selection: set[str] = set()
    if reader.peek() == ord("("):
        extended = True
        selection = set(_paren_atoms(reader))
        if not selection <= _SELECT_OPTIONS:
            raise Syntax("unknown LIST selection option")
        if "RECURSIVEMATCH" in selection and not selection - {"RECURSIVEMATCH", "REMOTE"}:
            # RFC 5258 3: not alone, nor with REMOTE only (REMOTE is not a base option).
            raise Syntax("RECURSIVEMATCH needs another selection option")
        reader.sp()
    reference = reader.mailbox()
    reader.sp()
    if reader.maybe(b"("):
        extended = True
        patterns = [reader.list_mailbox()]
        while not reader.maybe(b")"):
            reader.sp()
            patterns.append(reader.list_mailbox())
    else:
        patterns = [reader.list_mailbox()]
    returns: set[str] = set()
    if reader.maybe_sp():
        extended = True
        reader.expect(b"RETURN")
        reader.sp()
        returns = set(_paren_atoms(reader))
        if not returns <= _RETURN_OPTIONS:
            raise Syntax("unknown LIST return option")
    return c.List(reference, tuple(patterns), frozenset(selection), frozenset(returns), extended)


def _lsub(reader: Reader) -> c.Lsub:
    reader.sp()
    reference = reader.mailbox()
    reader.sp()
    return c.Lsub(reference, reader.list_mailbox())


_STATUS_ITEMS = {i.value: i for i in c.StatusItem}


def _status(reader: Reader) -> c.Status:
    reader.sp()
    mailbox = reader.mailbox()
    reader.sp()
    names = _paren_atoms(reader)
    if not names or any(n not in _STATUS_ITEMS for n in names):
        raise Syntax("bad STATUS items")
    return c.Status(mailbox, tuple(_STATUS_ITEMS[n] for n in names))


def _append(reader: Reader) -> c.Append:
    # RFC 3501 9: "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal
    reader.sp()
    mailbox = reader.mailbox()
    reader.sp()
    flags: frozenset[str] = frozenset()
    when = None
    if reader.peek() == ord("("):
        flags = _flags(reader.flag_list())
        reader.sp()
    if reader.peek() == ord('"'):
        when = _date_time(reader)
        reader.sp()
    binary = reader.literal_is_binary()
    return c.Append(mailbox, reader.large_literal(), flags, when, binary)


def _search(uid: bool) -> Callable[[Reader], c.Search]:
    def handler(reader: Reader) -> c.Search:
        reader.sp()
        charset = None
        start = reader.pos
        if reader.maybe(b"CHARSET "):
            charset = reader.astring().decode("ascii", "replace").upper()
            if charset not in CHARSETS:
                # RFC 3501 6.4.4: NO [BADCHARSET (supported charsets)]
                code = "BADCHARSET (" + " ".join(CHARSETS) + ")"
                raise Syntax("charset not supported", code=code, status="NO")
            reader.sp()
        elif reader.maybe(b"RETURN"):
            reader.pos = start
            raise Syntax("SEARCH RETURN (ESEARCH) is not supported")
        key = read_search_keys(reader, charset or "UTF-8")
        return c.Search(key, uid, charset)

    return handler


def _fetch(uid: bool) -> Callable[[Reader], c.Fetch]:
    def handler(reader: Reader) -> c.Fetch:
        reader.sp()
        sequence = read_sequence_set(reader)
        reader.sp()
        items, macro = read_fetch_items(reader)
        changed_since = None
        if reader.maybe_sp():
            # RFC 7162 3.1.4: fetch-modifier = "CHANGEDSINCE" SP mod-sequence-value
            reader.expect(b"(")
            reader.expect(b"CHANGEDSINCE")
            reader.sp()
            changed_since = reader.number(nonzero=True, limit=MAX_MODSEQ)
            reader.expect(b")")
        return c.Fetch(sequence, items, uid, changed_since, macro)

    return handler


_STORE_MODES = {"FLAGS": StoreMode.REPLACE, "+FLAGS": StoreMode.ADD, "-FLAGS": StoreMode.REMOVE}


def _store(uid: bool) -> Callable[[Reader], c.Store]:
    def handler(reader: Reader) -> c.Store:
        reader.sp()
        sequence = read_sequence_set(reader)
        reader.sp()
        unchanged_since = None
        if reader.maybe(b"("):
            # RFC 7162 3.1.3: store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer
            reader.expect(b"UNCHANGEDSINCE")
            reader.sp()
            unchanged_since = reader.number(limit=MAX_MODSEQ)
            reader.expect(b")")
            reader.sp()
        sign = b"+" if reader.maybe(b"+") else b"-" if reader.maybe(b"-") else b""
        name = sign.decode() + reader.keyword()
        silent = name.endswith(".SILENT")
        mode = _STORE_MODES.get(name.removesuffix(".SILENT"))
        if mode is None:
            raise Syntax("expected FLAGS, +FLAGS or -FLAGS")
        reader.sp()
        if reader.peek() == ord("("):
            raw_flags = reader.flag_list()
        else:
            flags = [reader.flag()]
            while reader.maybe_sp():
                flags.append(reader.flag())
            raw_flags = tuple(flags)
        return c.Store(sequence, mode, _flags(raw_flags), silent, uid, unchanged_since)

    return handler


def _copy_or_move(kind: type[c.Copy] | type[c.Move], uid: bool) -> Callable[[Reader], c.Command]:
    def handler(reader: Reader) -> c.Command:
        reader.sp()
        sequence = read_sequence_set(reader)
        reader.sp()
        return kind(sequence, reader.mailbox(), uid)

    return handler


def _uid_expunge(reader: Reader) -> c.Expunge:
    reader.sp()
    uids: SequenceSet = read_sequence_set(reader)
    return c.Expunge(uids)


def _simple(value: c.Command) -> Callable[[Reader], c.Command]:
    return lambda reader: value


_HANDLERS: dict[str, Callable[[Reader], c.Command]] = {
    "CAPABILITY": _simple(c.Capability()),
    "NOOP": _simple(c.Noop()),
    "LOGOUT": _simple(c.Logout()),
    "ID": _id,
    "ENABLE": _enable,
    "STARTTLS": _simple(c.StartTLS()),
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "SELECT": _select,
    "EXAMINE": _examine,
    "CREATE": _create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(c.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    "LIST": _list,
    "LSUB": _lsub,
    "NAMESPACE": _simple(c.Namespace()),
    "STATUS": _status,
    "APPEND": _append,
    "IDLE": _simple(c.Idle()),
    "CHECK": _simple(c.Check()),
    "CLOSE": _simple(c.Close()),
    "UNSELECT": _simple(c.Unselect()),
    "EXPUNGE": _simple(c.Expunge()),
    "SEARCH": _search(uid=False),
    "FETCH": _fetch(uid=False),
    "STORE": _store(uid=False),
    "COPY": _copy_or_move(c.Copy, uid=False),
    "MOVE": _copy_or_move(c.Move, uid=False),
    "UID SEARCH": _search(uid=True),
    "UID FETCH": _fetch(uid=True),
    "UID STORE": _store(uid=True),
    "UID COPY": _copy_or_move(c.Copy, uid=True),
    "UID MOVE": _copy_or_move(c.Move, uid=True),
    "UID EXPUNGE": _uid_expunge,
}
