"""
The IMAP ENVELOPE (RFC 3501 7.4.2): the raw values of ten header fields, with addresses split
into (name, adl, mailbox, host) structures. Nothing is MIME-decoded: IMAP sends what is stored.
"""

from __future__ import annotations

import re

from attrs import frozen

from twisted_mail_stack.mime._headers import HeaderBlock, find_body_start, parse_header
from twisted_mail_stack.mime._imapstr import nstring

__all__ = [
    "ENVELOPE_FIELDS",
    "Address",
    "Envelope",
    "envelope_from_header",
    "envelope_from_range",
    "envelope_only",
    "parse_addresses",
    "parse_addresses_fully",
]


@frozen
class Address:
    """
    One IMAP address structure. A group start has C{host=None} and the group name as
    C{mailbox}; a group end has C{mailbox=None} and C{host=None} (RFC 3501 7.4.2).
    """

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None

    def to_imap(self) -> bytes:
        return b"(%s %s %s %s)" % (
            nstring(self.name),
            nstring(self.adl),
            nstring(self.mailbox),
            nstring(self.host),
        )


def _addresses_to_imap(addresses: tuple[Address, ...]) -> bytes:
    if not addresses:
        return b"NIL"
    return b"(" + b"".join(a.to_imap() for a in addresses) + b")"


@frozen
class Envelope:
    """An ENVELOPE; an empty address tuple is sent as NIL."""

    date: bytes | None
    subject: bytes | None
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    in_reply_to: bytes | None
    message_id: bytes | None

    def to_imap(self) -> bytes:
        """The parenthesised list sent after C{ENVELOPE }."""
        return (
            b"("
            + b" ".join(
                [
                    nstring(self.date),
                    nstring(self.subject),
                    _addresses_to_imap(self.from_),
                    _addresses_to_imap(self.sender),
                    _addresses_to_imap(self.reply_to),
                    _addresses_to_imap(self.to),
                    _addresses_to_imap(self.cc),
                    _addresses_to_imap(self.bcc),
                    nstring(self.in_reply_to),
                    nstring(self.message_id),
                ]
            )
            + b")"
        )


ENVELOPE_FIELDS = frozenset(
    [
        b"date",
        b"subject",
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"in-reply-to",
        b"message-id",
    ]
)


def envelope_from_range(raw: bytes, start: int, end: int) -> Envelope:
    """The envelope of the header in C{raw[start:end]}."""
    return envelope_from_header(parse_header(raw, start, end, ENVELOPE_FIELDS))


def envelope_from_header(h: HeaderBlock) -> Envelope:
    """The envelope from a parsed header that collected L{ENVELOPE_FIELDS}."""
    from_ = parse_addresses(h.unfolded(b"from"))
    sender = parse_addresses(h.unfolded(b"sender")) or from_
    reply_to = parse_addresses(h.unfolded(b"reply-to")) or from_
    return Envelope(
        date=h.unfolded(b"date"),
        subject=h.unfolded(b"subject"),
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=parse_addresses(h.unfolded(b"to")),
        cc=parse_addresses(h.unfolded(b"cc")),
        bcc=parse_addresses(h.unfolded(b"bcc")),
        in_reply_to=h.unfolded(b"in-reply-to"),
        message_id=h.unfolded(b"message-id"),
    )


def envelope_only(raw_header: bytes) -> Envelope:
    """
    The envelope from a message's header alone (or the whole message: parsing stops at the
    blank line), for FETCH ENVELOPE without reading or parsing the body.
    """
    header_end, _ = find_body_start(raw_header, 0, len(raw_header))
    return envelope_from_range(raw_header, 0, header_end)


# -- address lists (RFC 5322 3.4, with the obsolete forms of 4.4 tolerated) --

_TOKENS = re.compile(
    rb"""
    (?P<ws>[ \t\r\n]+)
  | "(?P<q>(?:[^"\\]|\\.)*)"?
  | (?P<lit>\[(?:[^\]\\]|\\.)*\]?)
  | (?P<s>[<>@,:;.])
  | (?P<a>[^ \t\r\n"()<>@,:;.\[\]]+)
  | (?P<junk>[\]\\])
    """,
    re.X | re.S,
)
_UNQUOTE = re.compile(rb"\\(.)", re.S)


def _tokenise(value: bytes) -> list[tuple[str, bytes]]:
    """Tokens as (kind, text): 'w' word (unquoted), 'c' comment, 's' special; raw kept for 'q'."""
    out: list[tuple[str, bytes]] = []
    pos, n = 0, len(value)
    while pos < n:
        if value[pos : pos + 1] == b"(":
            depth, i = 0, pos
            while i < n:
                c = value[i : i + 1]
                if c == b"\\":
                    i += 2
                    continue
                if c == b"(":
                    depth += 1
                elif c == b")":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            out.append(("c", _UNQUOTE.sub(rb"\1", value[pos + 1 : i]).strip()))
            pos = i + 1
            continue
        m = _TOKENS.match(value, pos)
        if m is None:  # a stray ")"
            pos += 1
            continue
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws" or kind == "junk":
            continue
        if kind == "q":
            out.append(("q", m.group(0)))
        elif kind == "s":
            out.append(("s", m.group(0)))
        else:
            out.append(("a", m.group(0)))
    return out


def _word(tok: tuple[str, bytes]) -> bytes:
    kind, text = tok
    if kind == "q":
        inner = text[1:-1] if text.endswith(b'"') and len(text) > 1 else text[1:]
        return _UNQUOTE.sub(rb"\1", inner)
    return text


class _AddressParser:
    def __init__(self, tokens: list[tuple[str, bytes]]) -> None:
        self.toks = tokens
        self.i = 0
        self.out: list[Address] = []

    def peek(self) -> tuple[str, bytes] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def is_special(self, chars: bytes) -> bool:
        t = self.peek()
        return t is not None and t[0] == "s" and t[1] in chars

    def parse_list(self) -> None:
        while self.i < len(self.toks):
            if self.is_special(b",;>"):
                self.i += 1
                continue
            self.parse_one(in_group=False)

    def parse_one(self, in_group: bool) -> None:
        phrase: list[tuple[str, bytes]] = []
        comments: list[bytes] = []
        while (t := self.peek()) is not None:
            if t[0] == "s" and t[1] in b"<:,;@":
                break
            if t[0] == "c":
                comments.append(t[1])
            else:
                phrase.append(t)
            self.i += 1
        if self.is_special(b":") and not in_group:
            self.i += 1
            name = self.phrase(phrase)
            self.out.append(Address(None, None, name if name else b"", None))
            while self.peek() is not None and not self.is_special(b";"):
                if self.is_special(b",:>"):
                    self.i += 1
                    continue
                self.parse_one(in_group=True)
            self.i += 1  # the ";", or past the end
            self.out.append(Address(None, None, None, None))
            return
        if self.is_special(b"<"):
            self.i += 1
            adl, mailbox, host = self.angle_addr()
            name = self.phrase(phrase) or (comments[-1] if comments else None)
            trailing = self.trailing_comment()
            if name is None:
                name = trailing
            if mailbox is not None or host is not None:
                self.out.append(Address(name, adl, mailbox or b"", host or b""))
            return
        # A bare addr-spec: the phrase tokens were its local part.
        local = b"".join(_raw(t) for t in phrase)
        host = None
        if self.is_special(b"@"):
            self.i += 1
            host = self.domain(b",;")
        trailing = self.trailing_comment()
        name = trailing or (comments[-1] if comments else None)
        if local or host:
            self.out.append(Address(name, None, local, host or b""))
        elif self.is_special(b":"):  # a nested group: skip its name separator
            self.i += 1

    def trailing_comment(self) -> bytes | None:
        found = None
        while (t := self.peek()) is not None and t[0] == "c":
            found = t[1] or found
            self.i += 1
        return found

    def phrase(self, toks: list[tuple[str, bytes]]) -> bytes | None:
        # Words joined by one space; an obsolete "." sticks to the word before it ("J. Smith").
        words: list[bytes] = []
        for t in toks:
            if t[0] == "s" and words:
                words[-1] += t[1]
            elif t[0] != "s":
                words.append(_word(t))
        return b" ".join(words) if words else None

    def domain(self, stop: bytes) -> bytes:
        parts: list[bytes] = []
        while (t := self.peek()) is not None:
            if (t[0] == "s" and t[1] in stop + b"<>:") or (t[0] == "c" and parts):
                break
            if t[0] != "c":
                parts.append(_raw(t))
            self.i += 1
        return b"".join(parts)

    def angle_addr(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        adl = None
        if self.is_special(b"@"):  # obs-route: @a,@b:
            route = []
            while (t := self.peek()) is not None and not (t[0] == "s" and t[1] in b":>"):
                if t[0] != "c":
                    route.append(_raw(t))
                self.i += 1
            if self.is_special(b":"):
                self.i += 1
            adl = b"".join(route) or None
        local = []
        while (t := self.peek()) is not None and not (t[0] == "s" and t[1] in b"@>,;"):
            if t[0] != "c":
                local.append(_raw(t))
            self.i += 1
        host = None
        if self.is_special(b"@"):
            self.i += 1
            host = self.domain(b">,;")
        if self.is_special(b">"):
            self.i += 1
        mailbox = b"".join(local)
        if not mailbox and not host:
            return None, None, None  # "<>", the null return path
        return adl, mailbox, host


def _raw(tok: tuple[str, bytes]) -> bytes:
    return tok[1]


# The common shapes, "Name <a@b>", "\"Name\" <a@b>" and "a@b", in a list without comments,
# groups, routes or literals, parsed by one regex; anything else goes to the full parser.
_SIMPLE_ITEM = re.compile(
    rb"""[ \t]*(?:
        (?P<name>"(?:[^"\\]|\\.)*"|[^",<>@.]*?)[ \t]*<(?P<l1>[^<>@,"\s.][^<>@,"\s]*)@(?P<h1>[^<>@,"\s]+)>
      | (?P<l2>[^<>@,"\s.][^<>@,"\s]*)@(?P<h2>[^<>@,"\s]+)
    )[ \t]*(?:,|\Z)""",
    re.X,
)
_GROUP = re.compile(rb"[ \t]*([^\",:;<>@.]*?)[ \t]*:([^\":;]*);[ \t]*(?:,|\Z)")
_NOT_SIMPLE = re.compile(rb"[()\\\[\]\r\n]")


def _parse_simple(value: bytes, groups: bool) -> list[Address] | None:
    out: list[Address] = []
    pos, n = 0, len(value)
    while pos < n:
        if groups and (g := _GROUP.match(value, pos)) is not None:
            members = g.group(2)
            inner = _parse_simple(members, False) if members.strip() else []
            if inner is None:
                return None
            out.append(Address(None, None, b" ".join(g.group(1).split()), None))
            out += inner
            out.append(Address(None, None, None, None))
            pos = g.end()
            continue
        m = _SIMPLE_ITEM.match(value, pos)
        if m is None or m.end() == pos:
            return None
        pos = m.end()
        if m.group("l1") is not None:
            raw_name = m.group("name")
            if raw_name.startswith(b'"'):
                name: bytes | None = _UNQUOTE.sub(rb"\1", raw_name[1:-1]) or None
            else:
                name = b" ".join(raw_name.split()) or None
            out.append(Address(name, None, m.group("l1"), m.group("h1")))
        else:
            out.append(Address(None, None, m.group("l2"), m.group("h2")))
    return out


def parse_addresses(value: bytes | None) -> tuple[Address, ...]:
    """Parse an unfolded address-list field; None or an empty list gives C{()}. Never raises."""
    if not value:
        return ()
    if _NOT_SIMPLE.search(value) is None and not value.endswith(b","):
        # Groups only without quotes, so that a quoted ":" or ";" never looks like one.
        groups = b'"' not in value
        if groups or (b":" not in value and b";" not in value):
            simple = _parse_simple(value, groups)
            if simple is not None:
                return tuple(simple)
    return parse_addresses_fully(value)


def parse_addresses_fully(value: bytes) -> tuple[Address, ...]:
    """The full RFC 5322 address-list parser (obsolete forms, comments, groups, routes)."""
    parser = _AddressParser(_tokenise(value))
    parser.parse_list()
    return tuple(parser.out)
