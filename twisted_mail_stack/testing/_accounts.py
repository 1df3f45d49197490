"""Conformance: accounts (L{IMailStore}) and delivery into them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..errors import AccountExists, NoSuchAccount
from ..sources import BytesSource, FileSource
from ..values import DEFAULT_FOLDERS, DELIMITER, MessageAdded
from ._base import ALICE, BOB, CAROL, DATE, StoreTestBase, message, source


class AccountTests(StoreTestBase):
    async def test_create_account_is_listed(self) -> None:
        store = await self.store()
        await store.create_account(ALICE)
        self.assertIn(ALICE, await store.list_accounts(), "list_accounts misses a new account")

    async def test_list_accounts_sorted(self) -> None:
        store = await self.store()
        for user in (CAROL, ALICE, BOB):
            await store.create_account(user)
        users = list(await store.list_accounts())
        self.assertEqual(users, sorted(users), "list_accounts must be sorted")
        self.assertEqual(set(users), {ALICE, BOB, CAROL}, "list_accounts of a fresh store")

    async def test_create_existing_account_fails(self) -> None:
        store = await self.store()
        await store.create_account(ALICE)
        await self.fails(store.create_account(ALICE), AccountExists, "create_account twice")

    async def test_open_missing_account_fails(self) -> None:
        store = await self.store()
        await self.fails(store.open_account(ALICE), NoSuchAccount, "open_account of a missing user")

    async def test_delete_account(self) -> None:
        store = await self.store()
        await store.create_account(ALICE)
        await store.delete_account(ALICE)
        self.assertNotIn(ALICE, await store.list_accounts(), "deleted account still listed")
        await self.fails(store.open_account(ALICE), NoSuchAccount, "open_account after delete")

    async def test_delete_missing_account_fails(self) -> None:
        store = await self.store()
        await self.fails(
            store.delete_account(ALICE), NoSuchAccount, "delete_account of a missing user"
        )

    async def test_delete_account_deletes_mail(self) -> None:
        store = await self.store()
        await self.append(await self.mailbox())
        await store.delete_account(ALICE)
        await store.create_account(ALICE)
        inbox = await self.mailbox(account=await self.open_account())
        self.assertEqual(await self.uids(inbox), [], "a re-created account still has old mail")

    async def test_account_attributes(self) -> None:
        account = await self.account()
        self.assertEqual(account.user, ALICE, "IAccount.user")
        self.assertEqual(account.delimiter, DELIMITER, "IAccount.delimiter")

    async def test_close_is_idempotent(self) -> None:
        store = await self.store()
        account = await self.account()
        inbox = await self.mailbox(account=account)
        for handle in (inbox, inbox, account, account):
            await handle.close()
        await store.close()
        await store.close()

    async def test_account_close_leaves_mailboxes_open(self) -> None:
        account = await self.account()
        inbox = await self.mailbox(account=account)
        await account.close()
        info = await self.append(inbox)
        self.assertEqual(
            await self.uids(inbox), [info.uid], "IAccount.close must not close its mailboxes"
        )

    async def test_new_account_has_inbox_and_default_folders(self) -> None:
        names = await self.names(await self.account())
        expected = {"INBOX", *(name for name, _ in DEFAULT_FOLDERS)}
        self.assertEqual(set(names), expected, "folders of a new account")
        self.assertTrue(
            all(info.selectable for info in names.values()), "default folders are selectable"
        )

    async def test_default_folders_have_special_use(self) -> None:
        names = await self.names(await self.account())
        for name, role in DEFAULT_FOLDERS:
            self.assertEqual(names[name].special_use, role, f"SPECIAL-USE role of {name}")
        self.assertIsNone(names["INBOX"].special_use, "INBOX has no SPECIAL-USE role")

    async def test_default_folders_subscribed(self) -> None:
        names = await self.names(await self.account())
        for name in ("INBOX", *(name for name, _ in DEFAULT_FOLDERS)):
            self.assertTrue(names[name].subscribed, f"{name} of a new account must be subscribed")


class DeliveryTests(StoreTestBase):
    async def test_deliver_to_one_user(self) -> None:
        inbox = await self.mailbox()
        infos = await (await self.store()).deliver([ALICE], BytesSource(message(1)), DATE)
        self.assertEqual(set(infos), {ALICE}, "deliver: result keys")
        info = infos[ALICE]
        self.assertEqual(await self.uids(inbox), [info.uid], "deliver: INBOX content")
        self.assertEqual(await self.content(inbox, info.uid), message(1), "deliver: stored bytes")
        self.assertEqual(info.flags, frozenset(), "deliver: a delivered message has no flags")
        self.assertEqual(info.internal_date, DATE, "deliver: internal date")
        self.assertEqual(info.size, len(message(1)), "deliver: size")

    async def test_deliver_to_several_users(self) -> None:
        inboxes = {
            user: await self.mailbox(account=await self.account(user)) for user in (ALICE, BOB)
        }
        infos = await (await self.store()).deliver([ALICE, BOB], BytesSource(message(2)))
        self.assertEqual(set(infos), {ALICE, BOB}, "deliver: one MessageInfo per user")
        for user, inbox in inboxes.items():
            self.assertEqual(await self.uids(inbox), [infos[user].uid], f"deliver: {user}'s INBOX")
            self.assertEqual(
                await self.content(inbox, infos[user].uid), message(2), f"deliver: {user}'s copy"
            )

    async def test_deliver_to_missing_user_delivers_nothing(self) -> None:
        store = await self.store()
        inboxes = [await self.mailbox(account=await self.account(user)) for user in (ALICE, BOB)]
        ghost = "ghost@example.com"
        error = await self.fails(
            store.deliver([ALICE, ghost, BOB], BytesSource(message())),
            NoSuchAccount,
            "deliver to a missing user",
        )
        self.assertIn(ghost, str(error), "NoSuchAccount must name the missing user")
        for inbox in inboxes:
            self.assertEqual(await self.uids(inbox), [], "a failed delivery left a copy behind")

    async def test_deliver_to_repeated_user_makes_one_copy(self) -> None:
        inbox = await self.mailbox()
        infos = await (await self.store()).deliver([ALICE, ALICE], source())
        self.assertEqual(set(infos), {ALICE}, "deliver: result keys")
        self.assertEqual(
            await self.uids(inbox), [infos[ALICE].uid], "each distinct user gets one copy"
        )

    async def test_deliver_naive_date_fails(self) -> None:
        inbox = await self.mailbox()
        naive = datetime(2020, 1, 2, 3, 4, 5)
        d = (await self.store()).deliver([ALICE], source(), naive)
        await self.fails(d, ValueError, "deliver with a naive internal date")
        self.assertEqual(await self.uids(inbox), [], "a refused delivery left a copy")

    async def test_deliver_uids_ascend(self) -> None:
        inbox = await self.mailbox()
        first = await self.append(inbox)
        infos = await (await self.store()).deliver([ALICE], BytesSource(message(2)))
        self.assertGreater(
            infos[ALICE].uid, first.uid, "deliver: UID must exceed every earlier UID"
        )
        self.assertGreater(infos[ALICE].modseq, first.modseq, "deliver: modseq must grow")

    async def test_deliver_default_date_is_now(self) -> None:
        await self.account()
        before = datetime.now(UTC)
        infos = await (await self.store()).deliver([ALICE], BytesSource(message()))
        after = datetime.now(UTC)
        date = infos[ALICE].internal_date
        slack = timedelta(seconds=2)
        self.assertTrue(
            before - slack <= date <= after + slack,
            f"deliver: default internal date {date} is not now",
        )

    async def test_deliver_from_file_source(self) -> None:
        path = self.mktemp()
        data = message(3, b"\x00\xff binary \r\n" * 100)
        with open(path, "wb") as f:
            f.write(data)
        inbox = await self.mailbox()
        infos = await (await self.store()).deliver([ALICE], FileSource(path))
        self.assertEqual(
            await self.content(inbox, infos[ALICE].uid), data, "deliver from a FileSource"
        )
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data, "deliver must not modify its source file")

    async def test_deliver_notifies_inbox_listeners(self) -> None:
        users = (ALICE, BOB)
        logs = [await self.listen(await self.mailbox(account=await self.account(u))) for u in users]
        d = (await self.store()).deliver(users, source())
        infos, seen = await self.seen_when_fired(d, *logs)
        for user, log in zip(users, seen, strict=True):
            self.assertEqual(
                log,
                [MessageAdded("INBOX", infos[user])],
                f"deliver: {user}'s INBOX listener before the Deferred fired",
            )
