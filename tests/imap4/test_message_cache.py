"""
The persistent message cache as IMAP uses it (L{IMessageCache}): FETCH ENVELOPE/BODYSTRUCTURE
and SEARCH on header keys answered from cached entries give the same answers as reading the
messages, and read no message once the entries exist.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from twisted.internet.defer import Deferred
from zope.interface import implementer

from tests.imap4.engine_helpers import CountingMailbox, make_mailbox, run
from tests.imap4.test_fetch_exec import do_fetch
from tests.imap4.test_search_exec import ADDRESSES, HEADERS, RANDOM_MESSAGES, key_of, keys, utf8
from tests.mime import samples
from twisted_mail_stack.backends.maildir.msgcache import CACHE_FILE, CacheFile
from twisted_mail_stack.imap4._search import SearchKey
from twisted_mail_stack.imap4.cache import (
    STRUCTURE_FIELD,
    MessageCache,
    header_field,
    pack_structure,
    unpack_structure,
)
from twisted_mail_stack.imap4.search import cached_header_values, search
from twisted_mail_stack.interfaces import IMailbox, IMessageCache
from twisted_mail_stack.mime import analyse


@implementer(IMessageCache)
class CachingMailbox(CountingMailbox):
    """Counts opened messages and provides the memory backend's IMessageCache."""

    def get_cached(
        self, uids: Sequence[int], fields: Sequence[str]
    ) -> Deferred[Mapping[tuple[int, str], bytes]]:
        self.lookups = getattr(self, "lookups", 0) + 1
        return IMessageCache(self._inner).get_cached(uids, fields)

    def put_cached(self, entries: Mapping[tuple[int, str], bytes]) -> Deferred[None]:
        return IMessageCache(self._inner).put_cached(entries)


ENCODED = [
    b"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\nx\r\n",
    b'Subject: plain\r\nTo: a@b.c,\r\n  "Folded (x)" <f@g.h>\r\n\r\nx\r\n',
]
SURROGATE = b"Subject: =?unicode_escape?q?=5Cud800x?=\r\n\r\nx\r\n"  # a lone surrogate
ALL = [*HEADERS, *ADDRESSES, *ENCODED, *(m[0] for m in RANDOM_MESSAGES), SURROGATE]
HEADER_SEARCHES = [
    b"SUBJECT hello",
    b'SUBJECT "eautiful worl"',
    b'HEADER subject ""',
    b'NOT HEADER subject ""',
    b"FROM user-from@domain.org",
    b'FROM "user-from (comment)@"',
    b"TO groupuser3",
    b'HEADER bcc ""',
    b"CC realcc",
    b"OR FROM ealfro TO ser-t",
    b"SUBJECT plain UNSEEN",
    b'TO "folded (x)"',
    b"TO f@g.h",
    b"HEADER message-id foo",
    b"CHARSET UTF-8 FROM " + utf8("jörg"),
    b"CHARSET UTF-8 SUBJECT " + utf8("GRÜSSE"),
    b"CHARSET UTF-8 SUBJECT " + utf8("grüsse!"),
    b"SUBJECT 0x",
]


def found(mailbox: IMailbox, messages: list, key: SearchKey) -> list[int]:
    return [n for n, _ in run(search(mailbox, messages, key, MessageCache()))]


def test_header_searches_from_the_cache_agree_and_open_nothing() -> None:
    inner, messages = make_mailbox(ALL)
    plain = CountingMailbox(inner)  # provides no cache: reads every message
    cached = CachingMailbox(inner)
    expected = {k: found(plain, messages, key_of(b"SEARCH " + k)) for k in HEADER_SEARCHES}  # type: ignore[arg-type]
    assert expected[b"SUBJECT hello"] == [1, 13]  # 13: HEADERS[0] again, in RANDOM_MESSAGES
    assert expected[b"FROM user-from@domain.org"] == [3, 4, 5, 6, 12]
    first = {k: found(cached, messages, key_of(b"SEARCH " + k)) for k in HEADER_SEARCHES}  # type: ignore[arg-type]
    assert first == expected
    assert cached.opened, "the first search reads the messages to fill the cache"
    cached.opened.clear()
    again = {k: found(cached, messages, key_of(b"SEARCH " + k)) for k in HEADER_SEARCHES}  # type: ignore[arg-type]
    assert again == expected
    assert cached.opened == [], "every header key answered from the cache"


def test_uncached_header_field_and_body_keys_still_read() -> None:
    inner, messages = make_mailbox(ALL)
    cached = CachingMailbox(inner)
    found(cached, messages, key_of(b"SEARCH SUBJECT x"))  # type: ignore[arg-type]
    cached.opened.clear()
    assert found(cached, messages, key_of(b"SEARCH HEADER x-extra hello")) == [2]  # type: ignore[arg-type]
    assert cached.opened, "X-Extra is not cached: the messages are read"
    cached.opened.clear()
    assert found(cached, messages, key_of(b"SEARCH SUBJECT hello BODY body")) == [1, 13]  # type: ignore[arg-type]
    assert cached.opened


WARM, WARM_MESSAGES = make_mailbox(ALL)
run(search(WARM, WARM_MESSAGES, key_of(b"SEARCH SUBJECT warm"), MessageCache()))
PLAIN = CountingMailbox(WARM)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys)
def test_random_keys_agree_with_and_without_the_cache(key: SearchKey) -> None:
    assert found(WARM, WARM_MESSAGES, key) == found(PLAIN, WARM_MESSAGES, key)  # type: ignore[arg-type]


def test_cached_values_absent_field_is_empty_and_present_empty_is_not() -> None:
    values = cached_header_values(b"Subject:\r\nFrom: A (c) <a@b>\r\n\r\nbody\r\n")
    assert values["subject"] == "\0"
    assert values["to"] == ""
    # The field as decoded, then the address as parsed (as _address_match sees it), folded.
    decoded, parsed = values["from"].split("\0")[1:]
    assert "a (c) <a@b>" in decoded and parsed.endswith("<a@b>")


def test_fetch_structures_come_from_the_cache_in_a_new_session() -> None:
    inner, messages = make_mailbox(
        [samples.IMAPTEST_BODYSTRUCTURE, samples.IMAPTEST_MIME, *samples.IMAPTEST_BODY]
    )
    plain = CountingMailbox(inner)
    line = b"FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)"
    expected, _ = do_fetch(plain, messages, line)  # type: ignore[arg-type]
    cached = CachingMailbox(inner)
    first, _ = do_fetch(cached, messages, line)  # type: ignore[arg-type]
    assert first == expected
    assert cached.opened == [1, 2, 3, 4, 5]
    cached.opened.clear()
    # A new session (a new MessageCache): from the mailbox's cache.
    again, _ = do_fetch(cached, messages, line)  # type: ignore[arg-type]
    assert again == expected
    assert cached.opened == [] and cached.lookups == 2
    # Sections of a cached structure (its offsets are decoded when asked for).
    parts = b"FETCH 2 (BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[HEADER])"
    assert do_fetch(cached, messages, parts)[0] == do_fetch(plain, messages, parts)[0]  # type: ignore[arg-type]


def test_index_only_fetch_does_not_look_up_the_cache() -> None:
    inner, messages = make_mailbox(samples.IMAPTEST_BODY)
    cached = CachingMailbox(inner)
    do_fetch(cached, messages, b"FETCH 1:* (UID FLAGS RFC822.SIZE)")  # type: ignore[arg-type]
    assert cached.opened == [] and getattr(cached, "lookups", 0) == 0


def test_packed_structure_round_trip() -> None:
    for raw in [samples.IMAPTEST_BODYSTRUCTURE, samples.IMAPTEST_MIME, b"", b"x\r\n\r\n"]:
        structure = analyse(raw)
        back = unpack_structure(pack_structure(structure))
        assert back is not None
        assert (back.envelope, back.body, back.bodystructure, back.spans) == (
            structure.envelope,
            structure.body,
            structure.bodystructure,
            structure.spans,
        )


@pytest.mark.parametrize("data", [b"", b"x", b"1 2\n", b"9 9 9\nshort", b"-1 0 0\n[]"])
def test_packed_structure_garbage_is_a_miss(data: bytes) -> None:
    assert unpack_structure(data) is None


def test_field_names_carry_a_version() -> None:
    assert STRUCTURE_FIELD.endswith(".1") and header_field("subject").endswith(".1.subject")


# -- the Maildir cache file -----------------------------------------------------------------


def test_cache_file_round_trip_and_uidvalidity(tmp_path: os.PathLike[str]) -> None:
    cache = CacheFile(str(tmp_path))
    cache.put(10, {(1, "a"): b"x", (2, "a"): b"y", (2, "b"): b"z"})
    assert cache.get(10, [1, 2, 3], ["a", "b"]) == {(1, "a"): b"x", (2, "a"): b"y", (2, "b"): b"z"}
    many = list(range(1, 1000))  # a range scan, filtered
    assert cache.get(10, many, ["a"]) == {(1, "a"): b"x", (2, "a"): b"y"}
    stale = CacheFile(str(tmp_path))
    assert stale.get(9, [1], ["a"]) == {}, "an older UIDVALIDITY reads nothing"
    stale.put(9, {(5, "a"): b"old"})
    assert cache.get(10, [5], ["a"]) == {}, "and writes nothing"
    newer = CacheFile(str(tmp_path))
    assert newer.get(11, [1, 2], ["a"]) == {}, "a newer UIDVALIDITY wipes the file"
    assert cache.get(10, [1], ["a"]) == {}
    for c in (cache, stale, newer):
        c.close()


def test_cache_file_prune(tmp_path: os.PathLike[str]) -> None:
    cache = CacheFile(str(tmp_path))
    cache.put(1, {(uid, "a"): b"v" for uid in range(1, 8)})
    assert cache.prune(1, [2, 4]) == 2  # 1 and 3 are gone; above 4 may be new deliveries
    assert sorted(cache.get(1, list(range(1, 8)), ["a"])) == [(u, "a") for u in (2, 4, 5, 6, 7)]
    cache.close()


def test_damaged_cache_file_is_made_anew(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), CACHE_FILE)
    with open(path, "wb") as f:
        f.write(b"this is not a database" * 100)
    cache = CacheFile(str(tmp_path))
    cache.put(1, {(1, "a"): b"v"})
    assert cache.get(1, [1], ["a"]) == {(1, "a"): b"v"}
    cache.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone() == (1,)


def test_missing_folder_is_a_miss(tmp_path: os.PathLike[str]) -> None:
    cache = CacheFile(os.path.join(str(tmp_path), "gone"))
    cache.put(1, {(1, "a"): b"v"})
    assert cache.get(1, [1], ["a"]) == {}
    cache.close()


def test_a_session_keeps_the_values_it_searched() -> None:
    inner, messages = make_mailbox(ALL)
    cached = CachingMailbox(inner)
    session = MessageCache()
    key = key_of(b"SEARCH SUBJECT hello")
    assert [n for n, _ in run(search(cached, messages, key, session))] == [1, 13]  # type: ignore[arg-type]
    lookups = cached.lookups
    cached.opened.clear()
    assert [n for n, _ in run(search(cached, messages, key, session))] == [1, 13]  # type: ignore[arg-type]
    assert cached.lookups == lookups and cached.opened == [], "from the session's memo"
    other = key_of(b"SEARCH FROM realfrom")
    assert [n for n, _ in run(search(cached, messages, other, session))] == [4, 6, 12]  # type: ignore[arg-type]
    assert cached.opened, "FROM is cached on its first use, not with SUBJECT"
    cached.opened.clear()
    assert [n for n, _ in run(search(cached, messages, other, MessageCache()))] == [4, 6, 12]  # type: ignore[arg-type]
    assert cached.opened == [], "FROM: from the mailbox's cache in a new session"
