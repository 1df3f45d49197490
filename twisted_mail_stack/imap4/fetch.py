"""
The FETCH engine (RFC 3501 6.4.5, 7.4.2; RFC 3516 BINARY; RFC 7162 CONDSTORE): untagged FETCH
responses for messages of the selected mailbox, written to the session's output.

What the index knows (FLAGS, INTERNALDATE, RFC822.SIZE, UID, MODSEQ) never opens a message.
ENVELOPE, BODY and BODYSTRUCTURE come from the session's L{MessageCache}, the mailbox's
persistent L{IMessageCache} (looked up for many messages per trip) or one analysis of the
message, which is then written to both. Small messages are read whole (in batches when the
mailbox provides L{IMessageReader}); larger ones are read by ranges, and a large body goes out
in chunks with a wait for the output to drain between them, so memory per session stays bounded.

Messages are served as stored: RFC822.SIZE is the stored size, and the octets of BODY[] are
exactly that many, so the two always agree.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Container, Sequence
from operator import attrgetter
from typing import Protocol

from twisted.internet.defer import Deferred

from ..errors import NoSuchMessage
from ..interfaces import IMailbox, IMessageContent, IMessageReader
from ..mime import SectionSpec, envelope_only, locate
from ..mime._headers import find_body_start
from ..mime.sections import _resolve, filter_header_fields
from ..mime.structure import Part, parse_structure
from ..values import Flag, MessageInfo, StoreMode
from . import _format as fmt
from ._commands import Fetch
from ._fetch import Attribute, BinarySize, BodySection, FetchItem, Section
from .cache import MessageCache, Structure

__all__ = ["FetchFailed", "FetchOutput", "MessageCache", "fetch", "read_header"]

#: Bytes read from the store per step when streaming, and the most written before a drain wait.
CHUNK_SIZE = 64 * 1024
#: Messages up to this size are read whole; larger ones by ranges.
WHOLE_LIMIT = 256 * 1024
#: Responses are gathered up to this many bytes per write.
FLUSH_AT = 64 * 1024
#: Whole messages loaded per trip to an L{IMessageReader}: at most this many, and this many bytes.
BATCH_MESSAGES = 64
BATCH_BYTES = 2 * 1024 * 1024
#: Structures looked up in the caches per trip.
PREFETCH_MESSAGES = 1024

A = Attribute
_INFO_ONLY = frozenset({A.FLAGS, A.INTERNALDATE, A.RFC822_SIZE, A.UID, A.MODSEQ})
_STRUCTURE = frozenset({A.ENVELOPE, A.BODY, A.BODYSTRUCTURE})
# RFC 3501 6.4.5: RFC822, RFC822.HEADER and RFC822.TEXT equal BODY[], BODY.PEEK[HEADER], BODY[TEXT].
_RFC822 = {
    A.RFC822: BodySection(Section()),
    A.RFC822_HEADER: BodySection(Section(text="HEADER"), peek=True),
    A.RFC822_TEXT: BodySection(Section(text="TEXT")),
}


class FetchOutput(Protocol):
    """Where responses go: the session's transport, with its flow control."""

    def write(self, data: bytes) -> None: ...

    def drained(self) -> Deferred[None]:
        """Fires once the transport is writable again (at once when it is not paused)."""


class FetchFailed(Exception):
    """
    The command must end in C{NO [code] text} (e.g. RFC 3516 C{UNKNOWN-CTE}); the responses
    of earlier messages have been written, none of this message's.
    """

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


# A resolved body item: octets, a range of the stored message, or None for NIL.
Piece = bytes | tuple[int, int] | None


class _Writer:
    def __init__(self, out: FetchOutput) -> None:
        self._out = out
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)

    @property
    def full(self) -> bool:
        return self._size >= FLUSH_AT

    async def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self._parts, self._size = [], 0
            self._out.write(data)
            await self._out.drained()


class _Message:
    """One message's bytes, loaded only as far as its items need."""

    def __init__(
        self,
        mailbox: IMailbox,
        info: MessageInfo,
        cache: MessageCache,
        structure: Structure | None,
        raw: bytes | None,
    ) -> None:
        self.mailbox = mailbox
        self.info = info
        self.cache = cache
        self.structure = structure
        self.raw = raw
        self.content: IMessageContent | None = None
        self._bounds: tuple[int, int] | None = None

    @property
    def size(self) -> int:
        if self.raw is not None:
            return len(self.raw)
        if self.content is not None:
            return int(self.content.size)
        return self.info.size

    async def open(self) -> IMessageContent:
        """The content, opened once; L{NoSuchMessage} if the message is gone."""
        if self.content is None:
            self.content = await self.mailbox.open_content(self.info.uid)
        return self.content

    async def close(self) -> None:
        if self.content is not None:
            content, self.content = self.content, None
            await content.close()

    async def read(self, start: int, end: int) -> bytes:
        if self.raw is not None:
            return self.raw[start:end]
        content = await self.open()
        chunks = []
        while start < end:
            data = await content.read(start, end - start)
            if not data:
                break
            chunks.append(data)
            start += len(data)
        return b"".join(chunks)

    async def load(self) -> bytes:
        if self.raw is None:
            content = await self.open()
            self.raw = await self.read(0, int(content.size))
        return self.raw

    async def get_structure(self) -> Structure:
        if self.structure is None:
            large = self.raw is None and self.size > WHOLE_LIMIT
            self.structure = self.cache.analyse(self.mailbox, self.info.uid, await self.load())
            if large:
                self.raw = None  # sections of a large message are then read by ranges
        return self.structure

    async def bounds(self) -> tuple[int, int]:
        """C{(header_end, body_start)} of the message: its header without and with the blank line."""
        if self._bounds is None:
            if self.structure is not None:
                spans = self.structure.spans
                self._bounds = (spans.header_end, spans.body_start)
            elif self.raw is not None:
                self._bounds = find_body_start(self.raw, 0, len(self.raw))
            else:
                self._bounds = await self._scan_header()
        return self._bounds

    async def _scan_header(self) -> tuple[int, int]:
        _, header_end, body_start = await read_header(await self.open())
        return header_end, body_start

    async def stream(self, start: int, end: int, writer: _Writer) -> None:
        """Write C{[start, end)} of the content in chunks, waiting for the output between them."""
        await writer.flush()
        content = await self.open()
        while start < end:
            data = await content.read(start, min(CHUNK_SIZE, end - start))
            if not data:
                # Shorter than its size said: keep the literal's length so the session stays in
                # step with the client.
                data = b" " * min(CHUNK_SIZE, end - start)
            start += len(data)
            writer.add(data)
            await writer.flush()


async def read_header(
    content: IMessageContent, chunk_size: int = CHUNK_SIZE
) -> tuple[bytes, int, int]:
    """
    Read C{content} up to the end of its header: the octets read (the header and perhaps some
    of the body), C{header_end} and C{body_start} (both the size read for a message that is
    all header). Linear in the header's size, wherever the chunks split the blank line.
    """
    size = int(content.size)
    header = bytearray()
    while len(header) < size:
        data = await content.read(len(header), chunk_size)
        if not data:
            break
        seen = len(header)
        header += data
        if not seen:
            header_end, body_start = find_body_start(bytes(header), 0, len(header))
            if header_end < len(header):
                return bytes(header), header_end, body_start
        else:
            # Only the new octets, and two before them for a blank line split by the chunk.
            found = _BLANK_LINE.search(header, seen - 2)
            if found is not None:
                return bytes(header), found.start() + 1, found.end()
    return bytes(header), len(header), len(header)  # all header (RFC 5322 2.1)


def _partial(piece: Piece, partial: tuple[int, int] | None) -> Piece:
    """RFC 3501 6.4.5 <origin.octets>: empty when the origin is past the end."""
    if partial is None or piece is None:
        return piece
    origin, length = partial
    if isinstance(piece, bytes):
        return piece[origin : origin + length]
    start, end = piece
    first = min(start + origin, end)
    return (first, min(end, first + length))


async def _section(message: _Message, section: Section) -> Piece:
    """Where BODY[section] is, before any partial."""
    fields = tuple(f.encode("ascii") for f in section.fields)
    negate = section.text == "HEADER.FIELDS.NOT"
    if not section.part:
        if section.text is None:
            if message.raw is None:
                await message.open()
            return (0, message.size)
        header_end, body_start = await message.bounds()
        if section.text == "HEADER":
            return (0, body_start)
        if section.text == "TEXT":
            return (body_start, message.size)
        header = await message.read(0, header_end)
        return filter_header_fields(
            header, 0, len(header), tuple(f.lower() for f in fields), negate
        )
    structure = await message.get_structure()
    spec = SectionSpec(section.part, section.text or "", fields)  # type: ignore[arg-type]
    where = locate(structure.spans, spec)
    if where is None:
        return None
    if where.filter:
        header = await message.read(where.start, where.end)
        return filter_header_fields(header, 0, len(header), spec.fields, negate)
    return (where.start, where.end)


_BLANK_LINE = re.compile(rb"\n\r?\n")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


async def _binary(message: _Message, part: tuple[int, ...]) -> bytes | None:
    """RFC 3516: the part's content with its Content-Transfer-Encoding undone."""
    raw = await message.load()
    if not part:
        return raw
    root, _ = parse_structure(raw)
    node = _resolve(root, part)
    if node is None:
        return None
    assert isinstance(node, Part)
    body = raw[node.body_start : node.end]
    if node.children or node.message is not None:
        return body
    encoding = node.encoding.lower()
    if encoding in (b"", b"7bit", b"8bit", b"binary"):
        return body
    try:
        if encoding == b"base64":
            body = _NOT_BASE64.sub(b"", body)  # line ends, padding and junk
            if len(body) % 4 == 1:
                body = body[:-1]  # a lone sextet carries no whole octet
            return binascii.a2b_base64(body + b"=" * (-len(body) % 4))
        if encoding == b"quoted-printable":
            return binascii.a2b_qp(body)
    except (binascii.Error, ValueError):
        raise FetchFailed("UNKNOWN-CTE", "Cannot decode the part's content") from None
    raise FetchFailed("UNKNOWN-CTE", "Unknown Content-Transfer-Encoding")


def _plan(command: Fetch, *, read_only: bool, condstore: bool) -> tuple[list[FetchItem], bool]:
    """The items to answer, in order, and whether they set \\Seen."""
    items: list[FetchItem] = []
    for item in command.items:
        if item not in items:
            items.append(item)
    # RFC 3501 6.4.8: UID FETCH answers with UID; RFC 7162 3.1: once CONDSTORE is enabled,
    # every FETCH response carries UID and MODSEQ; CHANGEDSINCE implies MODSEQ (3.1.4.1).
    if (command.uid or condstore) and A.UID not in items:
        items.insert(0, A.UID)
    if (condstore or command.changed_since is not None) and A.MODSEQ not in items:
        items.append(A.MODSEQ)
    sets_seen = not read_only and any(
        (isinstance(i, BodySection) and not i.peek) or i in (A.RFC822, A.RFC822_TEXT) for i in items
    )
    return items, sets_seen


class _Fetcher:
    def __init__(
        self,
        mailbox: IMailbox,
        items: list[FetchItem],
        out: FetchOutput,
        cache: MessageCache,
        recent: Container[int],
        changed: Container[int],
    ) -> None:
        self.mailbox = mailbox
        self.items = items
        self.cache = cache
        self.recent = recent
        self.changed = changed
        self.writer = _Writer(out)
        self.content_items = any(i not in _INFO_ONLY and i not in _STRUCTURE for i in items)
        self.structure_items = any(i in _STRUCTURE for i in items)

    def info_item(self, item: Attribute, info: MessageInfo) -> bytes:
        if item is A.FLAGS:
            return fmt.fetch_flags(info.flags, recent=info.uid in self.recent)
        if item is A.UID:
            return fmt.fetch_uid(info.uid)
        if item is A.RFC822_SIZE:
            return fmt.fetch_size(info.size)
        if item is A.INTERNALDATE:
            return fmt.fetch_internaldate(info.internal_date)
        assert item is A.MODSEQ
        return fmt.fetch_modseq(info.modseq)

    async def run(self, targets: Sequence[tuple[int, MessageInfo]]) -> None:
        if not self.content_items and not self.structure_items:
            await self._info_only(targets)
            return
        reader = IMessageReader(self.mailbox, None)
        start = 0
        known: dict[int, Structure] = {}
        known_until = 0
        while start < len(targets):
            if self.structure_items and start >= known_until:
                # The structures of the next stretch from the session's and the mailbox's
                # caches in one trip; those analysed meanwhile go back in one trip too.
                await self.cache.save(self.mailbox)
                known_until = start + PREFETCH_MESSAGES
                uids = [i.uid for _, i in targets[start:known_until]]
                known = await self.cache.prefetch(self.mailbox, uids)
            batch: list[tuple[int, MessageInfo, Structure | None, bool]] = []
            wanted: list[int] = []
            total = 0
            while start < len(targets) and len(batch) < BATCH_MESSAGES and total < BATCH_BYTES:
                number, info = targets[start]
                start += 1
                structure = known.get(info.uid) if self.structure_items else None
                needs = self.content_items or structure is None
                if needs and info.size <= WHOLE_LIMIT:
                    wanted.append(info.uid)
                    total += info.size
                batch.append((number, info, structure, needs))
            loaded: dict[int, bytes] = {}
            if reader is not None and len(wanted) > 1:
                loaded = dict(await reader.read_messages(wanted, WHOLE_LIMIT))
            for number, info, structure, needs in batch:
                message = _Message(
                    self.mailbox, info, self.cache, structure, loaded.pop(info.uid, None)
                )
                try:
                    await self._message(number, message, needs)
                except FetchFailed:
                    await self.writer.flush()  # the earlier messages' responses stand
                    await self.cache.save(self.mailbox)
                    raise
        await self.writer.flush()
        await self.cache.save(self.mailbox)

    async def _info_only(self, targets: Sequence[tuple[int, MessageInfo]]) -> None:
        writer, items, changed = self.writer, self.items, self.changed
        if not changed:
            # The usual case (only body items set \Seen): one template per line.
            line = _info_line(items, self.recent)  # type: ignore[arg-type]
            for start in range(0, len(targets), _INFO_BATCH):
                writer.add(b"".join([line(n, i) for n, i in targets[start : start + _INFO_BATCH]]))
                if writer.full:
                    await writer.flush()
            await writer.flush()
            return
        for number, info in targets:
            values = [self.info_item(i, info) for i in items]  # type: ignore[arg-type]
            if info.uid in changed and A.FLAGS not in items:
                values.append(self.info_item(A.FLAGS, info))
            writer.add(fmt.fetch_line(number, values))
            if writer.full:
                await writer.flush()
        await writer.flush()

    async def _message(self, number: int, message: _Message, needs: bool) -> None:
        info = message.info
        try:
            if needs:
                if message.raw is None and message.size <= WHOLE_LIMIT:
                    await message.load()
                elif message.raw is None:
                    await message.open()
            values = [await self._value(item, message) for item in self.items]
            if info.uid in self.changed and A.FLAGS not in self.items:
                values.append(self.info_item(A.FLAGS, info))
            await self._write(number, values, message)
        except NoSuchMessage:
            return  # expunged by another session meanwhile: it gets no response
        finally:
            await message.close()

    async def _value(self, item: FetchItem, message: _Message) -> bytes | tuple[bytes, Piece]:
        """An item as bytes, or as a name and a body piece to write as a literal."""
        if item in _INFO_ONLY:
            return self.info_item(item, message.info)  # type: ignore[arg-type]
        if item is A.ENVELOPE:
            if message.structure is None and message.raw is None:
                # A large message not analysed yet: its header is enough.
                header_end, _ = await message.bounds()
                envelope = envelope_only(await message.read(0, header_end)).to_imap()
            else:
                envelope = (await message.get_structure()).envelope
            return b"ENVELOPE " + envelope
        if item is A.BODY:
            return b"BODY " + (await message.get_structure()).body
        if item is A.BODYSTRUCTURE:
            return b"BODYSTRUCTURE " + (await message.get_structure()).bodystructure
        if isinstance(item, BinarySize):
            data = await _binary(message, item.part)
            return fmt.section_name(item) + b" %d" % (0 if data is None else len(data))
        if isinstance(item, Attribute):
            section = _RFC822[item]
            return (item.value.encode("ascii"), await _section(message, section.section))
        assert isinstance(item, BodySection)
        if item.binary:
            piece: Piece = await _binary(message, item.section.part)
        else:
            piece = await _section(message, item.section)
        return (fmt.section_name(item), _partial(piece, item.partial))

    async def _write(
        self, number: int, values: list[bytes | tuple[bytes, Piece]], message: _Message
    ) -> None:
        writer = self.writer
        writer.add(fmt.fetch_start(number))
        for i, value in enumerate(values):
            if i:
                writer.add(b" ")
            if isinstance(value, bytes):
                writer.add(value)
                continue
            name, piece = value
            binary = name.startswith(b"BINARY")
            if piece is None:
                writer.add(name + b" NIL")
            elif isinstance(piece, bytes):
                writer.add(name + b" " + fmt.literal_header(len(piece), binary=binary) + piece)
            else:
                start, end = piece
                writer.add(name + b" " + fmt.literal_header(end - start, binary=binary))
                if message.raw is not None or end - start <= CHUNK_SIZE:
                    writer.add(await message.read(start, end))
                else:
                    await message.stream(start, end, writer)
        writer.add(fmt.FETCH_END)
        if writer.full:
            await writer.flush()


#: Lines of index-only FETCH responses formatted per step.
_INFO_BATCH = 512
#: The value of each index-only item in a line template, and how it is formatted.
_INFO_TEMPLATE = {
    A.UID: b"UID %d",
    A.RFC822_SIZE: b"RFC822.SIZE %d",
    A.MODSEQ: b"MODSEQ (%d)",
    A.FLAGS: b"%s",
    A.INTERNALDATE: b"%s",
}


def _info_line(
    items: Sequence[Attribute], recent: Container[int]
) -> Callable[[int, MessageInfo], bytes]:
    """
    C{line(number, info)}: the whole C{* n FETCH (...)} line for index-only C{items}, as
    L{_Fetcher.info_item} and L{fmt.fetch_line} would give it, with one C{%} per message. The
    messages of a mailbox share a few flag sets, so C{FLAGS (...)} is formatted once per set.
    """
    flag_items: dict[object, bytes] = {}

    def flags(info: MessageInfo) -> bytes:
        key: object = info.flags
        is_recent = info.uid in recent
        if is_recent:
            key = (key, True)  # a frozenset never equals a tuple
        value = flag_items.get(key)
        if value is None:
            value = flag_items[key] = fmt.fetch_flags(info.flags, recent=is_recent)
        return value

    getters: dict[Attribute, Callable[[MessageInfo], object]] = {
        A.UID: attrgetter("uid"),
        A.RFC822_SIZE: attrgetter("size"),
        A.MODSEQ: attrgetter("modseq"),
        A.FLAGS: flags,
        A.INTERNALDATE: lambda info: fmt.fetch_internaldate(info.internal_date),
    }
    template = b"* %d FETCH (" + b" ".join(_INFO_TEMPLATE[i] for i in items) + fmt.FETCH_END
    get = [getters[i] for i in items]
    if len(get) == 1:
        (g1,) = get
        return lambda n, info: template % (n, g1(info))
    if len(get) == 2:
        g1, g2 = get
        return lambda n, info: template % (n, g1(info), g2(info))
    if len(get) == 3:
        g1, g2, g3 = get
        return lambda n, info: template % (n, g1(info), g2(info), g3(info))
    if len(get) == 4:
        g1, g2, g3, g4 = get
        return lambda n, info: template % (n, g1(info), g2(info), g3(info), g4(info))
    return lambda n, info: template % (n, *[g(info) for g in get])


async def fetch(
    mailbox: IMailbox,
    targets: Sequence[tuple[int, MessageInfo]],
    command: Fetch,
    out: FetchOutput,
    cache: MessageCache,
    *,
    read_only: bool,
    condstore: bool,
    recent: Container[int] = frozenset(),
) -> Sequence[int]:
    """
    Write an untagged FETCH response for each of C{targets} (sequence number, info), in order,
    and return the UIDs whose flags this FETCH changed (it sets \\Seen for a non-PEEK body item
    on a read-write mailbox, RFC 3501 6.4.5, and then answers FLAGS too). C{recent} holds the
    UIDs that are \\Recent in this session. A message that has vanished meanwhile is skipped.
    Raises L{FetchFailed} for a BINARY part it cannot decode.
    """
    items, sets_seen = _plan(command, read_only=read_only, condstore=condstore)
    if command.changed_since is not None:
        since = command.changed_since
        targets = [(n, i) for n, i in targets if i.modseq > since]  # RFC 7162 3.1.4.1
    changed: dict[int, MessageInfo] = {}
    if sets_seen:
        unseen = [i.uid for _, i in targets if Flag.SEEN not in i.flags]
        if unseen:
            result = await mailbox.set_flags(unseen, [Flag.SEEN], StoreMode.ADD)
            changed = {i.uid: i for i in result.updated}
            targets = [(n, changed.get(i.uid, i)) for n, i in targets]
    await _Fetcher(mailbox, items, out, cache, recent, changed).run(targets)
    return [i.uid for _, i in targets if i.uid in changed] if changed else []
