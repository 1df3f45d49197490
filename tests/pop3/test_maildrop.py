"""The POP3 login snapshot: numbering, deletion marks, UIDL listing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from twisted_mail_stack.pop3._wire import CommandError
from twisted_mail_stack.pop3.maildrop import Maildrop
from twisted_mail_stack.values import MessageInfo


def drop() -> Maildrop:
    return Maildrop([4, 9, 12], [100, 200, 300], 77)


def test_numbers_map_to_uids_and_stored_sizes() -> None:
    d = drop()
    assert len(d) == 3
    assert [d.get(n) for n in (1, 2, 3)] == [4, 9, 12]
    assert [d.stored_size(n) for n in (1, 2, 3)] == [100, 200, 300]
    assert d.unique_id(9) == b"77.9"


def test_out_of_range_numbers_are_errors() -> None:
    d = drop()
    for number in (0, 4, -1):
        with pytest.raises(CommandError):
            d.get(number)
        assert d.peek(number) is None


def test_deleted_messages_leave_the_listings_until_rset() -> None:
    d = drop()
    d.delete(2)
    with pytest.raises(CommandError):
        d.get(2)
    with pytest.raises(CommandError):
        d.delete(2)
    assert d.peek(2) is None and d.uid(2) == 9
    assert list(d.live()) == [(1, 4), (3, 12)]
    assert d.uidl_listing() == b"1 77.4\r\n3 77.12\r\n"
    assert d.deleted_uids() == [9]
    d.undelete_all()
    assert d.uidl_listing() == b"1 77.4\r\n2 77.9\r\n3 77.12\r\n"
    assert d.deleted_uids() == []


def test_stat_counts_canonical_sizes_of_live_messages() -> None:
    d = drop()
    d.sizes.update({1: 110, 2: 210, 3: 310})
    d.delete(1)
    assert d.stat() == (2, 520)


def test_from_infos_matches_the_compact_form() -> None:
    date = datetime(2024, 1, 1, tzinfo=UTC)
    infos = [MessageInfo(uid, frozenset(), date, size, 1) for uid, size in ((4, 100), (9, 200))]
    d = Maildrop.from_infos(infos, 5)
    assert [d.get(1), d.get(2)] == [4, 9]
    assert [d.stored_size(1), d.stored_size(2)] == [100, 200]
    assert d.uidl_listing() == b"1 5.4\r\n2 5.9\r\n"


def test_empty_maildrop() -> None:
    d = Maildrop([], [], 1)
    assert len(d) == 0 and d.uidl_listing() == b"" and d.stat() == (0, 0)


def test_sizes_must_match_uids() -> None:
    with pytest.raises(ValueError):
        Maildrop([1, 2], [10], 1)
