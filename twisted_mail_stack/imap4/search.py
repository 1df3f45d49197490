"""
The SEARCH engine (RFC 3501 6.4.4; RFC 7162 3.1.5 MODSEQ) over the mailbox contract.

The key tree is compiled once into closures with three-valued logic: every message is first
judged on what the index knows (flags, sizes, dates, UIDs, modseqs), where a key that needs the
message's bytes answers "unknown". Only messages still undecided are read (their header alone
when no key looks at the body, in batches when the mailbox provides L{IMessageReader}) and
judged again in full. Keys on the header fields of L{SEARCH_HEADERS} (SUBJECT, FROM, ...) are
first answered from their decoded values in the mailbox's persistent L{IMessageCache}, when
it provides one; messages missing there are read, and their values cached.
"""

from __future__ import annotations

import binascii
import re
from bisect import bisect_right
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from datetime import date
from email.utils import getaddresses

from attrs import frozen

from ..errors import NoSuchMessage
from ..interfaces import IMailbox, IMessageCache, IMessageReader
from ..mime import decode_words, matches_text, sent_date
from ..mime._headers import find_body_start, iter_fields
from ..mime.search import SearchWhere
from ..values import MessageInfo
from ._search import (
    RECENT,
    All,
    And,
    DateField,
    DateKey,
    DateOp,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    Not,
    Or,
    SearchKey,
    SequenceKey,
    SizeKey,
    TextKey,
)
from .cache import SEARCH_HEADERS, MessageCache, get_entries, header_field, put_entries
from .fetch import read_header

__all__ = ["search", "uses_modseq"]

#: Undecided messages up to this size are read whole (in batches); larger ones by ranges.
WHOLE_LIMIT = 256 * 1024
BATCH_MESSAGES = 64
BATCH_BYTES = 2 * 1024 * 1024
#: Messages whose cached header values are looked up per trip.
CACHE_LOOKUP = 4096
_HEADER_CHUNK = 16 * 1024

Cheap = Callable[[int, MessageInfo], "bool | None"]
Full = Callable[[int, MessageInfo, bytes], bool]


@frozen
class _Node:
    #: The verdict from the index alone: None when the message's bytes are needed.
    cheap: Cheap
    #: The verdict given the message's bytes (its header alone unless C{body}).
    full: Full
    content: bool
    body: bool
    #: The verdict from the flags alone, when nothing else matters (e.g. UNSEEN).
    by_flags: Callable[[frozenset[str]], bool] | None = None


@frozen
class _Context:
    largest_number: int
    largest_uid: int
    recent: Container[int]


def _leaf(test: Callable[[int, MessageInfo], bool]) -> _Node:
    return _Node(test, lambda n, i, raw: test(n, i), content=False, body=False)


def _content_leaf(test: Callable[[bytes], bool], body: bool) -> _Node:
    return _Node(lambda n, i: None, lambda n, i, raw: test(raw), content=True, body=body)


def _compare(op: DateOp, when: date) -> Callable[[date], bool]:
    # RFC 3501 6.4.4: dates disregard time and timezone.
    if op is DateOp.BEFORE:
        return lambda d: d < when
    if op is DateOp.ON:
        return lambda d: d == when
    return lambda d: d >= when


def _flags_leaf(test: Callable[[frozenset[str]], bool]) -> _Node:
    return _Node(lambda n, i: test(i.flags), lambda n, i, raw: test(i.flags), False, False, test)


def _flag(flag: str, ctx: _Context) -> _Node:
    if flag == RECENT:
        recent = ctx.recent
        return _leaf(lambda n, i: i.uid in recent)
    if flag.startswith("\\"):
        return _flags_leaf(lambda flags: flag in flags)
    lower = flag.lower()  # keywords compare without regard to case, as atoms do

    def keyword(flags: frozenset[str]) -> bool:
        return flag in flags or any(f.lower() == lower for f in flags)

    return _flags_leaf(keyword)


def _sequence(key: SequenceKey, ctx: _Context) -> _Node:
    spans = key.sequence.resolve(ctx.largest_uid if key.uid else ctx.largest_number)
    starts = [lo for lo, _ in spans]

    def member(number: int) -> bool:
        at = bisect_right(starts, number) - 1
        return at >= 0 and number <= spans[at][1]

    if key.uid:
        return _leaf(lambda n, i: member(i.uid))
    return _leaf(lambda n, i: member(n))


_ADDRESS_FIELDS = frozenset({b"from", b"to", b"cc", b"bcc"})


def _header(raw: bytes, name: str, value: str) -> bool:
    if matches_text(raw, value, "HEADER", field=name):
        return True
    field = name.lower().encode("ascii", "replace")
    return field in _ADDRESS_FIELDS and bool(value) and _address_match(raw, field, value)


def _address_match(raw: bytes, field: bytes, value: str) -> bool:
    """
    FROM/TO/CC/BCC also match the addresses as parsed, C{name <local@domain>} with comments
    and quoting gone (as Dovecot does), so C{<a (c)@ b.org>} is found by C{a@b.org}.
    """
    header_end, _ = find_body_start(raw, 0, len(raw))
    texts = []
    for fname, start, end in iter_fields(raw, 0, header_end):
        if fname == field:
            texts.append(raw[raw.index(b":", start, end) + 1 : end])
    folded = value.casefold()
    return any(folded in rendered.casefold() for rendered in _rendered_addresses(texts))


def _rendered_addresses(texts: Iterable[bytes]) -> list[str]:
    """The addresses of field values that have comments or quoting, as C{name <address>}."""
    values = [decode_words(t) for t in texts if b"(" in t or b'"' in t or b"\\" in t]
    if not values:
        return []  # else the plain match was enough
    return [f"{name} <{address}>" if name else address for name, address in getaddresses(values)]


def cached_header_values(raw: bytes, names: Iterable[str] = SEARCH_HEADERS) -> dict[str, str]:
    """
    The persistent-cache form of each of C{names} (of L{SEARCH_HEADERS}) in the header of
    C{raw}: for each
    occurrence of the field, NUL and its value unfolded, RFC 2047-decoded and case-folded, as
    L{_header} compares it (for FROM/TO/CC/BCC also the addresses as parsed); empty when the
    field is absent. A needle without NUL is then in it exactly when L{_header} finds it.
    """
    header_end, _ = find_body_start(raw, 0, len(raw))
    texts: dict[bytes, list[bytes]] = {name.encode("ascii"): [] for name in names}
    for fname, start, end in iter_fields(raw, 0, header_end):
        found = texts.get(fname)
        if found is not None:
            found.append(raw[raw.index(b":", start, end) + 1 : end])
    values = {}
    for name, found in texts.items():
        forms = [decode_words(t) for t in found]
        if name in _ADDRESS_FIELDS:
            forms.extend(_rendered_addresses(found))
        values[name.decode("ascii")] = "".join(["\0" + f.casefold() for f in forms])
    return values


CachedTest = Callable[[int, MessageInfo, Mapping[str, str]], bool]


def _cached_test(key: SearchKey, ctx: _Context) -> tuple[CachedTest, frozenset[str]] | None:
    """
    C{key} as a test of a message's L{cached_header_values} (and its index entry), and the
    header names it reads; None if some key needs more of the message (body, dates, or a
    header field not cached).
    """
    match key:
        case HeaderKey(name, value):
            lower = name.lower()
            if lower not in SEARCH_HEADERS or "\0" in value:
                return None
            folded = value.casefold()
            if not folded:  # RFC 3501 6.4.4: HEADER with an empty string: the field exists
                return (lambda n, i, v: v[lower] != ""), frozenset({lower})
            return (lambda n, i, v: folded in v[lower]), frozenset({lower})
        case Not(inner):
            found = _cached_test(inner, ctx)
            if found is None:
                return None
            test, names = found
            return (lambda n, i, v: not test(n, i, v)), names
        case Or(left, right):
            return _cached_all([left, right], ctx, any)
        case And(keys):
            return _cached_all(list(keys), ctx, all)
    node = _compile(key, ctx)
    if node.content:
        return None
    cheap = node.cheap
    return (lambda n, i, v: bool(cheap(n, i))), frozenset()


def _cached_all(
    keys: list[SearchKey], ctx: _Context, combine: Callable[[Iterable[bool]], bool]
) -> tuple[CachedTest, frozenset[str]] | None:
    tests, names = [], frozenset[str]()
    for key in keys:
        found = _cached_test(key, ctx)
        if found is None:
            return None
        tests.append(found[0])
        names |= found[1]
    return (lambda n, i, v: combine(t(n, i, v) for t in tests)), names


async def _search_cached(
    mailbox: IMailbox,
    pending: list[tuple[int, MessageInfo]],
    test: CachedTest,
    names: frozenset[str],
    cache: MessageCache,
) -> tuple[set[int], list[tuple[int, MessageInfo]]]:
    """Judge C{pending} on cached header values (the session's memo, else the mailbox's
    cache): the numbers that match, and the messages whose values are not all cached."""
    memos = [(name, cache.header_values(mailbox, name)) for name in sorted(names)]
    if len(memos) == 1:  # the usual case: one field, no generator per message
        only = memos[0][1]
        unknown = [i.uid for _, i in pending if i.uid not in only]
    else:
        unknown = [i.uid for _, i in pending if any(i.uid not in memo for _, memo in memos)]
    for at in range(0, len(unknown), CACHE_LOOKUP):
        uids = unknown[at : at + CACHE_LOOKUP]
        fields = {header_field(name): memo for name, memo in memos}
        got = await get_entries(mailbox, uids, list(fields))
        for (uid, field), data in got.items():
            fields[field][uid] = data.decode("utf-8", "surrogatepass")
    matched: set[int] = set()
    missed: list[tuple[int, MessageInfo]] = []
    values: dict[str, str] = {}  # one for every message: no garbage per message
    for number, info in pending:
        for name, memo in memos:
            value = memo.get(info.uid)
            if value is None:
                missed.append((number, info))
                break
            values[name] = value
        else:
            if test(number, info, values):
                matched.add(number)
    return matched, missed


def _sent(raw: bytes, compare: Callable[[date], bool]) -> bool:
    sent = sent_date(raw)
    return sent is not None and compare(sent)


# Charsets that decode every ASCII octet to the same character.
_ASCII_SAFE = frozenset(
    b"us-ascii ascii utf-8 utf8 latin1 latin-1 koi8-r koi8-u gb2312 gbk gb18030 big5 "
    b"shift_jis euc-jp euc-kr".split()
    + [b"iso-8859-%d" % n for n in range(1, 17)]
    + [b"windows-%d" % n for n in range(1250, 1259)]
)
_CHARSET = re.compile(rb'charset[ \t]*=[ \t]*"?([^\s";()]*)')
_WHITESPACE = re.compile(r"\s")


def _cannot_contain(raw: bytes, needle: bytes, body_only: bool) -> bool:
    """
    True when C{raw} surely lacks the (case-folded, UTF-8) C{needle} in the text SEARCH decodes:
    an all-ASCII message without encoded-words or base64, in charsets that map ASCII to
    itself, where the needle is not among the octets, also once quoted-printable is undone.
    A quick look that spares the full MIME parse of most plain mail; when in doubt, False.
    """
    if not raw.isascii():
        return False
    lower = raw.lower()
    if needle in lower or b"base64" in lower:
        return False
    body_start = find_body_start(lower, 0, len(lower))[1]
    if b"=?" in (lower[body_start:] if body_only else lower):
        return False  # RFC 2047 words (those of the top header only matter to TEXT)
    charsets = _CHARSET.findall(lower)
    # Every mention must be a plain parameter naming a safe charset (no comment, no RFC 2231).
    if lower.count(b"charset") != len(charsets) or not _ASCII_SAFE.issuperset(charsets):
        return False
    if b"quoted-printable" in lower:
        decoded = binascii.a2b_qp(raw[body_start:])
        if not decoded.isascii() or needle in decoded.lower():
            return False
    return True


def _text_test(value: str, body_only: bool) -> Callable[[bytes], bool]:
    where: SearchWhere = "BODY" if body_only else "TEXT"
    folded = value.casefold()
    # A needle with white space may span a folded header line, which decoding unfolds.
    needle = None if _WHITESPACE.search(folded) else folded.encode("utf-8")

    def test(raw: bytes) -> bool:
        if needle is not None and _cannot_contain(raw, needle, body_only):
            return False
        return matches_text(raw, value, where)

    return test


def _compile(key: SearchKey, ctx: _Context) -> _Node:
    match key:
        case All():
            return _flags_leaf(lambda flags: True)
        case FlagKey(flag):
            return _flag(flag, ctx)
        case SizeKey(larger, size):
            if larger:
                return _leaf(lambda n, i: i.size > size)
            return _leaf(lambda n, i: i.size < size)
        case ModSeqKey(modseq):
            return _leaf(lambda n, i: i.modseq >= modseq)  # RFC 7162 3.1.5
        case SequenceKey():
            return _sequence(key, ctx)
        case DateKey(DateField.INTERNAL, op, when):
            compare = _compare(op, when)
            return _leaf(lambda n, i: compare(i.internal_date.date()))
        case DateKey(DateField.SENT, op, when):
            compare = _compare(op, when)
            return _content_leaf(lambda raw: _sent(raw, compare), body=False)
        case HeaderKey(name, value):
            return _content_leaf(lambda raw: _header(raw, name, value), body=False)
        case TextKey(value, body_only):
            return _content_leaf(_text_test(value, body_only), body=True)
        case Not(inner):
            return _not(_compile(inner, ctx))
        case Or(left, right):
            return _or([_compile(left, ctx), _compile(right, ctx)])
        case And(keys):
            return _and([_compile(k, ctx) for k in keys])
    raise TypeError(f"not a search key: {key!r}")


def _not(node: _Node) -> _Node:
    cheap = node.cheap

    def not_cheap(n: int, i: MessageInfo) -> bool | None:
        verdict = cheap(n, i)
        return None if verdict is None else not verdict

    test = node.by_flags
    return _Node(
        not_cheap,
        lambda n, i, raw: not node.full(n, i, raw),
        node.content,
        node.body,
        None if test is None else lambda flags: not test(flags),
    )


def _and(nodes: list[_Node]) -> _Node:
    return _combine(nodes, all, decisive=False)


def _or(nodes: list[_Node]) -> _Node:
    return _combine(nodes, any, decisive=True)


def _combine(
    nodes: list[_Node], combine: Callable[[Iterable[bool]], bool], decisive: bool
) -> _Node:
    """
    Three-valued AND (C{decisive} False, C{combine} L{all}) or OR (True, L{any}) of C{nodes}:
    one decisive verdict settles it, an unknown one leaves it unknown.
    """
    nodes.sort(key=lambda node: (node.content, node.body))  # cheap keys first
    if len(nodes) == 1:
        return nodes[0]
    cheaps = [node.cheap for node in nodes]

    def cheap(n: int, i: MessageInfo) -> bool | None:
        verdict: bool | None = not decisive
        for test in cheaps:
            v = test(n, i)
            if v is decisive:
                return decisive
            if v is None:
                verdict = None
        return verdict

    return _Node(
        cheap,
        lambda n, i, raw: combine(node.full(n, i, raw) for node in nodes),
        any(node.content for node in nodes),
        any(node.body for node in nodes),
        _all_flags(nodes, combine),
    )


def _all_flags(
    nodes: list[_Node], combine: Callable[[Iterable[bool]], bool]
) -> Callable[[frozenset[str]], bool] | None:
    """The flags-only verdict of AND (C{all}) or OR (C{any}) of C{nodes}, if each has one."""
    tests = [node.by_flags for node in nodes]
    if None in tests:
        return None
    return lambda flags: combine(test(flags) for test in tests)  # type: ignore[misc]


def uses_modseq(key: SearchKey) -> bool:
    """Whether C{key} has a MODSEQ criterion (RFC 7162 3.1.5: the SEARCH response then ends
    with C{(MODSEQ n)}, the highest mod-sequence of the messages found)."""
    match key:
        case ModSeqKey():
            return True
        case Not(inner):
            return uses_modseq(inner)
        case Or(left, right):
            return uses_modseq(left) or uses_modseq(right)
        case And(keys):
            return any(uses_modseq(k) for k in keys)
    return False


async def _read(mailbox: IMailbox, info: MessageInfo, body: bool) -> bytes | None:
    """The message's bytes (its header alone unless C{body}), or None if it is gone."""
    try:
        content = await mailbox.open_content(info.uid)
    except NoSuchMessage:
        return None
    try:
        if not body:
            header, header_end, _ = await read_header(content, _HEADER_CHUNK)
            return header[:header_end]
        return await content.read(0, int(content.size))
    finally:
        await content.close()


class _FlagVerdicts(dict[frozenset[str], bool]):
    def __init__(self, test: Callable[[frozenset[str]], bool]) -> None:
        self.test = test

    def __missing__(self, flags: frozenset[str]) -> bool:
        verdict = self[flags] = self.test(flags)
        return verdict


async def search(
    mailbox: IMailbox,
    messages: Sequence[tuple[int, MessageInfo]],
    key: SearchKey,
    cache: MessageCache,
    *,
    recent: Container[int] = frozenset(),
) -> list[tuple[int, MessageInfo]]:
    """
    The members of C{messages} (the whole selected mailbox: sequence number and info,
    ascending) that match C{key}. C{recent} holds the UIDs that are \\Recent in this session.
    Messages that vanish while being read do not match. C{cache} keeps the header values
    used, for the session's next SEARCH.
    """
    if not messages:
        return []
    ctx = _Context(messages[-1][0], messages[-1][1].uid, recent)
    node = _compile(key, ctx)
    if node.by_flags is not None:
        # Messages share a few flag sets: judge each set once.
        verdicts = _FlagVerdicts(node.by_flags)
        return [m for m in messages if verdicts[m[1].flags]]
    cheap = node.cheap
    found: list[tuple[int, MessageInfo]] = []
    pending: list[tuple[int, MessageInfo]] = []
    for message in messages:  # the given tuples, not new ones: less garbage to collect
        verdict = cheap(*message)
        if verdict:
            found.append(message)
        elif verdict is None:
            pending.append(message)
    if not pending:
        return found
    candidates = pending
    matched: set[int] = set()
    cached = _cached_test(key, ctx) if IMessageCache.providedBy(mailbox) else None
    if cached is not None:
        # Header keys answered from the mailbox's persistent cache; misses are read below,
        # and their values cached for the next search.
        matched, pending = await _search_cached(mailbox, pending, *cached, cache)
    unsaved: dict[tuple[int, str], bytes] = {}
    reader = IMessageReader(mailbox, None)
    full = node.full
    start = 0
    while start < len(pending):
        batch: list[tuple[int, MessageInfo]] = []
        total = 0
        while start < len(pending) and len(batch) < BATCH_MESSAGES and total < BATCH_BYTES:
            batch.append(pending[start])
            total += pending[start][1].size
            start += 1
        small = [i.uid for _, i in batch if i.size <= WHOLE_LIMIT]
        loaded: dict[int, bytes] = {}
        if reader is not None and len(small) > 1:
            loaded = dict(await reader.read_messages(small, WHOLE_LIMIT))
        for number, info in batch:
            raw = loaded.pop(info.uid, None)
            if raw is None:
                raw = await _read(mailbox, info, node.body or info.size <= WHOLE_LIMIT)
            if raw is None:
                continue
            if cached is None:
                if full(number, info, raw):
                    matched.add(number)
                continue
            # Only the fields this search needs, each cached on its first use; the message is
            # judged on them as a cached one would be.
            values = cached_header_values(raw, cached[1])
            if cached[0](number, info, values):
                matched.add(number)
            for name, value in values.items():
                # A codec named by a charset may give lone surrogates: kept as they are.
                unsaved[info.uid, header_field(name)] = value.encode("utf-8", "surrogatepass")
                cache.header_values(mailbox, name)[info.uid] = value
        if len(unsaved) >= CACHE_LOOKUP or start >= len(pending):
            await put_entries(mailbox, unsaved)
            unsaved = {}
    if not matched:
        return found
    found.extend(m for m in candidates if m[0] in matched)
    found.sort(key=lambda m: m[0])
    return found
