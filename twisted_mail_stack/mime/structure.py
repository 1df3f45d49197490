"""
The MIME tree of a stored message as byte offsets, and its BODY / BODYSTRUCTURE forms
(RFC 3501 7.4.2). Offsets index the raw bytes, so sections are served without re-serialising;
sizes and line counts are those of the raw body as stored.

Malformed MIME never raises: an unusable Content-Type is text/plain (RFC 2045 5.2), a
multipart without a boundary is text/plain, a truncated multipart ends at the end of its
parent, and a multipart without any body part gets one empty text/plain part.
"""

from __future__ import annotations

from attrs import frozen

from twisted_mail_stack.mime._headers import find_body_start, parse_header, split_params, unfold
from twisted_mail_stack.mime._imapstr import nstring, param_list, string
from twisted_mail_stack.mime.envelope import ENVELOPE_FIELDS, Envelope, envelope_from_header

__all__ = ["Part", "Span", "parse_structure", "parse_span", "body_to_imap", "MAX_DEPTH"]

# Nesting beyond this is treated as an opaque leaf: bounds recursion on hostile input.
MAX_DEPTH = 50

Params = tuple[tuple[bytes, bytes], ...]


@frozen
class Part:
    """
    One MIME entity: its header is C{raw[header_start:header_end]} (C{..body_start} with the
    blank line), its body C{raw[body_start:end]}. A multipart has C{children}; a
    message/rfc822 part has C{message}, the encapsulated message's root entity, and its
    C{envelope}.
    """

    header_start: int
    header_end: int
    body_start: int
    end: int
    type: bytes
    subtype: bytes
    params: Params
    id: bytes | None
    description: bytes | None
    encoding: bytes
    md5: bytes | None
    disposition: tuple[bytes, Params] | None
    language: tuple[bytes, ...] | None
    location: bytes | None
    lines: int  # 0 unless text or message/rfc822 (the only parts that report it)
    children: tuple[Part, ...] = ()
    message: Part | None = None
    envelope: Envelope | None = None

    @property
    def size(self) -> int:
        return self.end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.type.lower() == b"multipart"

    @property
    def is_message(self) -> bool:
        return self.message is not None

    def param(self, name: bytes) -> bytes | None:
        for attr, value in self.params:
            if attr.lower() == name:
                return value
        return None


@frozen
class Span:
    """The offsets of an entity and of the entities under it: all that sections need, cacheable."""

    header_start: int
    header_end: int
    body_start: int
    end: int
    children: tuple[Span, ...] = ()
    message: Span | None = None

    @classmethod
    def of(cls, part: Part) -> Span:
        return cls(
            part.header_start,
            part.header_end,
            part.body_start,
            part.end,
            tuple(cls.of(c) for c in part.children),
            None if part.message is None else cls.of(part.message),
        )

    def to_list(self) -> list[object]:
        """A JSON-ready form: C{[hs, he, bs, end, [children...], message or None]}."""
        return [
            self.header_start,
            self.header_end,
            self.body_start,
            self.end,
            [c.to_list() for c in self.children],
            None if self.message is None else self.message.to_list(),
        ]

    @classmethod
    def from_list(cls, data: list[object]) -> Span:
        hs, he, bs, end, children, message = data
        assert isinstance(hs, int) and isinstance(he, int) and isinstance(bs, int)
        assert isinstance(end, int) and isinstance(children, list)
        return cls(
            hs,
            he,
            bs,
            end,
            tuple(cls.from_list(c) for c in children),
            None if message is None else cls.from_list(message),  # type: ignore[arg-type]
        )


def parse_span(raw: bytes) -> Span:
    """The offsets tree of the message C{raw}."""
    root, _ = parse_structure(raw)
    return Span.of(root)


_MIME_FIELDS = frozenset(
    [
        b"content-type",
        b"content-transfer-encoding",
        b"content-id",
        b"content-description",
        b"content-md5",
        b"content-disposition",
        b"content-language",
        b"content-location",
    ]
)
_MESSAGE_FIELDS = _MIME_FIELDS | ENVELOPE_FIELDS


def parse_structure(raw: bytes) -> tuple[Part, Envelope]:
    """The root entity of the message C{raw} and its envelope, from one scan of the headers."""
    root = _parse_entity(raw, 0, len(raw), default_message=False, depth=0, want_envelope=True)
    assert root.envelope is not None
    return root, root.envelope


def _content_type(value: bytes | None, default_message: bool) -> tuple[bytes, bytes, Params]:
    if value is not None:
        head, params = split_params(unfold(value))
        ctype, slash, subtype = head.partition(b"/")
        ctype, subtype = ctype.strip(), subtype.strip()
        if slash and ctype and subtype and b" " not in ctype and b" " not in subtype:
            return ctype, subtype, tuple(params)
    # RFC 2045 5.2 (and RFC 2046 5.1.5 inside a digest).
    if default_message:
        return b"message", b"rfc822", ()
    return b"text", b"plain", ((b"charset", b"us-ascii"),)


def _parse_entity(
    raw: bytes, start: int, end: int, default_message: bool, depth: int, want_envelope: bool
) -> Part:
    header_end, body_start = find_body_start(raw, start, end)
    fields = _MESSAGE_FIELDS if want_envelope else _MIME_FIELDS
    h = parse_header(raw, start, header_end, fields)
    ctype, subtype, params = _content_type(h.get(b"content-type"), default_message)
    ltype, lsub = ctype.lower(), subtype.lower()
    children: tuple[Part, ...] = ()
    message: Part | None = None
    if ltype == b"multipart":
        boundary = dict((a.lower(), v) for a, v in params).get(b"boundary")
        if not boundary or depth >= MAX_DEPTH:
            ctype, subtype, params = b"text", b"plain", ((b"charset", b"us-ascii"),)
        else:
            children = _parse_multipart(raw, body_start, end, boundary, lsub == b"digest", depth)
    elif ltype == b"message" and lsub == b"rfc822" and depth < MAX_DEPTH:
        message = _parse_entity(
            raw, body_start, end, default_message=False, depth=depth + 1, want_envelope=True
        )
    disposition = None
    dvalue = h.unfolded(b"content-disposition")
    if dvalue:
        dhead, dparams = split_params(dvalue)
        if dhead:
            disposition = (dhead, tuple(dparams))
    language = None
    lvalue = h.unfolded(b"content-language")
    if lvalue:
        langs = tuple(t for t in lvalue.replace(b",", b" ").split() if t)
        language = langs or None
    encoding = h.unfolded(b"content-transfer-encoding")
    return Part(
        header_start=start,
        header_end=header_end,
        body_start=body_start,
        end=end,
        type=ctype,
        subtype=subtype,
        params=params,
        id=h.unfolded(b"content-id"),
        description=h.unfolded(b"content-description"),
        encoding=encoding if encoding else b"7bit",
        md5=h.unfolded(b"content-md5"),
        disposition=disposition,
        language=language,
        location=h.unfolded(b"content-location"),
        # Only text and message/rfc822 parts report lines: don't count a 50 MB attachment's.
        lines=raw.count(b"\n", body_start, end)
        if message is not None or ctype.lower() == b"text"
        else 0,
        children=children,
        message=message,
        envelope=envelope_from_header(h) if want_envelope else None,
    )


def _delimiters(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int, bool]]:
    """
    The delimiter lines of a multipart body in C{raw[start:end]}: C{(line start, line end
    after its line break, is_close)}, up to and including the close delimiter (RFC 2046 5.1.1).
    """
    marker = b"--" + boundary
    found: list[tuple[int, int, bool]] = []
    pos = start
    while True:
        at = raw.find(marker, pos, end)
        if at < 0:
            return found
        pos = at + len(marker)
        if at != start and raw[at - 1] != 0x0A:
            continue
        eol = raw.find(b"\n", pos, end)
        line_end = end if eol < 0 else eol + 1
        rest = raw[pos:line_end]
        close = rest.startswith(b"--")
        if close:
            rest = rest[2:]
        if rest.strip(b" \t\r\n"):
            continue  # "--boundaryX": another boundary sharing a prefix
        found.append((at, line_end, close))
        if close:
            return found
        pos = line_end


def _parse_multipart(
    raw: bytes, start: int, end: int, boundary: bytes, digest: bool, depth: int
) -> tuple[Part, ...]:
    delims = _delimiters(raw, start, end, boundary)
    children = []
    for i, (_at, line_end, close) in enumerate(delims):
        if close:
            break
        if i + 1 < len(delims):
            nxt = delims[i + 1][0]
            # The line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
            if nxt >= line_end + 2 and raw[nxt - 2 : nxt] == b"\r\n":
                part_end = nxt - 2
            elif nxt > line_end and raw[nxt - 1] == 0x0A:
                part_end = nxt - 1
            else:
                part_end = nxt
        else:
            part_end = end  # truncated: no close delimiter
        children.append(
            _parse_entity(
                raw,
                line_end,
                part_end,
                default_message=digest,
                depth=depth + 1,
                want_envelope=False,
            )
        )
    if not children:
        children.append(
            Part(end, end, end, end, b"text", b"plain", ((b"charset", b"us-ascii"),),
                 None, None, b"7bit", None, None, None, None, 0)
        )  # fmt: skip
    return tuple(children)


def _disposition(d: tuple[bytes, Params] | None) -> bytes:
    if d is None:
        return b"NIL"
    return b"(" + string(d[0]) + b" " + param_list(d[1]) + b")"


def _language(lang: tuple[bytes, ...] | None) -> bytes:
    if not lang:
        return b"NIL"
    if len(lang) == 1:
        return string(lang[0])
    return b"(" + b" ".join(string(x) for x in lang) + b")"


def body_to_imap(part: Part, extended: bool) -> bytes:
    """BODYSTRUCTURE (C{extended}) or BODY of C{part} as IMAP bytes (RFC 3501 7.4.2, 9 "body")."""
    out: list[bytes] = []
    _write(part, extended, out)
    return b"".join(out)


def _write(part: Part, extended: bool, out: list[bytes]) -> None:
    out.append(b"(")
    if part.children:
        for child in part.children:
            _write(child, extended, out)
        out.append(b" " + string(part.subtype))
        if extended:
            out.append(b" " + param_list(part.params))
            out.append(b" " + _disposition(part.disposition))
            out.append(b" " + _language(part.language))
            out.append(b" " + nstring(part.location))
        out.append(b")")
        return
    ltype = part.type.lower()
    params = part.params
    if ltype == b"text" and not params:
        params = ((b"charset", b"us-ascii"),)
    out.append(
        b"%s %s %s %s %s %s %d"
        % (
            string(part.type),
            string(part.subtype),
            param_list(params),
            nstring(part.id),
            nstring(part.description),
            string(part.encoding),
            part.size,
        )
    )
    if part.message is not None:
        assert part.message.envelope is not None
        out.append(b" " + part.message.envelope.to_imap() + b" ")
        _write(part.message, extended, out)
        out.append(b" %d" % part.lines)
    elif ltype == b"text":
        out.append(b" %d" % part.lines)
    if extended:
        out.append(b" " + nstring(part.md5))
        out.append(b" " + _disposition(part.disposition))
        out.append(b" " + _language(part.language))
        out.append(b" " + nstring(part.location))
    out.append(b")")
