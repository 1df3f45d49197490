"""The POP3 read-ahead: batches from an L{IMessageReader}, bounded, encoded on arrival."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from twisted.internet.defer import Deferred
from zope.interface import implementer

from twisted_mail_stack.errors import StorageError
from twisted_mail_stack.interfaces import IMessageReader
from twisted_mail_stack.pop3._wire import MessageEncoder
from twisted_mail_stack.pop3.maildrop import Maildrop
from twisted_mail_stack.pop3.readahead import ReadAhead
from twisted_mail_stack.values import MessageInfo

DATE = datetime(2026, 1, 1, tzinfo=UTC)


@implementer(IMessageReader)
class Reader:
    """Answers each read_messages call when the test says so."""

    def __init__(self, messages: dict[int, bytes]) -> None:
        self.messages = messages
        self.calls: list[tuple[list[int], Deferred[Mapping[int, bytes]]]] = []

    def read_messages(self, uids: Sequence[int], max_size: int) -> Deferred[Mapping[int, bytes]]:
        d: Deferred[Mapping[int, bytes]] = Deferred()
        self.calls.append((list(uids), d))
        return d

    def answer(self, call: int = -1) -> None:
        uids, d = self.calls[call]
        d.callback({uid: self.messages[uid] for uid in uids if uid in self.messages})


def setup(sizes: list[int], **limits: int) -> tuple[Reader, ReadAhead]:
    messages = {uid: b".x\n" + b"a" * (size - 3) for uid, size in enumerate(sizes, 10)}
    infos = [MessageInfo(uid, frozenset(), DATE, len(m), 1) for uid, m in messages.items()]
    reader = Reader(messages)
    return reader, ReadAhead(reader, Maildrop.from_infos(infos, 7), **limits)  # type: ignore[arg-type]


def expected(message: bytes) -> bytes:
    encoder = MessageEncoder()
    body = encoder.feed(message) + encoder.end()
    assert encoder.size is not None
    return b"+OK %d octets\r\n" % encoder.size + body


def test_batches_are_bounded_and_encoded_on_arrival() -> None:
    reader, ahead = setup([100] * 10, max_messages=4, max_bytes=1000)
    ahead.advance(1)
    assert [uids for uids, _ in reader.calls] == [[11, 12, 13, 14]]  # messages 2-5
    load = ahead.take(2)
    assert load is not None and not load.done and load.response is None
    reader.answer()
    assert load.done and load.response == expected(reader.messages[11])
    assert load.octets == len(reader.messages[11]) + 3  # LF -> CRLF, and a CRLF at the end
    # the next batch starts once half the budget is free again, not before
    ahead.advance(2)
    assert len(reader.calls) == 1  # messages 3-5 still loaded
    ahead.advance(3)
    assert [uids for uids, _ in reader.calls][1:] == [[15, 16]]  # back to 4: messages 4-7
    assert ahead.loaded_bytes == 400


def test_big_messages_and_failures_are_left_to_retr() -> None:
    reader, ahead = setup([100, 100, 5000, 100], max_size=1000)
    ahead.advance(1)
    assert reader.calls[0][0] == [11, 13]  # message 3 is streamed by RETR instead
    assert ahead.take(3) is None
    reader.calls[0][1].errback(StorageError("disk"))
    load = ahead.take(2)
    assert load is not None and load.done and load.response is None


def test_going_back_starts_over() -> None:
    reader, ahead = setup([100] * 6, max_messages=2)
    ahead.advance(4)
    assert reader.calls[0][0] == [14, 15]
    ahead.advance(1)
    assert reader.calls[1][0] == [11, 12]
