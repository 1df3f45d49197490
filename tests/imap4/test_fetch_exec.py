"""
The FETCH engine (RFC 3501 6.4.5, 7.4.2; RFC 3516; RFC 7162) over the memory backend, with the
responses checked byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import tracemalloc
from datetime import UTC, datetime

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from tests.backends.test_maildir import ALICE, MaildirCase
from tests.imap4.engine_helpers import (
    BatchMailbox,
    CountingMailbox,
    Output,
    make_mailbox,
    numbered,
    result,
    run,
)
from tests.imap4.helpers import command
from tests.mime import samples
from twisted_mail_stack.imap4._commands import Fetch
from twisted_mail_stack.imap4.fetch import (
    CHUNK_SIZE,
    WHOLE_LIMIT,
    FetchFailed,
    MessageCache,
    fetch,
)
from twisted_mail_stack.interfaces import IMailbox
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import MessageInfo

SIMPLE = samples.IMAPTEST_BODY  # three small messages, "body1", "body22", "body33"


def parse(line: bytes) -> Fetch:
    cmd = command(b"t " + line)
    assert isinstance(cmd, Fetch)
    return cmd


def do_fetch(
    mailbox: IMailbox,
    messages: list[tuple[int, MessageInfo]],
    line: bytes,
    *,
    read_only: bool = False,
    condstore: bool = False,
    cache: MessageCache | None = None,
    recent: frozenset[int] = frozenset(),
) -> tuple[bytes, list[int]]:
    cmd = parse(line)
    largest = messages[-1][1].uid if cmd.uid else messages[-1][0]
    wanted = set(cmd.sequence.select([m[1].uid if cmd.uid else m[0] for m in messages], largest))
    targets = [m for m in messages if (m[1].uid if cmd.uid else m[0]) in wanted]
    out = Output()
    changed = run(
        fetch(
            mailbox,
            targets,
            cmd,
            out,
            cache if cache is not None else MessageCache(),
            read_only=read_only,
            condstore=condstore,
            recent=recent,
        )
    )
    return out.value, list(changed)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


# -- items from the index --------------------------------------------------------------------


def test_index_items_never_open_content() -> None:
    inner, messages = make_mailbox([(SIMPLE[0], ["\\Seen", "$Label"]), SIMPLE[1]])
    mailbox = CountingMailbox(inner)
    data, changed = do_fetch(mailbox, messages, b"FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)")  # type: ignore[arg-type]
    assert data == (
        b'* 1 FETCH (FLAGS (\\Seen $Label) UID 1 RFC822.SIZE %d INTERNALDATE "05-Mar-2024 06:07:08 +0000")\r\n'
        b'* 2 FETCH (FLAGS () UID 2 RFC822.SIZE %d INTERNALDATE "05-Mar-2024 06:07:08 +0000")\r\n'
        % (len(SIMPLE[0]), len(SIMPLE[1]))
    )
    assert changed == []
    assert mailbox.opened == []


def test_uid_fetch_answers_uid_first() -> None:
    """RFC 3501 6.4.8: UID FETCH responses carry UID even when not asked."""
    mailbox, messages = make_mailbox(SIMPLE)
    data, _ = do_fetch(mailbox, messages, b"UID FETCH 2:* FLAGS")
    assert data == b"* 2 FETCH (UID 2 FLAGS ())\r\n* 3 FETCH (UID 3 FLAGS ())\r\n"


def test_uid_star_includes_highest_uid() -> None:
    mailbox, messages = make_mailbox(SIMPLE)
    data, _ = do_fetch(mailbox, messages, b"UID FETCH 10:* UID")
    assert data == b"* 3 FETCH (UID 3)\r\n"


def test_duplicate_items_answered_once() -> None:
    mailbox, messages = make_mailbox(SIMPLE[:1])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1 (UID FLAGS UID)")
    assert data == b"* 1 FETCH (UID 1 FLAGS ())\r\n"


def test_recent_flag() -> None:
    mailbox, messages = make_mailbox(SIMPLE[:2])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1:2 FLAGS", recent=frozenset({2}))
    assert data == b"* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS (\\Recent))\r\n"


def test_condstore_adds_uid_and_modseq() -> None:
    """RFC 7162 3.1: once CONDSTORE is enabled, FETCH responses carry UID and MODSEQ."""
    mailbox, messages = make_mailbox(SIMPLE[:2])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1:2 FLAGS", condstore=True)
    m1, m2 = (m[1].modseq for m in messages)
    assert data == (
        b"* 1 FETCH (UID 1 FLAGS () MODSEQ (%d))\r\n* 2 FETCH (UID 2 FLAGS () MODSEQ (%d))\r\n"
        % (m1, m2)
    )


def test_changedsince_filters_and_implies_modseq() -> None:
    """RFC 7162 3.1.4.1."""
    mailbox, messages = make_mailbox(SIMPLE)
    first = messages[0][1].modseq
    data, _ = do_fetch(mailbox, messages, b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % first)
    m2, m3 = messages[1][1].modseq, messages[2][1].modseq
    assert data == (
        b"* 2 FETCH (FLAGS () MODSEQ (%d))\r\n* 3 FETCH (FLAGS () MODSEQ (%d))\r\n" % (m2, m3)
    )


@pytest.mark.parametrize(
    "macro, names",
    [
        (b"FAST", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]),
        (b"ALL", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"]),
        (b"FULL", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"]),
    ],
)
def test_macros(macro: bytes, names: list[bytes]) -> None:
    """RFC 3501 6.4.5: ALL, FAST and FULL expand to their items, in that order."""
    mailbox, messages = make_mailbox([samples.rfc3501_example()])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1 " + macro)
    found = [
        n for n in [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY ("] if n in data
    ]
    assert [n.rstrip(b" (") for n in found] == names
    assert data.startswith(b"* 1 FETCH (FLAGS () INTERNALDATE ")


# -- structure --------------------------------------------------------------------------------


def test_rfc3501_example_envelope_and_body() -> None:
    """RFC 3501 section 8, message 12: the ENVELOPE and BODY of its FETCH FULL response."""
    raw = samples.rfc3501_example()
    mailbox, messages = make_mailbox([(raw, ["\\Seen"])])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1 (FLAGS RFC822.SIZE ENVELOPE BODY)")
    assert data == (
        b"* 1 FETCH (FLAGS (\\Seen) RFC822.SIZE %d ENVELOPE %s BODY %s)\r\n"
        % (len(raw), samples.RFC3501_ENVELOPE, samples.RFC3501_BODY)
    )


def test_imaptest_envelopes() -> None:
    mailbox, messages = make_mailbox(samples.IMAPTEST_ENVELOPE)
    data, _ = do_fetch(mailbox, messages, b"FETCH 1:* ENVELOPE")
    lines = data.split(b"\r\n")[:-1]
    assert lines == [
        b"* %d FETCH (ENVELOPE %s)" % (n, e)
        for n, e in zip([1, 2, 3, 4, 5], samples.IMAPTEST_ENVELOPE_EXPECTED, strict=True)
    ]


def test_imaptest_bodystructure_and_cache() -> None:
    """imaptest fetch-bodystructure; the second FETCH comes from the cache without opening."""
    inner, messages = make_mailbox([samples.IMAPTEST_BODYSTRUCTURE])
    mailbox = CountingMailbox(inner)
    cache = MessageCache()
    data, _ = do_fetch(mailbox, messages, b"FETCH 1 (BODY BODYSTRUCTURE)", cache=cache)  # type: ignore[arg-type]
    assert data.lower() == (
        b'* 1 fetch (body (("text" "x-myown" ("charset" "us-ascii") nil nil "7bit" 7 1) "mixed")'
        b' bodystructure (("text" "x-myown" ("charset" "us-ascii") nil nil "7bit" 7 1 nil nil nil nil)'
        b' "mixed" ("boundary" "foo bar") nil nil nil))\r\n'
    )
    assert mailbox.opened == [1]
    again, _ = do_fetch(mailbox, messages, b"FETCH 1 (BODY BODYSTRUCTURE ENVELOPE)", cache=cache)  # type: ignore[arg-type]
    assert again.startswith(data[:-3])
    assert mailbox.opened == [1]
    assert cache.hits >= 1


def test_cache_is_bounded_and_keyed_by_mailbox() -> None:
    mailbox, messages = make_mailbox(SIMPLE)
    cache = MessageCache(max_entries=2)
    do_fetch(mailbox, messages, b"FETCH 1:3 BODYSTRUCTURE", cache=cache)
    assert len(cache) == 2
    assert cache.get(mailbox, 1) is None and cache.get(mailbox, 3) is not None
    cache.discard(mailbox, [3])
    assert cache.get(mailbox, 3) is None


# -- body sections ----------------------------------------------------------------------------

MIME = samples.IMAPTEST_MIME
_SUB = MIME[MIME.index(b"From: sub@domain.org") : MIME.index(b"\r\n--foo bar--")]


@pytest.mark.parametrize(
    "item, name, expected",
    [
        (b"BODY.PEEK[]", b"BODY[]", MIME),
        (b"BODY.PEEK[1]", b"BODY[1]", b"hello\r\n"),
        (
            b"BODY.PEEK[1.MIME]",
            b"BODY[1.MIME]",
            b"Content-Type: text/x-myown; charset=us-ascii\r\n\r\n",
        ),
        (b"BODY.PEEK[2]", b"BODY[2]", _SUB),
        (b"BODY.PEEK[2.HEADER]", b"BODY[2.HEADER]", _SUB[: _SUB.index(b"Sub MIME prologue")]),
        (
            b"BODY.PEEK[2.HEADER.FIELDS (from subject X-foo)]",
            b"BODY[2.HEADER.FIELDS (from subject X-foo)]",
            b"From: sub@domain.org\r\nSubject: submsg\r\n\r\n",
        ),
        (
            b"BODY.PEEK[2.HEADER.FIELDS.NOT (from subject)]",
            b"BODY[2.HEADER.FIELDS.NOT (from subject)]",
            b"Date: Sun, 12 Aug 2012 12:34:56 +0300\r\n"
            b'Content-Type: multipart/alternative; boundary="sub1"\r\n\r\n',
        ),
        (b"BODY.PEEK[2.TEXT]", b"BODY[2.TEXT]", _SUB[_SUB.index(b"Sub MIME prologue") :]),
        (b"BODY.PEEK[2.2]", b"BODY[2.2]", b"Hello another world\r\n"),
        (b"BODY.PEEK[2.1.MIME]", b"BODY[2.1.MIME]", b"Content-Type: text/html\r\n\r\n"),
        (b"BODY.PEEK[TEXT]", b"BODY[TEXT]", MIME[MIME.index(b"Root MIME prologue") :]),
        (b"BODY.PEEK[HEADER]", b"BODY[HEADER]", MIME[: MIME.index(b"Root MIME prologue")]),
        (
            b"BODY.PEEK[HEADER.FIELDS (DATE)]",
            b"BODY[HEADER.FIELDS (DATE)]",
            b"Date: Sat, 24 Mar 2007 23:00:00 +0200\r\n\r\n",
        ),
        (b"RFC822.HEADER", b"RFC822.HEADER", MIME[: MIME.index(b"Root MIME prologue")]),
        (b"BODY.PEEK[1]<2.3>", b"BODY[1]<2>", b"llo"),
        (b"BODY.PEEK[1]<100.3>", b"BODY[1]<100>", b""),
    ],
)
def test_imaptest_sections(item: bytes, name: bytes, expected: bytes) -> None:
    """imaptest fetch-body-mime, byte for byte through the engine."""
    mailbox, messages = make_mailbox([MIME])
    data, changed = do_fetch(mailbox, messages, b"FETCH 1 (" + item + b")")
    assert data == b"* 1 FETCH (" + name + b" " + literal(expected) + b")\r\n"
    assert changed == []


@pytest.mark.parametrize("item", [b"BODY.PEEK[3]", b"BODY.PEEK[1.1]", b"BODY.PEEK[1.HEADER]"])
def test_missing_section_is_nil(item: bytes) -> None:
    mailbox, messages = make_mailbox([MIME])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1 " + item)
    name = item.replace(b".PEEK", b"")
    assert data == b"* 1 FETCH (" + name + b" NIL)\r\n"


def test_imaptest_partial_text() -> None:
    """imaptest fetch-body: BODY.PEEK[TEXT]<origin.size> of "body33\\r\\n"."""
    mailbox, messages = make_mailbox(SIMPLE)
    data, _ = do_fetch(mailbox, messages, b"FETCH 3 (BODY.PEEK[TEXT]<5.2> BODY.PEEK[TEXT]<0.3>)")
    assert data == b"* 3 FETCH (BODY[TEXT]<5> {2}\r\n3\r BODY[TEXT]<0> {3}\r\nbod)\r\n"


def test_rfc822_items() -> None:
    raw = SIMPLE[0]
    mailbox, messages = make_mailbox([raw])
    header, text = raw.split(b"\r\n\r\n", 1)
    data, changed = do_fetch(mailbox, messages, b"FETCH 1 (RFC822.HEADER RFC822.TEXT RFC822)")
    assert data == (
        b"* 1 FETCH (RFC822.HEADER "
        + literal(header + b"\r\n\r\n")
        + b" RFC822.TEXT "
        + literal(text)
        + b" RFC822 "
        + literal(raw)
        + b" FLAGS (\\Seen))\r\n"
    )
    assert changed == [1]


# -- \Seen --------------------------------------------------------------------------------------


def test_body_sets_seen_and_answers_flags() -> None:
    """RFC 3501 6.4.5: BODY[] sets \\Seen; the changed flags come in the same response."""
    mailbox, messages = make_mailbox([SIMPLE[0], (SIMPLE[1], ["\\Seen"])])
    data, changed = do_fetch(mailbox, messages, b"FETCH 1:2 (UID BODY[TEXT])")
    assert data == (
        b"* 1 FETCH (UID 1 BODY[TEXT] {7}\r\nbody1\r\n FLAGS (\\Seen))\r\n"
        b"* 2 FETCH (UID 2 BODY[TEXT] {8}\r\nbody22\r\n)\r\n"
    )
    assert changed == [1]
    assert [i.flags for _, i in numbered(mailbox)] == [frozenset({"\\Seen"})] * 2
    # Already seen: nothing changes the second time.
    _, again = do_fetch(mailbox, numbered(mailbox), b"FETCH 1 BODY[TEXT]")
    assert again == []


def test_seen_with_condstore_carries_new_modseq() -> None:
    mailbox, messages = make_mailbox([SIMPLE[0]])
    data, changed = do_fetch(mailbox, messages, b"FETCH 1 (BODY[1])", condstore=True)
    ((_, info),) = numbered(mailbox)
    assert info.modseq > messages[0][1].modseq
    assert (
        data
        == b"* 1 FETCH (UID 1 BODY[1] {7}\r\nbody1\r\n MODSEQ (%d) FLAGS (\\Seen))\r\n"
        % info.modseq
    )


@pytest.mark.parametrize(
    "item", [b"BODY.PEEK[]", b"RFC822.HEADER", b"BINARY.PEEK[1]", b"BODY[HEADER]"]
)
def test_peek_and_read_only_leave_seen_alone(item: bytes) -> None:
    mailbox, messages = make_mailbox([SIMPLE[0]])
    read_only = item == b"BODY[HEADER]"
    data, changed = do_fetch(mailbox, messages, b"FETCH 1 " + item, read_only=read_only)
    assert changed == [] and b"FLAGS" not in data
    assert numbered(mailbox)[0][1].flags == frozenset()


# -- BINARY (RFC 3516) --------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4
BINARY_MESSAGE = (
    b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9 =\r\nau lait\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
    + b"--b\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    b"begin 644 x\r\n"
    b"--b--\r\n"
)


def test_binary_decodes_base64_and_quoted_printable() -> None:
    mailbox, messages = make_mailbox([BINARY_MESSAGE])
    data, _ = do_fetch(
        mailbox, messages, b"FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2]<0.4>)"
    )
    assert data == (
        b"* 1 FETCH (BINARY[1] ~{13}\r\ncaf\xc3\xa9 au lait BINARY.SIZE[2] 1024"
        b" BINARY[2]<0> ~{4}\r\n\x00\x01\x02\x03)\r\n"
    )


def test_binary_unknown_encoding_fails_the_command() -> None:
    """RFC 3516 4.3: NO [UNKNOWN-CTE]."""
    mailbox, messages = make_mailbox([BINARY_MESSAGE])
    with pytest.raises(FetchFailed) as caught:
        do_fetch(mailbox, messages, b"FETCH 1 BINARY.PEEK[3]")
    assert caught.value.code == "UNKNOWN-CTE"


# -- vanished messages, batches -----------------------------------------------------------------


def test_vanished_message_is_skipped() -> None:
    mailbox, messages = make_mailbox(SIMPLE)
    result(mailbox.remove([2]))
    data, _ = do_fetch(mailbox, messages, b"FETCH 1:3 (UID BODY.PEEK[TEXT])")
    assert data == (
        b"* 1 FETCH (UID 1 BODY[TEXT] {7}\r\nbody1\r\n)\r\n"
        b"* 3 FETCH (UID 3 BODY[TEXT] {8}\r\nbody33\r\n)\r\n"
    )


def test_message_reader_batches() -> None:
    """A mailbox with IMessageReader is read in batches, not message by message."""
    inner, messages = make_mailbox(SIMPLE * 50)
    mailbox = BatchMailbox(inner)
    data, _ = do_fetch(mailbox, messages, b"FETCH 1:* BODY.PEEK[]")  # type: ignore[arg-type]
    assert data.count(b" FETCH (BODY[] {") == 150
    assert all(raw in data for raw in SIMPLE)
    assert mailbox.opened == []
    assert len(mailbox.batches) == 3


# -- large messages --------------------------------------------------------------------------


def big_message(size: int) -> bytes:
    header = (
        b"From: big@example.org\r\nSubject: big one\r\nDate: Tue, 5 Mar 2024 06:07:08 +0000\r\n\r\n"
    )
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    return header + line * ((size - len(header)) // len(line))


def test_large_body_streams_with_flow_control() -> None:
    """A 20 MiB BODY[] goes out in chunks, each after the output drained; memory stays small."""
    raw = big_message(20 * 1024 * 1024)
    inner, messages = make_mailbox([raw])
    mailbox = CountingMailbox(inner)
    out = Output(high_water=128 * 1024, keep=False)
    digest = hashlib.sha256()
    write = out.write

    def record(data: bytes) -> None:
        digest.update(data)
        write(data)

    out.write = record  # type: ignore[method-assign]
    done: list[object] = []
    tracemalloc.start()
    try:
        d = Deferred.fromCoroutine(
            fetch(
                mailbox,  # type: ignore[arg-type]
                messages,
                parse(b"FETCH 1 BODY.PEEK[]"),
                out,
                MessageCache(),
                read_only=False,
                condstore=False,
            )
        )
        d.addBoth(done.append)
        rounds = 0
        while not done:
            assert out.waiting, "the fetch neither finished nor waits for the output"
            out.drain()
            rounds += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done == [[]]
    head = b"* 1 FETCH (BODY[] {%d}\r\n" % len(raw)
    assert out.written == len(head) + len(raw) + 3
    assert digest.digest() == hashlib.sha256(head + raw + b")\r\n").digest()
    assert rounds >= len(raw) // (128 * 1024)
    # Never more than a chunk past the high-water mark; no read larger than a chunk.
    assert out.max_outstanding <= 128 * 1024 + CHUNK_SIZE
    assert max(mailbox.read_lengths) <= CHUNK_SIZE
    assert mailbox.bytes_read == len(raw)
    assert peak < 2 * 1024 * 1024, peak
    assert mailbox.open_count == 0  # closed


def test_large_message_header_items_read_only_the_header() -> None:
    raw = big_message(4 * 1024 * 1024)
    inner, messages = make_mailbox([raw])
    mailbox = CountingMailbox(inner)
    data, _ = do_fetch(
        mailbox,  # type: ignore[arg-type]
        messages,
        b"FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.10> RFC822.SIZE)",
    )
    assert data == (
        b'* 1 FETCH (ENVELOPE ("Tue, 5 Mar 2024 06:07:08 +0000" "big one" '
        b'((NIL NIL "big" "example.org")) ((NIL NIL "big" "example.org")) '
        b'((NIL NIL "big" "example.org")) NIL NIL NIL NIL NIL) '
        b"BODY[HEADER.FIELDS (SUBJECT)] {20}\r\nSubject: big one\r\n\r\n "
        b"BODY[TEXT]<0> {10}\r\n0123456789 RFC822.SIZE %d)\r\n" % len(raw)
    )
    assert mailbox.bytes_read <= 2 * CHUNK_SIZE


def test_large_message_parts_after_structure() -> None:
    """BODYSTRUCTURE of a large message analyses it once; its part is then read by range."""
    part = b"x" * (CHUNK_SIZE * 5) + b"\r\n"
    raw = (
        b'From: a@b\r\nContent-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\n\r\nsmall\r\n'
        b"--q\r\nContent-Type: text/plain\r\n\r\n" + part + b"--q--\r\n"
    )
    mailbox, messages = make_mailbox([raw])
    out_data, _ = do_fetch(mailbox, messages, b"FETCH 1 (BODYSTRUCTURE BODY.PEEK[2] BODY.PEEK[1])")
    part = part[:-2]  # the CRLF before the delimiter belongs to it (RFC 2046 5.1.1)
    assert b"BODY[2] " + literal(part) + b" BODY[1] " + literal(b"small") + b")\r\n" in out_data
    assert out_data.startswith(b'* 1 FETCH (BODYSTRUCTURE (("text" "plain"')


def test_internal_date_keeps_utc() -> None:
    when = datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)
    mailbox, messages = make_mailbox([(SIMPLE[0], [], when)])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1 INTERNALDATE")
    assert data == b'* 1 FETCH (INTERNALDATE "17-Jul-1996 09:44:25 +0000")\r\n'


def test_binary_failure_keeps_earlier_responses() -> None:
    mailbox, messages = make_mailbox([SIMPLE[0], BINARY_MESSAGE])
    out = Output()
    with pytest.raises(FetchFailed):
        run(
            fetch(
                mailbox,
                messages,
                parse(b"FETCH 1:2 BINARY.PEEK[3]"),
                out,
                MessageCache(),
                read_only=False,
                condstore=False,
            )
        )
    assert out.value == b"* 1 FETCH (BINARY[3] NIL)\r\n"


class MaildirFetchTests(MaildirCase):
    """The same engine over the Maildir backend, whose IMessageReader serves batches."""

    async def _fill(self, bodies: list[bytes]) -> tuple[IMailbox, list[tuple[int, MessageInfo]]]:
        store = self.make_store()
        await store.create_account(ALICE)
        mailbox = await (await store.open_account(ALICE)).open_mailbox("INBOX")
        self.addCleanup(mailbox.close)
        for raw in bodies:
            await mailbox.append(BytesSource(raw))
        return mailbox, list(enumerate(await mailbox.list_messages(), 1))

    def test_bodies_and_structure(self) -> Deferred[None]:
        big = big_message(WHOLE_LIMIT * 3)

        async def check() -> None:
            mailbox, messages = await self._fill([MIME, big, *SIMPLE])
            out = Output(high_water=64 * 1024)
            cmd = parse(b"FETCH 1:* (BODY.PEEK[] BODYSTRUCTURE)")
            task = Deferred.fromCoroutine(
                fetch(mailbox, messages, cmd, out, MessageCache(), read_only=False, condstore=False)
            )
            while not task.called:
                out.drain()
                await deferLater(reactor, 0, lambda: None)
            assert await task == []
            data = out.value
            for number, raw in enumerate([MIME, big, *SIMPLE], 1):
                assert b"* %d FETCH (BODY[] %s BODYSTRUCTURE (" % (number, literal(raw)) in data
            assert data.count(b" FETCH (") == 5

        return Deferred.fromCoroutine(check())


@pytest.mark.parametrize("shift", [-4, -3, -2, -1, 0, 1])
def test_large_message_blank_line_across_chunks(shift: int) -> None:
    """The end of a long header is found wherever the read chunks split its blank line."""
    first = b"X-Long: " + b"y" * (CHUNK_SIZE + shift - len(b"X-Long: ") - 2) + b"\r\n"
    raw = first + b"\r\nBODY" + b"z" * (WHOLE_LIMIT * 2)
    assert raw.index(b"\r\n\r\n") == CHUNK_SIZE + shift - 2
    mailbox, messages = make_mailbox([raw])
    data, _ = do_fetch(mailbox, messages, b"FETCH 1 (BODY.PEEK[TEXT]<0.6> BODY.PEEK[HEADER]<0.6>)")
    assert data == b"* 1 FETCH (BODY[TEXT]<0> {6}\r\nBODYzz BODY[HEADER]<0> {6}\r\nX-Long)\r\n"


# -- index-only lines: one template per FETCH, flag lists formatted once per flag set ---------

INFO_ITEMS = [b"UID", b"FLAGS", b"RFC822.SIZE", b"INTERNALDATE", b"MODSEQ"]


@pytest.mark.parametrize(
    "items",
    [INFO_ITEMS[:1], INFO_ITEMS[1:2], INFO_ITEMS[:3], INFO_ITEMS[1:], INFO_ITEMS, INFO_ITEMS[::-1]],
)
def test_index_only_lines_match_item_by_item_formatting(items: list[bytes]) -> None:
    from twisted_mail_stack.imap4 import _format as fmt
    from twisted_mail_stack.imap4.fetch import _Fetcher, _plan

    flag_sets = [["\\Seen", "$Label"], [], ["\\Flagged", "\\Seen"], ["\\Seen", "$Label"], []]
    mailbox, messages = make_mailbox([(SIMPLE[i % 3], flags) for i, flags in enumerate(flag_sets)])
    recent = frozenset({2, 4})
    line = b"FETCH 1:* (" + b" ".join(items) + b")"
    data, _ = do_fetch(mailbox, messages, line, recent=recent)
    # The reference: each item formatted on its own, as for a message with content items.
    planned, _ = _plan(parse(line), read_only=False, condstore=False)
    fetcher = _Fetcher(mailbox, planned, Output(), MessageCache(), recent, frozenset())
    expected = b"".join(
        fmt.fetch_line(n, [fetcher.info_item(i, info) for i in planned])  # type: ignore[arg-type]
        for n, info in messages
    )
    assert data == expected
    assert b"FLAGS (\\Seen \\Recent $Label)" in data or b"FLAGS" not in b" ".join(items)
