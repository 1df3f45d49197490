"""
SELECT of a folder that has not changed since a recent listing reuses that listing
(L{ListingCache}): every change by any session must still show, and users never share one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import Portal

from tests.imap4.test_session import LOOPBACK, MESSAGE, PASSWORD, USER, Session, World, result
from twisted_mail_stack.auth.realm import MailRealm
from twisted_mail_stack.backends.memory import MemoryMailbox
from twisted_mail_stack.imap4.selected import ListingCache, listing_key
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import MessageInfo, StoreMode

BOB = "bob@example.org"
WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the memory backend's listings (one entry per list_messages call)."""
    calls: list[int] = []
    original = MemoryMailbox.list_messages

    def counted(self: MemoryMailbox) -> Any:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(MemoryMailbox, "list_messages", counted)
    return calls


def flags_of(out: bytes) -> dict[int, bytes]:
    return {int(n): f for n, f in re.findall(rb"\* (\d+) FETCH \(FLAGS \(([^)]*)\)\)", out)}


def test_unchanged_folder_is_listed_once(world_two: World, listings: list[int]) -> None:
    a = world_two.connect()
    a.select()
    assert len(listings) == 1
    for _ in range(3):
        out = a.cmd("SELECT INBOX")
        assert b"* 2 EXISTS" in out
    b = world_two.connect()
    b.select()
    assert len(listings) == 1  # another session of the same user, the folder unchanged


def test_every_change_shows_after_reselect(world_two: World, listings: list[int]) -> None:
    a, b = world_two.connect(), world_two.connect()
    a.select()
    b.select()
    b.cmd("STORE 1 +FLAGS (\\Seen)")
    out = a.cmd("SELECT INBOX")
    assert flags_of(a.cmd("FETCH 1:* FLAGS")) == {1: b"\\Seen", 2: b""}, out
    b.cmd("STORE 2 +FLAGS (\\Deleted)")
    b.cmd("EXPUNGE")
    assert b"* 1 EXISTS" in a.cmd("SELECT INBOX")
    world_two.deliver()
    out = a.cmd("SELECT INBOX")
    assert b"* 2 EXISTS" in out and b"UIDNEXT 4" in out
    # A's own change, then SELECT again.
    a.cmd("STORE 2 FLAGS (\\Flagged)")
    assert flags_of(a.cmd("SELECT INBOX") + a.cmd("FETCH 1:* FLAGS")) == {
        1: b"\\Seen",
        2: b"\\Flagged",
    }
    assert len(listings) == 5  # the first SELECT, then one per change


def test_a_listing_changed_while_taken_is_not_held(
    world_two: World, listings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change between the first status and the listing: the listing is used, never reused."""
    a = world_two.connect()
    a.login()
    original = MemoryMailbox.list_messages
    calls: list[int] = []

    def list_messages(self: MemoryMailbox) -> Any:
        calls.append(1)
        if len(calls) == 1:  # another session's STORE lands after the first look
            result(world_two.open().set_flags([1], ["\\Answered"], StoreMode.ADD))
        return original(self)

    monkeypatch.setattr(MemoryMailbox, "list_messages", list_messages)
    a.cmd("SELECT INBOX")
    assert flags_of(a.cmd("FETCH 1 FLAGS")) == {1: b"\\Answered \\Recent"}
    a.cmd("SELECT INBOX")
    a.cmd("SELECT INBOX")
    assert len(calls) == 2  # listed again once, then held


def test_a_change_after_the_first_look_comes_as_an_event(world_two: World) -> None:
    a = world_two.connect()
    a.select()
    a.cmd("SELECT INBOX")  # held now
    original = MemoryMailbox.status

    def status(self: MemoryMailbox) -> Any:
        first = original(self)
        result(world_two.open().set_flags([2], ["\\Draft"], StoreMode.ADD))
        return first

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MemoryMailbox, "status", status)
        out = a.cmd("SELECT INBOX")
    assert b"* 2 EXISTS" in out
    assert flags_of(a.cmd("FETCH 1:* FLAGS")) == {1: b"", 2: b"\\Draft"}


def test_users_never_share_a_listing(world_two: World, listings: list[int]) -> None:
    store = world_two.store
    result(store.create_account(BOB))
    result(store.deliver([BOB], BytesSource(MESSAGE)))
    result(store.deliver([BOB], BytesSource(MESSAGE)))
    bobs = result(result(store.open_account(BOB)).open_mailbox("INBOX"))
    result(bobs.set_flags([2], ["\\Flagged"], StoreMode.ADD))
    alices = world_two.open()
    result(alices.set_flags([1], ["\\Seen"], StoreMode.ADD))
    # Both folders in the same state but for their messages' flags (as two Maildirs can be).
    result(store.open_account(BOB)).folder("INBOX").uidvalidity = alices.uidvalidity
    assert listing_key("x", result(bobs.status())) == listing_key("x", result(alices.status()))
    a = world_two.connect()
    a.select()
    bob = world_two.connect()
    bob.cmd(f'LOGIN {BOB} "{PASSWORD.decode()}"')
    bob.cmd("SELECT INBOX")
    assert flags_of(bob.cmd("FETCH 1:* FLAGS")) == {1: b"\\Recent", 2: b"\\Flagged \\Recent"}
    assert len(listings) == 2


def test_cache_is_bounded_by_messages_held() -> None:
    cache = ListingCache(budget=5)
    infos = [MessageInfo(u, frozenset(), WHEN, 1, u) for u in range(1, 4)]
    cache.put(("a", "INBOX"), 1, infos)
    cache.put(("b", "INBOX"), 1, infos[:2])
    assert cache.get(("a", "INBOX"), 1) == tuple(infos)
    assert cache.get(("a", "INBOX"), 2) is None  # another state of the folder
    cache.put(("c", "INBOX"), 1, infos[:2])  # 7 held: the least recently used (b) goes
    assert cache.get(("b", "INBOX"), 1) is None
    assert cache.get(("c", "INBOX"), 1) == tuple(infos[:2])
    cache.put(("a", "INBOX"), 2, infos[:1])  # one state per folder
    assert cache.get(("a", "INBOX"), 1) is None
    assert cache.get(("a", "INBOX"), 2) == tuple(infos[:1])
    cache.put(("d", "INBOX"), 1, infos * 2)  # larger than the budget: not held
    assert cache.get(("d", "INBOX"), 1) is None


@pytest.fixture
def world_two() -> World:
    """A world whose user has two messages in INBOX, and whose checker knows Bob too."""
    w = World()
    checker = InMemoryUsernamePasswordDatabaseDontUse(**{USER: PASSWORD, BOB: PASSWORD})
    w.portal = Portal(MailRealm(w.store), [checker])
    w.factory.portal = w.portal
    w.deliver()
    w.deliver()
    return w


__all__ = ["LOOPBACK", "Session"]
