"""
FETCH BODY[section]<partial> (RFC 3501 6.4.5) over the raw bytes, by offsets from the tree of
L{twisted_mail_stack.mime.structure.Part}: the octets returned are the stored ones.
"""

from __future__ import annotations

from typing import Literal, Protocol

from attrs import field, frozen

from twisted_mail_stack.mime._headers import iter_fields
from twisted_mail_stack.mime.structure import parse_span

__all__ = ["SectionSpec", "SectionKind", "locate", "section_bytes", "filter_header_fields"]

SectionKind = Literal["", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]


def _lower_fields(fields: tuple[bytes, ...]) -> tuple[bytes, ...]:
    return tuple(f.lower() for f in fields)


@frozen
class SectionSpec:
    """
    A section: C{part} is the part path (C{()} for the whole message), C{kind} the section text,
    C{fields} the header field names of HEADER.FIELDS[.NOT], C{partial} the C{<origin.size>}.
    """

    part: tuple[int, ...] = ()
    kind: SectionKind = ""
    fields: tuple[bytes, ...] = field(default=(), converter=_lower_fields)
    partial: tuple[int, int] | None = None


@frozen
class Located:
    """
    Where a section's octets are: C{raw[start:end]}; for HEADER.FIELDS[.NOT] that range is the
    header to filter with L{filter_header_fields}.
    """

    start: int
    end: int
    filter: bool = False


class Node(Protocol):
    """An entity's offsets: L{structure.Part} or the cacheable L{structure.Span}."""

    @property
    def header_start(self) -> int: ...
    @property
    def header_end(self) -> int: ...
    @property
    def body_start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def children(self) -> tuple[Node, ...]: ...
    @property
    def message(self) -> Node | None: ...


def _children(entity: Node) -> tuple[Node, ...]:
    """
    The parts numbered 1..n under a message-like entity or a multipart (RFC 3501 6.4.5): a
    multipart's body parts; for a message/rfc822 part, the parts of the encapsulated message;
    a non-multipart message has one part, its body.
    """
    if entity.children:
        return entity.children
    if entity.message is not None:
        inner = entity.message
        return inner.children if inner.children else (inner,)
    return ()


def _resolve(root: Node, path: tuple[int, ...]) -> Node | None:
    # The message itself numbers like a message/rfc822 part's content.
    current: Node | None = None
    siblings: tuple[Node, ...] = root.children if root.children else (root,)
    for n in path:
        if n < 1 or n > len(siblings):
            return None
        current = siblings[n - 1]
        siblings = _children(current)
    return current


def locate(root: Node, spec: SectionSpec) -> Located | None:
    """Where C{spec}'s octets are (before C{partial}), or None if the section does not exist."""
    if not spec.part:
        message = root
    else:
        target = _resolve(root, spec.part)
        if target is None:
            return None
        if spec.kind == "":
            return Located(target.body_start, target.end)
        if spec.kind == "MIME":
            return Located(target.header_start, target.body_start)
        if target.message is None:
            return None  # HEADER / TEXT only apply to a message (RFC 3501 6.4.5)
        message = target.message
    if spec.kind == "":
        return Located(message.header_start, message.end)
    if spec.kind == "TEXT":
        return Located(message.body_start, message.end)
    if spec.kind == "HEADER":
        return Located(message.header_start, message.body_start)
    if spec.kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return Located(message.header_start, message.header_end, filter=True)
    return None  # MIME of the whole message is not a section


def filter_header_fields(
    raw: bytes, start: int, end: int, fields: tuple[bytes, ...], negate: bool
) -> bytes:
    """
    The fields of the header C{raw[start:end]} named in C{fields} (lower-case), or not named
    when C{negate}, in stored order, followed by a blank line (RFC 3501 6.4.5).
    """
    wanted = frozenset(fields)
    out = []
    for name, fstart, fend in iter_fields(raw, start, end):
        if (name in wanted) != negate:
            chunk = raw[fstart:fend]
            if not chunk.endswith(b"\n"):
                chunk += b"\r\n"
            out.append(chunk)
    out.append(_line_end(raw, start, end))
    return b"".join(out)


def _line_end(raw: bytes, start: int, end: int) -> bytes:
    """The header's own line end: LF for an LF-only header, else CRLF."""
    eol = raw.find(b"\n", start, end)
    return b"\n" if eol > start and raw[eol - 1] != 0x0D else b"\r\n"


def section_bytes(raw: bytes, spec: SectionSpec, root: Node | None = None) -> bytes | None:
    """
    The octets of C{spec} in the message C{raw}, C{partial} applied, or None if the section
    does not exist. C{root} is the message's parsed tree when the caller has it (from
    L{twisted_mail_stack.mime.analyse}); otherwise the message is parsed here.
    """
    if root is None:
        root = parse_span(raw)
    where = locate(root, spec)
    if where is None:
        return None
    if where.filter:
        data = filter_header_fields(
            raw, where.start, where.end, spec.fields, spec.kind == "HEADER.FIELDS.NOT"
        )
    else:
        data = raw[where.start : where.end]
    return apply_partial(data, spec.partial)


def apply_partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    """C{data[origin:origin+size]}: empty when the origin is past the end (RFC 3501 6.4.5)."""
    if partial is None:
        return data
    origin, size = partial
    origin = max(origin, 0)
    return data[origin : origin + max(size, 0)]


__all__ += ["Located", "Node", "apply_partial"]
