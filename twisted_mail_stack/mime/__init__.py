"""
Message structure for IMAP (RFC 3501 6.4.5, 7.4.2): ENVELOPE, BODY, BODYSTRUCTURE, sections
and the decoding SEARCH needs, over the raw stored bytes. Pure functions: no I/O, no Twisted.

Offsets, sizes and line counts are those of the bytes given. A server that sends messages with
CRLF line ends (L{twisted_mail_stack.crlf}) must analyse the CRLF form, so that RFC822.SIZE,
BODYSTRUCTURE sizes and section octets agree with what it sends.

Headers are scanned with our own byte-offset reader rather than C{email.parser}, because
sections must be the stored octets and the stdlib parser keeps no offsets; the stdlib is used
for what it does well (date parsing, codecs, base64 / quoted-printable).
"""

from __future__ import annotations

import json

from attrs import frozen

from twisted_mail_stack.mime.envelope import Address, Envelope, envelope_only, parse_addresses
from twisted_mail_stack.mime.search import decode_words, matches_text, parse_date, sent_date
from twisted_mail_stack.mime.sections import Located, SectionSpec, locate, section_bytes
from twisted_mail_stack.mime.structure import Part, Span, body_to_imap, parse_span, parse_structure

__all__ = [
    "Address",
    "Envelope",
    "Located",
    "MessageStructure",
    "Part",
    "SectionSpec",
    "Span",
    "analyse",
    "body_to_imap",
    "decode_words",
    "envelope_only",
    "locate",
    "matches_text",
    "parse_addresses",
    "parse_date",
    "parse_span",
    "parse_structure",
    "section_bytes",
    "sent_date",
]

_CACHE_VERSION = 1


@frozen
class MessageStructure:
    """
    What FETCH needs of a message, computed once and cacheable per message (the IMAP
    session's LRU, or a backend column): the ENVELOPE, BODY and BODYSTRUCTURE in their IMAP
    forms and the offsets tree for sections (pass C{spans} as C{root} to L{section_bytes}).

    A message's bytes never change under its UID, so the cache key is (UIDVALIDITY, UID) and
    the only invalidation is expunge; L{to_bytes} carries a format version, so a cache written
    by an older release is read as a miss (L{from_bytes} raises ValueError), never misread.
    """

    envelope: bytes
    body: bytes
    bodystructure: bytes
    spans: Span

    def to_bytes(self) -> bytes:
        """A compact serialised form for a cache; L{from_bytes} reads it back."""
        return json.dumps(
            [
                _CACHE_VERSION,
                self.envelope.decode("latin-1"),
                self.body.decode("latin-1"),
                self.bodystructure.decode("latin-1"),
                self.spans.to_list(),
            ],
            separators=(",", ":"),
        ).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageStructure:
        """Read L{to_bytes}'s form; ValueError if it is not one (e.g. an older version)."""
        try:
            version, envelope, body, bodystructure, spans = json.loads(data)
            if version != _CACHE_VERSION:
                raise ValueError(f"cache version {version!r}")
            return cls(
                envelope.encode("latin-1"),
                body.encode("latin-1"),
                bodystructure.encode("latin-1"),
                Span.from_list(spans),
            )
        except (TypeError, AttributeError, AssertionError, UnicodeError) as e:
            raise ValueError(f"not a cached message structure: {e}") from e


def analyse(raw: bytes) -> MessageStructure:
    """ENVELOPE, BODY, BODYSTRUCTURE and section offsets of C{raw} from one parse. Never raises."""
    root, envelope = parse_structure(raw)
    return MessageStructure(
        envelope=envelope.to_imap(),
        body=body_to_imap(root, extended=False),
        bodystructure=body_to_imap(root, extended=True),
        spans=Span.of(root),
    )
