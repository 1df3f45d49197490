"""
Conformance of the optional L{IMessageCache}: skipped for a mailbox that does not provide it.

A backend that may evict entries at once (the contract allows it) overrides the tests that
expect a stored entry back (C{test_put_then_get*}).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from ..interfaces import IMailbox, IMessageCache
from ._base import StoreTestBase


class MessageCacheTests(StoreTestBase):
    async def cache_of(self, mailbox: IMailbox) -> IMessageCache:
        cache = IMessageCache(mailbox, None)
        if cache is None:
            raise unittest.SkipTest("the mailbox does not provide the optional IMessageCache")
        verifyObject(IMessageCache, cache)
        return cache

    async def test_methods_return_deferreds(self) -> None:
        inbox = await self.mailbox()
        cache = await self.cache_of(inbox)
        uid = (await self.append(inbox)).uid
        d: object = cache.put_cached({(uid, "f"): b"v"})
        self.assertIsInstance(d, Deferred, "put_cached must return a Deferred")
        await d  # type: ignore[misc]
        d = cache.get_cached([uid], ["f"])
        self.assertIsInstance(d, Deferred, "get_cached must return a Deferred")
        await d  # type: ignore[misc]

    async def test_put_then_get(self) -> None:
        inbox = await self.mailbox()
        cache = await self.cache_of(inbox)
        one, two, three = (i.uid for i in await self.append_many(inbox, 3))
        await cache.put_cached({(one, "a"): b"1a", (one, "b"): b"1b", (two, "a"): b"\x00\xff"})
        got = await cache.get_cached([one, two, three], ["a", "b", "c"])
        self.assertEqual(
            dict(got),
            {(one, "a"): b"1a", (one, "b"): b"1b", (two, "a"): b"\x00\xff"},
            "get_cached: the entries put, by (UID, field); missing ones left out",
        )
        self.assertEqual(dict(await cache.get_cached([], ["a"])), {}, "no UIDs: nothing")
        self.assertEqual(dict(await cache.get_cached([one], [])), {}, "no fields: nothing")

    async def test_put_then_get_replaces(self) -> None:
        inbox = await self.mailbox()
        cache = await self.cache_of(inbox)
        uid = (await self.append(inbox)).uid
        await cache.put_cached({(uid, "a"): b"old"})
        await cache.put_cached({(uid, "a"): b"new"})
        self.assertEqual(dict(await cache.get_cached([uid], ["a"])), {(uid, "a"): b"new"})

    async def test_put_then_get_from_another_handle(self) -> None:
        inbox = await self.mailbox()
        uid = (await self.append(inbox)).uid
        await (await self.cache_of(inbox)).put_cached({(uid, "a"): b"shared"})
        other = await self.cache_of(await self.mailbox())
        self.assertEqual(
            dict(await other.get_cached([uid], ["a"])),
            {(uid, "a"): b"shared"},
            "entries are the folder's, seen by every handle",
        )

    async def test_folders_are_separate(self) -> None:
        inbox = await self.mailbox()
        sent = await self.mailbox("Sent")
        uid = (await self.append(inbox)).uid
        self.assertEqual((await self.append(sent)).uid, uid, "test premise: the same UID")
        await (await self.cache_of(inbox)).put_cached({(uid, "a"): b"inbox"})
        got = await (await self.cache_of(sent)).get_cached([uid], ["a"])
        self.assertNotEqual(dict(got).get((uid, "a")), b"inbox", "another folder's entry")

    async def test_unknown_uids_are_not_errors(self) -> None:
        inbox = await self.mailbox()
        cache = await self.cache_of(inbox)
        await cache.put_cached({(999, "a"): b"x"})
        got = await cache.get_cached([999], ["a"])
        self.assertIn(dict(got), ({}, {(999, "a"): b"x"}))

    async def test_expunged_uid_is_never_wrong(self) -> None:
        """UIDs are not reused: a message appended after an expunge never sees old entries."""
        inbox = await self.mailbox()
        cache = await self.cache_of(inbox)
        old = (await self.append(inbox)).uid
        await cache.put_cached({(old, "a"): b"old"})
        await inbox.remove([old])
        new = (await self.append(inbox, 2)).uid
        self.assertEqual(dict(await cache.get_cached([new], ["a"])), {})

    async def test_deleted_and_recreated_folder_starts_empty(self) -> None:
        account = await self.account()
        folder = await self.mailbox("Cached", account=account, create=True)
        uid = (await self.append(folder)).uid
        await (await self.cache_of(folder)).put_cached({(uid, "a"): b"gone"})
        await folder.close()
        await account.delete_mailbox("Cached")
        again = await self.mailbox("Cached", account=account, create=True)
        uid2 = (await self.append(again)).uid
        got = await (await self.cache_of(again)).get_cached([uid, uid2], ["a"])
        self.assertEqual(dict(got), {}, "a new folder (new UIDVALIDITY) has no entries")
