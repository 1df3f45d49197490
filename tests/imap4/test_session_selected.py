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


def test_resolved_rows_follow_flag_changes_arrivals_and_expunges() -> None:
    """The (number, info) rows FETCH, STORE and SEARCH share are rebuilt after every change."""
    s = view(3, 5, 9)
    before = s.resolve(parse_sequence_set(b"1:*"), uid=False)
    assert [i.flags for _, i in before] == [frozenset()] * 3
    s.on_change(FlagsChanged("INBOX", info(5, ("\\Seen",), modseq=20)))
    assert s.messages()[1][1].flags == {"\\Seen"}
    assert numbers(s, "2", uid=False) == [(2, 5)]
    assert s.resolve(parse_sequence_set(b"5"), uid=True)[0][1].modseq == 20
    assert [i.flags for _, i in before] == [frozenset()] * 3  # what was handed out stays put
    s.on_change(MessageAdded("INBOX", info(11)))
    assert numbers(s, "1:*") == [(1, 3), (2, 5), (3, 9), (4, 11)]
    s.on_change(MessageExpunged("INBOX", 5, 30))
    s.updates(expunge=True, condstore=False)
    assert numbers(s, "1:*") == [(1, 3), (2, 9), (3, 11)]
    assert numbers(s, "9:*,1:3", uid=True) == [(1, 3), (2, 9), (3, 11)]
    assert numbers(s, "3,1", uid=False) == [(1, 3), (3, 11)]


def test_flag_updates_formatted_per_flag_set_stay_exact() -> None:
    """Untagged FETCH of flags: shared per flag set, still exact for \\Recent and many sets."""
    s = view(*range(1, 400), recent=(2,))
    for uid in range(1, 400):
        s.on_change(
            FlagsChanged("INBOX", info(uid, ("\\Seen", f"$k{uid % 300}"), modseq=500 + uid))
        )
    lines = s.updates(expunge=False, condstore=False).split(b"\r\n")
    out = [line for line in lines if b" FETCH " in line] + [b""]
    assert out[0] == b"* 1 FETCH (FLAGS (\\Seen $k1) UID 1)"
    assert out[1] == b"* 2 FETCH (FLAGS (\\Seen \\Recent $k2) UID 2)"
    assert out[300] == b"* 301 FETCH (FLAGS (\\Seen $k1) UID 301)"
    assert out[398] == b"* 399 FETCH (FLAGS (\\Seen $k99) UID 399)"
    assert len(out) == 400 and out[-1] == b""
    s = view(1, 2, 3, recent=(2,))
    for uid in (1, 2, 3):
        s.on_change(FlagsChanged("INBOX", info(uid, ("$a",), modseq=9)))
    assert s.updates(expunge=False, condstore=False).endswith(
        b"* 1 FETCH (FLAGS ($a) UID 1)\r\n"
        b"* 2 FETCH (FLAGS (\\Recent $a) UID 2)\r\n"
        b"* 3 FETCH (FLAGS ($a) UID 3)\r\n"
    )


@settings(max_examples=80, deadline=None)
@given(
    st.sets(st.integers(1, 300), min_size=1, max_size=120),
    st.lists(st.tuples(st.integers(1, 320), st.integers(1, 320)), min_size=1, max_size=4),
    st.booleans(),
    st.integers(0, 400),
)
def test_resolve_matches_a_scan_of_the_view(
    uids: set[int], ranges: list[tuple[int, int]], by_uid: bool, changed: int
) -> None:
    """Few or many messages, rows built or not: the same (number, current info) as a scan."""
    ordered = sorted(uids)
    s = view(*ordered)
    s.messages()  # rows built, then (perhaps) dropped by a change
    if changed in uids:
        s.on_change(FlagsChanged("INBOX", info(changed, ("\\Seen",), modseq=1000)))
    text = ",".join(f"{lo}:{hi}" for lo, hi in ranges)
    if not by_uid and max(max(r) for r in ranges) > len(ordered):
        with pytest.raises(BadSequence):
            numbers(s, text)
        return
    got = s.resolve(parse_sequence_set(text.encode()), uid=by_uid)
    wanted = {
        n
        for n, uid in enumerate(ordered, 1)
        if any(min(r) <= (uid if by_uid else n) <= max(r) for r in ranges)
    }
    assert [n for n, _ in got] == sorted(wanted)
    assert all(i.uid == ordered[n - 1] and i is s.infos[i.uid] for n, i in got)
