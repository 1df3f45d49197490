"""The in-memory backend: the conformance suite, and the choices particular to it."""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mail_stack import testing
from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.errors import NoSuchAccount, NoSuchMailbox
from twisted_mail_stack.interfaces import IAccount, IMailStore
from twisted_mail_stack.sources import BytesSource

ALICE = "alice@example.com"


class MemoryConformanceTests(testing.MailStoreConformance):
    def make_store(self) -> IMailStore:
        return MemoryMailStore()


class MemorySharedStorageTests(testing.MailStoreConformance):
    """
    The restart and cross-process tests, with the one store standing for the storage: a memory
    store's contents live as long as the object, so a "restart" or a "peer" is the same object.
    This checks those tests themselves against the reference backend.
    """

    def make_store(self) -> IMailStore:
        return MemoryMailStore()

    def restart_store(self, store: IMailStore) -> IMailStore:
        return store

    def make_peer_store(self, store: IMailStore) -> IMailStore:
        return store


class MemoryChoicesTests(unittest.TestCase):
    """What the contract leaves to the backend, as the memory store decides it."""

    async def account(self, store: IMailStore | None = None) -> IAccount:
        store = store or MemoryMailStore()
        await store.create_account(ALICE)
        return await store.open_account(ALICE)

    async def test_clock_gives_default_internal_date(self) -> None:
        clock = Clock()
        clock.advance(1_600_000_000.75)
        store = MemoryMailStore(clock)
        inbox = await (await self.account(store)).open_mailbox("INBOX")
        expected = datetime.fromtimestamp(1_600_000_000, UTC)
        self.assertEqual((await inbox.append(BytesSource(b"x"))).internal_date, expected)
        delivered = await store.deliver([ALICE], BytesSource(b"y"))
        self.assertEqual(delivered[ALICE].internal_date, expected)

    async def test_stores_are_independent(self) -> None:
        await self.account(MemoryMailStore())
        self.assertEqual(await MemoryMailStore().list_accounts(), [])

    async def test_recreated_folder_gets_new_uidvalidity(self) -> None:
        account = await self.account()
        old = (await account.open_mailbox("Sent")).uidvalidity
        await account.delete_mailbox("Sent")
        await account.create_mailbox("Sent")
        self.assertNotEqual((await account.open_mailbox("Sent")).uidvalidity, old)

    async def test_rename_keeps_uids_and_uidvalidity(self) -> None:
        account = await self.account()
        sent = await account.open_mailbox("Sent")
        info = await sent.append(BytesSource(b"x"), ["$Kept"])
        await account.rename_mailbox("Sent", "Outbox")
        renamed = await account.open_mailbox("Outbox")
        self.assertEqual(renamed.uidvalidity, sent.uidvalidity)
        self.assertEqual(list(await renamed.list_messages()), [info])
        self.assertEqual(sent.name, "Outbox", "an open handle follows its folder's rename")

    async def test_rename_moves_subscriptions(self) -> None:
        account = await self.account()
        await account.rename_mailbox("Sent", "Outbox")
        subscribed = {i.name for i in await account.list_mailboxes() if i.subscribed}
        self.assertIn("Outbox", subscribed)
        self.assertNotIn("Sent", subscribed)

    async def test_rename_inbox_leaves_its_children(self) -> None:
        account = await self.account()
        await account.create_mailbox("INBOX/Lists")
        await account.rename_mailbox("INBOX", "INBOX/Old")
        names = {i.name for i in await account.list_mailboxes()}
        self.assertTrue({"INBOX", "INBOX/Lists", "INBOX/Old"} <= names)

    async def test_deleted_folder_handle_fails(self) -> None:
        account = await self.account()
        sent = await account.open_mailbox("Sent")
        await account.delete_mailbox("Sent")
        await self.assertFailure(sent.append(BytesSource(b"x")), NoSuchMailbox)
        await self.assertFailure(sent.status(), NoSuchMailbox)
        await sent.close()

    async def test_deleted_account_handle_fails(self) -> None:
        store = MemoryMailStore()
        account = await self.account(store)
        await store.delete_account(ALICE)
        await store.create_account(ALICE)
        await self.assertFailure(account.list_mailboxes(), NoSuchAccount)

    async def test_subscriptions_of_missing_folders_not_listed(self) -> None:
        account = await self.account()
        await account.set_subscribed("Nowhere", True)
        self.assertNotIn("Nowhere", {i.name for i in await account.list_mailboxes()})
