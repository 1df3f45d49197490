"""The selected-mailbox view: sequence numbers, set resolution and when updates may be sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted_mail_stack.imap4._sequence import parse_sequence_set
from twisted_mail_stack.imap4.selected import BadSequence, SelectedMailbox
from twisted_mail_stack.values import (
    FlagsChanged,
    MailboxReset,
    MessageAdded,
    MessageExpunged,
    MessageInfo,
)

WHEN = datetime(2024, 1, 1, tzinfo=UTC)


def info(uid: int, flags: tuple[str, ...] = (), modseq: int | None = None) -> MessageInfo:
    return MessageInfo(uid, frozenset(flags), WHEN, 10, modseq if modseq is not None else uid)


def view(*uids: int, recent: tuple[int, ...] = ()) -> SelectedMailbox:
    return SelectedMailbox("INBOX", [info(u) for u in uids], uidvalidity=7, read_only=False,
                           recent=recent)  # fmt: skip


def numbers(selected: SelectedMailbox, text: str, uid: bool = False) -> list[tuple[int, int]]:
    return [(n, i.uid) for n, i in selected.resolve(parse_sequence_set(text.encode()), uid=uid)]


def test_resolve_sequence_numbers() -> None:
    s = view(3, 5, 9, 12)
    assert numbers(s, "1:*") == [(1, 3), (2, 5), (3, 9), (4, 12)]
    assert numbers(s, "*") == [(4, 12)]
    assert numbers(s, "4:3,1") == [(1, 3), (3, 9), (4, 12)]
    for bad in ("5", "1:5", "5:*"):
        with pytest.raises(BadSequence):
            numbers(s, bad)
    assert numbers(view(), "1:*") == []
    with pytest.raises(BadSequence):
        numbers(view(), "1")


def test_resolve_uids() -> None:
    s = view(3, 5, 9, 12)
    assert numbers(s, "4:9", uid=True) == [(2, 5), (3, 9)]
    assert numbers(s, "100:*", uid=True) == [(4, 12)]  # RFC 3501 6.4.8
    assert numbers(s, "1,2,13", uid=True) == []
    assert numbers(view(), "1:*", uid=True) == []


def test_expunge_held_back_until_allowed() -> None:
    s = view(1, 2, 3)
    s.on_change(MessageExpunged("INBOX", 2, 10))
    s.on_change(MessageAdded("INBOX", info(4)))
    assert s.updates(expunge=False, condstore=False) == b"* 4 EXISTS\r\n"
    s.claimed([])  # RECENT follows once the session has claimed the new message
    assert s.recent_update() == b"* 0 RECENT\r\n" and s.recent_update() == b""
    assert numbers(s, "2") == [(2, 2)]  # still addressable until the EXPUNGE is sent
    assert s.updates(expunge=True, condstore=False) == b"* 2 EXPUNGE\r\n"
    assert numbers(s, "1:*") == [(1, 1), (2, 3), (3, 4)]
    assert s.updates(expunge=True, condstore=False) == b""


def test_unannounced_message_leaves_silently() -> None:
    s = view(1)
    s.on_change(MessageAdded("INBOX", info(2)))
    s.on_change(MessageExpunged("INBOX", 2, 3))
    s.on_change(MessageExpunged("INBOX", 1, 4))
    assert s.updates(expunge=True, condstore=False) == b"* 1 EXPUNGE\r\n"
    assert len(s) == 0 and s.announced == 0


def test_flag_changes_and_duplicates() -> None:
    s = view(1, 2, recent=(2,))
    s.on_change(FlagsChanged("INBOX", info(2, ("\\Seen",), modseq=5)))
    s.on_change(FlagsChanged("INBOX", info(2, ("\\Seen",), modseq=5)))  # seen twice
    s.on_change(FlagsChanged("INBOX", info(1, (), modseq=1)))  # older than known: ignored
    s.on_change(MessageAdded("INBOX", info(1)))  # already known
    assert s.updates(expunge=True, condstore=True) == (
        b"* 2 FETCH (FLAGS (\\Seen \\Recent) UID 2 MODSEQ (5))\r\n"
    )
    s.on_change(FlagsChanged("INBOX", info(1, ("\\Flagged",), modseq=6)))
    s.reported([1])  # the session's own STORE answered it already
    assert s.updates(expunge=True, condstore=False) == b""
    assert s.highestmodseq == 6


def test_recent_claimed_later_and_reset() -> None:
    s = view(1)
    s.on_change(MessageAdded("INBOX", info(2)))
    assert s.unclaimed == [2]
    assert s.updates(expunge=True, condstore=False) == b"* 2 EXISTS\r\n"
    s.claimed([2, 3])  # 3 arrives later, already claimed
    assert s.recent_update() == b"* 1 RECENT\r\n"
    s.on_change(MessageAdded("INBOX", info(3)))
    s.unclaimed = []
    assert s.updates(expunge=True, condstore=False) == b"* 3 EXISTS\r\n* 2 RECENT\r\n"
    s.on_change(MailboxReset("INBOX", 8))
    assert s.reset


def test_recent_never_counts_messages_not_yet_announced() -> None:
    s = view(1)
    s.on_change(MessageAdded("INBOX", info(2)))
    assert s.updates(expunge=True, condstore=False) == b"* 2 EXISTS\r\n"
    s.on_change(MessageAdded("INBOX", info(3)))  # while the claim was on its way
    s.claimed([2, 3])
    assert s.recent_update() == b"* 1 RECENT\r\n"  # not 2: the client knows of 2 messages
    assert s.updates(expunge=True, condstore=False) == b"* 3 EXISTS\r\n* 2 RECENT\r\n"


def _reference(uids: list[int], gone: set[int]) -> list[int]:
    out, current = [], list(uids)
    for uid in sorted(gone):
        index = current.index(uid)
        out.append(index + 1)
        del current[index]
    return out


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(1, 400), max_size=200), st.data())
def test_expunge_numbers_match_one_by_one_model(uids: set[int], data: st.DataObject) -> None:
    ordered = sorted(uids)
    gone = data.draw(st.sets(st.sampled_from(ordered)) if ordered else st.just(set()))
    s = view(*ordered)
    for uid in gone:
        s.on_change(MessageExpunged("INBOX", uid, 1000))
    out = s.updates(expunge=True, condstore=False)
    expected = b"".join(b"* %d EXPUNGE\r\n" % n for n in _reference(ordered, gone))
    assert out == expected
    assert s.uids == [u for u in ordered if u not in gone]
