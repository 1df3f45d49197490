"""Conformance: the folder tree of an account (L{IAccount}) and mailbox names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from ..errors import CannotDeleteInbox, InvalidMailboxName, MailboxExists, NoSuchMailbox
from ..interfaces import IAccount
from ..values import MessageExpunged, SpecialUse, StoreMode
from ._base import BOB, StoreTestBase, message, source

#: Names every operation must refuse with InvalidMailboxName.
BAD_NAMES = (
    "",
    "a//b",
    "/a",
    "a/",
    "/",
    ".",
    "..",
    "a/./b",
    "a/../b",
    "../escape",
    "a/..",
    "a\x00b",
    "a\x01b",
    "a\nb",
    "a\x7fb",
    "a\x85b",
)


#: Names that are valid although storage formats may find them awkward.
GOOD_NAMES = (
    "with space",
    "dot.ted",
    ".hidden",
    "..double",
    "trailing.",
    "a/.b",
    "per%cent*&~",
    'quote"back\\slash',
    "+plus,comma;semi=eq",
    "Entwürfe",
    "日本語/子",
    "emoji 📧",
)


class NameTests(StoreTestBase):
    async def _each_bad_name(
        self, what: str, call: Callable[[IAccount, str], Deferred[Any]]
    ) -> None:
        account, other = await self.account(), await self.account(BOB)
        before, other_before = await self.names(account), await self.names(other)
        for bad in BAD_NAMES:
            await self.fails(call(account, bad), InvalidMailboxName, f"{what} with name {bad!r}")
        self.assertEqual(
            await self.names(account), before, f"{what} with a bad name changed the folder tree"
        )
        self.assertEqual(
            await self.names(other), other_before, f"{what} with a bad name changed another account"
        )

    async def test_create_rejects_bad_names(self) -> None:
        await self._each_bad_name("create_mailbox", lambda a, n: a.create_mailbox(n))

    async def test_open_rejects_bad_names(self) -> None:
        await self._each_bad_name("open_mailbox", lambda a, n: a.open_mailbox(n))

    async def test_delete_rejects_bad_names(self) -> None:
        await self._each_bad_name("delete_mailbox", lambda a, n: a.delete_mailbox(n))

    async def test_rename_rejects_bad_new_names(self) -> None:
        await self._each_bad_name("rename_mailbox to", lambda a, n: a.rename_mailbox("Sent", n))

    async def test_rename_rejects_bad_old_names(self) -> None:
        await self._each_bad_name("rename_mailbox from", lambda a, n: a.rename_mailbox(n, "Fresh"))

    async def test_subscribe_rejects_bad_names(self) -> None:
        await self._each_bad_name("set_subscribed", lambda a, n: a.set_subscribed(n, True))

    async def test_copy_rejects_bad_target_names(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await self._each_bad_name("copy to", lambda a, n: inbox.copy([info.uid], n))
        self.assertEqual(
            await self.uids(inbox), [info.uid], "copy to a bad name changed the source"
        )

    async def test_inbox_is_case_insensitive(self) -> None:
        account = await self.account()
        for spelling in ("inbox", "Inbox", "iNbOx"):
            mailbox = await self.mailbox(spelling, account)
            self.assertEqual(mailbox.name, "INBOX", f"open_mailbox({spelling!r}).name")
        await self.fails(account.create_mailbox("inbox"), MailboxExists, "create_mailbox('inbox')")

    async def test_inbox_children_spelled_inbox(self) -> None:
        account = await self.account()
        await account.create_mailbox("inbox/Sub")
        names = await self.names(account)
        self.assertIn("INBOX/Sub", names, "a child of INBOX is listed under 'INBOX'")
        self.assertNotIn("inbox/Sub", names, "a child of INBOX is listed under 'INBOX'")

    async def test_other_names_are_case_sensitive(self) -> None:
        account = await self.account()
        await account.create_mailbox("Work")
        await account.create_mailbox("work")
        names = await self.names(account)
        self.assertIn("Work", names, "case-sensitive names")
        self.assertIn("work", names, "case-sensitive names")
        await self.fails(
            account.open_mailbox("WORK"), NoSuchMailbox, "open_mailbox of another case"
        )

    async def test_unusual_valid_names(self) -> None:
        account = await self.account()
        for n, name in enumerate(GOOD_NAMES):
            await account.create_mailbox(name)
            mailbox = await self.mailbox(name, account)
            self.assertEqual(mailbox.name, name, f"IMailbox.name of {name!r}")
            info = await self.append(mailbox, n)
            self.assertEqual(
                await self.content(mailbox, info.uid), message(n), f"a message in {name!r}"
            )
        names = await self.names(account)
        self.assertEqual(
            set(GOOD_NAMES) - set(names), set(), "valid names missing from list_mailboxes"
        )
        self.assertTrue(
            all(names[name].selectable for name in GOOD_NAMES), "valid names must be selectable"
        )

    async def test_names_starting_with_inbox_are_not_inbox(self) -> None:
        account = await self.account()
        await account.create_mailbox("inboxes")
        await account.create_mailbox("INBOX.old")
        names = await self.names(account)
        self.assertIn("inboxes", names, "only the name INBOX itself is case-insensitive")
        self.assertIn("INBOX.old", names, "'INBOX.old' is a sibling of INBOX, not INBOX")
        self.assertEqual(
            await self.uids(await self.mailbox(account=account)), [], "INBOX is untouched"
        )


class FolderTests(StoreTestBase):
    async def test_create_mailbox(self) -> None:
        account = await self.account()
        await account.create_mailbox("Work")
        names = await self.names(account)
        self.assertIn("Work", names, "created folder is not listed")
        self.assertTrue(names["Work"].selectable, "created folder must be selectable")
        self.assertIsNone(names["Work"].special_use, "created folder has no role")

    async def test_create_mailbox_with_special_use(self) -> None:
        account = await self.account()
        await account.create_mailbox("Everything", SpecialUse.ALL)
        names = await self.names(account)
        self.assertEqual(
            names["Everything"].special_use, SpecialUse.ALL, "special_use of create_mailbox"
        )

    async def test_create_existing_fails(self) -> None:
        account = await self.account()
        await account.create_mailbox("Work")
        await self.fails(account.create_mailbox("Work"), MailboxExists, "create_mailbox twice")
        await self.fails(account.create_mailbox("INBOX"), MailboxExists, "create_mailbox('INBOX')")

    async def test_create_nested_lists_parents(self) -> None:
        account = await self.account()
        await account.create_mailbox("a/b/c")
        names = await self.names(account)
        for name in ("a", "a/b", "a/b/c"):
            self.assertIn(name, names, f"{name!r} must be listed once 'a/b/c' exists")
        self.assertTrue(names["a/b/c"].selectable, "created folder must be selectable")

    async def test_open_missing_fails(self) -> None:
        account = await self.account()
        await self.fails(
            account.open_mailbox("Nope"), NoSuchMailbox, "open_mailbox of a missing folder"
        )

    async def test_mailbox_name_and_uidvalidity(self) -> None:
        mailbox = await self.mailbox("Sent")
        self.assertEqual(mailbox.name, "Sent", "IMailbox.name")
        self.assertGreater(mailbox.uidvalidity, 0, "UIDVALIDITY must be positive")
        self.assertEqual(
            (await mailbox.status()).uidvalidity, mailbox.uidvalidity, "status().uidvalidity"
        )

    async def test_delete_mailbox(self) -> None:
        account = await self.account()
        await account.create_mailbox("Work")
        await account.delete_mailbox("Work")
        self.assertNotIn("Work", await self.names(account), "deleted folder still listed")
        await self.fails(account.open_mailbox("Work"), NoSuchMailbox, "open_mailbox after delete")

    async def test_delete_missing_fails(self) -> None:
        account = await self.account()
        await self.fails(
            account.delete_mailbox("Nope"), NoSuchMailbox, "delete_mailbox of a missing folder"
        )

    async def test_delete_inbox_fails(self) -> None:
        account = await self.account()
        for spelling in ("INBOX", "inbox"):
            await self.fails(
                account.delete_mailbox(spelling), CannotDeleteInbox, f"delete_mailbox({spelling!r})"
            )
        self.assertIn("INBOX", await self.names(account), "INBOX must survive a refused delete")

    async def test_delete_keeps_children(self) -> None:
        account = await self.account()
        await account.create_mailbox("a")
        await account.create_mailbox("a/b")
        await self.append(await self.mailbox("a/b", account))
        await account.delete_mailbox("a")
        names = await self.names(account)
        self.assertTrue(names["a/b"].selectable, "delete_mailbox('a') must keep 'a/b'")
        self.assertEqual(
            len(await self.uids(await self.mailbox("a/b", account))), 1, "child lost its mail"
        )

    async def test_unselectable_parent_listed(self) -> None:
        account = await self.account()
        await account.create_mailbox("a")
        await account.create_mailbox("a/b")
        await account.delete_mailbox("a")
        names = await self.names(account)
        self.assertIn("a", names, "a parent that exists only through its children must be listed")
        self.assertFalse(
            names["a"].selectable, "such a parent must be listed with selectable=False"
        )

    async def test_unselectable_parent_cannot_be_opened_or_deleted(self) -> None:
        account = await self.account()
        await account.create_mailbox("a")
        await account.create_mailbox("a/b")
        await account.delete_mailbox("a")
        await self.fails(
            account.open_mailbox("a"), NoSuchMailbox, "open_mailbox of an unselectable parent"
        )
        await self.fails(
            account.delete_mailbox("a"), NoSuchMailbox, "delete_mailbox of an unselectable parent"
        )
        await account.create_mailbox("a")
        self.assertTrue(
            (await self.names(account))["a"].selectable,
            "create makes an unselectable parent selectable",
        )

    async def test_delete_removes_messages(self) -> None:
        account = await self.account()
        work = await self.mailbox("Work", account, create=True)
        old = await self.append(work)
        await account.delete_mailbox("Work")
        await account.create_mailbox("Work")
        fresh = await self.mailbox("Work", account)
        self.assertEqual(await self.uids(fresh), [], "a re-created folder still holds old mail")
        new = await self.append(fresh)
        if fresh.uidvalidity == work.uidvalidity:
            self.assertGreater(
                new.uid, old.uid, "a re-created folder reuses a UID with the same UIDVALIDITY"
            )

    async def test_rename_mailbox(self) -> None:
        account = await self.account()
        old = await self.mailbox("Old", account, create=True)
        info = await self.append(old, 1, ["\\Flagged", "$Label"])
        await account.rename_mailbox("Old", "New")
        names = await self.names(account)
        self.assertNotIn("Old", names, "renamed folder still listed under its old name")
        self.assertTrue(names["New"].selectable, "renamed folder must be listed under its new name")
        new = await self.mailbox("New", account)
        [moved] = await new.list_messages()
        self.assertEqual(await self.content(new, moved.uid), message(1), "rename lost the message")
        if new.uidvalidity == old.uidvalidity:
            self.assertEqual(moved.uid, info.uid, "rename kept UIDVALIDITY but changed a UID")

    async def test_rename_moves_children(self) -> None:
        account = await self.account()
        for name in ("a", "a/b", "a/b/c", "ab"):
            await account.create_mailbox(name)
        await self.append(await self.mailbox("a/b/c", account))
        await account.rename_mailbox("a", "z")
        names = await self.names(account)
        for gone in ("a", "a/b", "a/b/c"):
            self.assertNotIn(gone, names, f"{gone!r} must follow its parent's rename")
        for name in ("z", "z/b", "z/b/c", "ab"):
            self.assertIn(name, names, f"{name!r} missing after rename of 'a' to 'z'")
        self.assertEqual(
            len(await self.uids(await self.mailbox("z/b/c", account))), 1, "child lost its mail"
        )

    async def test_rename_missing_fails(self) -> None:
        account = await self.account()
        await self.fails(
            account.rename_mailbox("Nope", "New"), NoSuchMailbox, "rename of a missing folder"
        )

    async def test_rename_onto_existing_fails(self) -> None:
        account = await self.account()
        await self.fails(
            account.rename_mailbox("Sent", "Drafts"),
            MailboxExists,
            "rename onto an existing folder",
        )
        await self.fails(
            account.rename_mailbox("Sent", "inbox"), MailboxExists, "rename onto INBOX"
        )
        self.assertIn("Sent", await self.names(account), "a refused rename changed the tree")

    async def test_rename_into_own_child_fails(self) -> None:
        account = await self.account()
        await account.create_mailbox("a")
        await self.fails(
            account.rename_mailbox("a", "a/b"), InvalidMailboxName, "rename into its own child"
        )
        self.assertTrue(
            (await self.names(account))["a"].selectable, "a refused rename changed the tree"
        )

    async def test_rename_inbox(self) -> None:
        account = await self.account()
        inbox = await self.mailbox(account=account)
        await self.append_many(inbox, 2)
        await account.rename_mailbox("INBOX", "Old Mail")
        names = await self.names(account)
        self.assertTrue(names["INBOX"].selectable, "INBOX must remain after being renamed")
        self.assertEqual(
            await self.uids(await self.mailbox(account=account)), [], "renamed INBOX must be empty"
        )
        moved = await self.mailbox("Old Mail", account)
        contents = [await self.content(moved, uid) for uid in await self.uids(moved)]
        self.assertEqual(
            contents, [message(1), message(2)], "renaming INBOX must move its messages"
        )

    async def test_rename_inbox_into_its_own_child(self) -> None:
        account = await self.account()
        await account.create_mailbox("INBOX/Lists")
        inbox = await self.mailbox(account=account)
        await self.append(inbox)
        await account.rename_mailbox("INBOX", "INBOX/Old")
        names = await self.names(account)
        for name in ("INBOX", "INBOX/Lists", "INBOX/Old"):
            self.assertTrue(names[name].selectable, f"{name} after renaming INBOX to INBOX/Old")
        old = await self.mailbox("INBOX/Old", account)
        self.assertEqual(len(await self.uids(old)), 1, "renaming INBOX must move its messages")

    async def test_renamed_folder_does_not_reuse_uids(self) -> None:
        account = await self.account()
        old = await self.mailbox("Old", account, create=True)
        infos = await self.append_many(old, 2)
        await old.remove([infos[-1].uid])
        await account.rename_mailbox("Old", "New")
        new = await self.mailbox("New", account)
        info = await self.append(new, 3)
        if new.uidvalidity == old.uidvalidity:
            self.assertGreater(
                info.uid, infos[-1].uid, "UID reused after rename with the same UIDVALIDITY"
            )


class SubscriptionTests(StoreTestBase):
    async def test_subscribe(self) -> None:
        account = await self.account()
        await account.create_mailbox("Work")
        self.assertFalse(
            (await self.names(account))["Work"].subscribed, "a new folder is not subscribed"
        )
        await account.set_subscribed("Work", True)
        self.assertTrue((await self.names(account))["Work"].subscribed, "set_subscribed(True)")

    async def test_unsubscribe(self) -> None:
        account = await self.account()
        await account.set_subscribed("Sent", False)
        self.assertFalse((await self.names(account))["Sent"].subscribed, "set_subscribed(False)")
        await account.set_subscribed("Sent", False)

    async def test_subscribe_missing_folder(self) -> None:
        account = await self.account()
        await account.set_subscribed("Nope", True)
        names = await self.names(account)
        if "Nope" in names:
            self.assertFalse(
                names["Nope"].selectable, "a subscription does not make a folder selectable"
            )
            self.assertTrue(
                names["Nope"].subscribed, "a kept subscription must be listed as subscribed"
            )

    async def test_subscribe_inbox_any_case(self) -> None:
        account = await self.account()
        await account.set_subscribed("inbox", True)
        self.assertTrue((await self.names(account))["INBOX"].subscribed, "set_subscribed('inbox')")


class DeletedFolderTests(StoreTestBase):
    async def test_delete_expunges_open_handles(self) -> None:
        account = await self.account()
        work = await self.mailbox("Work", account, create=True)
        infos = await self.append_many(work, 2)
        highest = (await work.status()).highestmodseq
        changes = await self.listen(work)
        _, [seen] = await self.seen_when_fired(account.delete_mailbox("Work"), changes)
        expected = [MessageExpunged("Work", i.uid, highest) for i in infos]
        self.assertEqual(
            sorted(seen, key=lambda c: getattr(c, "uid", 0)),
            expected,
            "handles of a deleted folder see every message expunged, with the last HIGHESTMODSEQ",
        )

    async def test_handle_of_deleted_folder_fails(self) -> None:
        account = await self.account()
        work = await self.mailbox("Work", account, create=True)
        info = await self.append(work)
        await account.delete_mailbox("Work")
        calls: list[tuple[str, Callable[[], Deferred[Any]]]] = [
            ("status", work.status),
            ("list_messages", work.list_messages),
            ("get_messages", lambda: work.get_messages([info.uid])),
            ("open_content", lambda: work.open_content(info.uid)),
            ("append", lambda: work.append(source())),
            ("set_flags", lambda: work.set_flags([info.uid], ["\\Seen"], StoreMode.ADD)),
            ("copy", lambda: work.copy([info.uid], "INBOX")),
            ("move", lambda: work.move([info.uid], "INBOX")),
            ("expunge", work.expunge),
            ("remove", lambda: work.remove([info.uid])),
            ("claim_recent", work.claim_recent),
            ("lock", work.lock),
            ("refresh", work.refresh),
        ]
        for what, call in calls:
            await self.fails(call(), NoSuchMailbox, f"{what} on a handle of a deleted folder")
        self.assertEqual(
            await self.uids(await self.mailbox(account=account)), [], "nothing reached INBOX"
        )
        await work.add_listener(print)
        await work.remove_listener(print)
        await work.close()

    async def test_recreated_folder_is_new(self) -> None:
        account = await self.account()
        work = await self.mailbox("Work", account, create=True)
        await account.delete_mailbox("Work")
        await account.create_mailbox("Work")
        await self.fails(work.status(), NoSuchMailbox, "an old handle reached a re-created folder")
