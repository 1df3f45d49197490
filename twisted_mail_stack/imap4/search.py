"""
The SEARCH engine (RFC 3501 6.4.4; RFC 7162 3.1.5 MODSEQ) over the mailbox contract.

The key tree is compiled once into closures with three-valued logic: every message is first
judged on what the index knows (flags, sizes, dates, UIDs, modseqs), where a key that needs the
message's bytes answers "unknown". Only messages still undecided are read (their header alone
when no key looks at the body, in batches when the mailbox provides L{IMessageReader}) and
judged again in full.
"""

from __future__ import annotations

import binascii
import re
from bisect import bisect_right
from collections.abc import Callable, Container, Sequence
from datetime import date
from email.utils import getaddresses

from attrs import frozen

from ..errors import NoSuchMessage
from ..interfaces import IMailbox, IMessageReader
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
from .cache import MessageCache
from .fetch import read_header

__all__ = ["search", "uses_modseq"]

#: Undecided messages up to this size are read whole (in batches); larger ones by ranges.
WHOLE_LIMIT = 256 * 1024
BATCH_MESSAGES = 64
BATCH_BYTES = 2 * 1024 * 1024
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


def _flag(flag: str, ctx: _Context) -> _Node:
    if flag == RECENT:
        recent = ctx.recent
        return _leaf(lambda n, i: i.uid in recent)
    if flag.startswith("\\"):
        return _leaf(lambda n, i: flag in i.flags)
    lower = flag.lower()  # keywords compare without regard to case, as atoms do

    def keyword(n: int, i: MessageInfo) -> bool:
        return flag in i.flags or any(f.lower() == lower for f in i.flags)

    return _leaf(keyword)


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
    values = []
    for fname, start, end in iter_fields(raw, 0, header_end):
        if fname == field:
            text = raw[raw.index(b":", start, end) + 1 : end]
            if b"(" in text or b'"' in text or b"\\" in text:  # else the plain match was enough
                values.append(decode_words(text))
    folded = value.casefold()
    for addr_name, address in getaddresses(values):
        rendered = f"{addr_name} <{address}>" if addr_name else address
        if folded in rendered.casefold():
            return True
    return False


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
            return _leaf(lambda n, i: True)
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

    return _Node(not_cheap, lambda n, i, raw: not node.full(n, i, raw), node.content, node.body)


def _and(nodes: list[_Node]) -> _Node:
    nodes.sort(key=lambda node: (node.content, node.body))  # cheap keys first
    if len(nodes) == 1:
        return nodes[0]
    cheaps = [node.cheap for node in nodes]

    def and_cheap(n: int, i: MessageInfo) -> bool | None:
        verdict: bool | None = True
        for cheap in cheaps:
            v = cheap(n, i)
            if v is False:
                return False
            if v is None:
                verdict = None
        return verdict

    return _Node(
        and_cheap,
        lambda n, i, raw: all(node.full(n, i, raw) for node in nodes),
        any(node.content for node in nodes),
        any(node.body for node in nodes),
    )


def _or(nodes: list[_Node]) -> _Node:
    nodes.sort(key=lambda node: (node.content, node.body))
    cheaps = [node.cheap for node in nodes]

    def or_cheap(n: int, i: MessageInfo) -> bool | None:
        verdict: bool | None = False
        for cheap in cheaps:
            v = cheap(n, i)
            if v is True:
                return True
            if v is None:
                verdict = None
        return verdict

    return _Node(
        or_cheap,
        lambda n, i, raw: any(node.full(n, i, raw) for node in nodes),
        any(node.content for node in nodes),
        any(node.body for node in nodes),
    )


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
    Messages that vanish while being read do not match.
    """
    del cache  # the structure cache does not help searching text; kept for the session's API
    if not messages:
        return []
    ctx = _Context(messages[-1][0], messages[-1][1].uid, recent)
    node = _compile(key, ctx)
    cheap = node.cheap
    found: list[tuple[int, MessageInfo]] = []
    pending: list[tuple[int, MessageInfo]] = []
    for number, info in messages:
        verdict = cheap(number, info)
        if verdict:
            found.append((number, info))
        elif verdict is None:
            pending.append((number, info))
    if not pending:
        return found
    matched = set()
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
            if raw is not None and full(number, info, raw):
                matched.add(number)
    if not matched:
        return found
    found.extend(m for m in pending if m[0] in matched)
    found.sort(key=lambda m: m[0])
    return found
