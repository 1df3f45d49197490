"""Conformance: flags and modseqs, copy and move, expunge and remove."""

from __future__ import annotations

from ..errors import InvalidMailboxName, NoSuchMailbox
from ..values import Flag, StoreMode
from ._base import DATE, StoreTestBase, message


class FlagTests(StoreTestBase):
    async def test_replace_flags(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Seen", "$Old"])
        await inbox.set_flags([info.uid], ["\\Flagged", "$New"], StoreMode.REPLACE)
        self.assertEqual(
            (await self.info(inbox, info.uid)).flags, {Flag.FLAGGED, "$New"}, "REPLACE"
        )

    async def test_add_flags_keeps_others(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Seen", "$Work"])
        await inbox.set_flags([info.uid], ["\\Flagged", "Urgent"], StoreMode.ADD)
        self.assertEqual(
            (await self.info(inbox, info.uid)).flags,
            {Flag.SEEN, "$Work", Flag.FLAGGED, "Urgent"},
            "ADD must keep the flags and keywords already set",
        )

    async def test_remove_flags_keeps_others(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Seen", "\\Draft", "$Work", "Todo"])
        await inbox.set_flags([info.uid], ["\\Draft", "Todo", "$Absent"], StoreMode.REMOVE)
        self.assertEqual((await self.info(inbox, info.uid)).flags, {Flag.SEEN, "$Work"}, "REMOVE")

    async def test_replace_with_no_flags_clears(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Seen", "$Work"])
        await inbox.set_flags([info.uid], [], StoreMode.REPLACE)
        self.assertEqual(
            (await self.info(inbox, info.uid)).flags, frozenset(), "REPLACE with no flags"
        )

    async def test_keywords_keep_their_case(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await inbox.set_flags([info.uid], ["MixedCase", "$MDNSent"], StoreMode.ADD)
        self.assertEqual(
            (await self.info(inbox, info.uid)).flags, {"MixedCase", "$MDNSent"}, "keyword case"
        )

    async def test_system_flags_in_canonical_case(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        result = await inbox.set_flags(
            [info.uid], ["\\SEEN", "\\answered", "\\dRaFt"], StoreMode.ADD
        )
        expected = {Flag.SEEN, Flag.ANSWERED, Flag.DRAFT}
        self.assertEqual(result.updated[0].flags, expected, "system flags in the StoreResult")
        self.assertEqual(
            (await self.info(inbox, info.uid)).flags, expected, "system flags as stored"
        )

    async def test_all_system_flags(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await inbox.set_flags([info.uid], Flag.SYSTEM, StoreMode.REPLACE)
        self.assertEqual((await self.info(inbox, info.uid)).flags, Flag.SYSTEM, "every system flag")

    async def test_invalid_flag_changes_nothing(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        before = await inbox.status()
        uids = [i.uid for i in infos]
        for bad in ("\\Recent", "\\Bogus", "has space", "paren(", ""):
            for mode in StoreMode:
                d = inbox.set_flags(uids, ["\\Seen", bad], mode)
                await self.fails(d, ValueError, f"set_flags {mode.name} with {bad!r}")
        self.assertEqual(
            list(await inbox.list_messages()), infos, "a refused set_flags changed a message"
        )
        self.assertEqual(await inbox.status(), before, "a refused set_flags changed the status")

    async def test_set_flags_gives_new_modseq(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        highest = (await inbox.status()).highestmodseq
        result = await inbox.set_flags([infos[0].uid], ["\\Seen"], StoreMode.ADD)
        [updated] = result.updated
        self.assertGreater(
            updated.modseq, highest, "a flag change needs a modseq above HIGHESTMODSEQ"
        )
        self.assertEqual(
            (await inbox.status()).highestmodseq,
            updated.modseq,
            "HIGHESTMODSEQ after a flag change",
        )
        self.assertEqual(
            await self.info(inbox, infos[0].uid), updated, "StoreResult.updated is the stored state"
        )

    async def test_each_change_gets_a_greater_modseq(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        modseqs = [info.modseq]
        for flags in (["\\Seen"], ["\\Seen", "$A"], ["$B"]):
            result = await inbox.set_flags([info.uid], flags, StoreMode.REPLACE)
            modseqs.append(result.updated[0].modseq)
        self.assertEqual(
            modseqs, sorted(set(modseqs)), f"modseqs of successive changes must grow: {modseqs}"
        )

    async def test_noop_set_flags_keeps_modseq(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Seen", "$Work"])
        highest = (await inbox.status()).highestmodseq
        for flags, mode in [
            (["\\Seen"], StoreMode.ADD),
            (["\\Flagged"], StoreMode.REMOVE),
            (["$Work", "\\Seen"], StoreMode.REPLACE),
        ]:
            result = await inbox.set_flags([info.uid], flags, mode)
            self.assertEqual(
                result.updated,
                (),
                f"set_flags {mode.name} {flags} changed nothing but reported an update",
            )
        self.assertEqual(
            await self.info(inbox, info.uid), info, "a no-op set_flags changed the message"
        )
        self.assertEqual(
            (await inbox.status()).highestmodseq, highest, "a no-op set_flags raised HIGHESTMODSEQ"
        )

    async def test_only_changed_messages_updated(self) -> None:
        inbox = await self.mailbox()
        seen = await self.append(inbox, 1, ["\\Seen"])
        unseen = await self.append(inbox, 2)
        result = await inbox.set_flags([seen.uid, unseen.uid], ["\\Seen"], StoreMode.ADD)
        self.assertEqual([i.uid for i in result.updated], [unseen.uid], "StoreResult.updated")
        self.assertEqual(
            await self.info(inbox, seen.uid), seen, "an unchanged message kept its modseq"
        )

    async def test_set_flags_ignores_missing_uids(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        result = await inbox.set_flags([info.uid, info.uid + 100], ["\\Seen"], StoreMode.ADD)
        self.assertEqual(
            [i.uid for i in result.updated], [info.uid], "set_flags with a missing UID"
        )
        self.assertEqual(result.conflicts, (), "a missing UID is not a conflict")

    async def test_unchanged_since_conflict(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        changed = (await inbox.set_flags([info.uid], ["$A"], StoreMode.ADD)).updated[0]
        result = await inbox.set_flags(
            [info.uid], ["\\Seen"], StoreMode.ADD, unchanged_since=info.modseq
        )
        self.assertEqual(
            result.conflicts, (info.uid,), "UNCHANGEDSINCE below the modseq must conflict"
        )
        self.assertEqual(result.updated, (), "a conflicting message must not be updated")
        self.assertEqual(
            await self.info(inbox, info.uid), changed, "a conflicting message was changed"
        )

    async def test_unchanged_since_equal_modseq_applies(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        result = await inbox.set_flags(
            [info.uid], ["\\Seen"], StoreMode.ADD, unchanged_since=info.modseq
        )
        self.assertEqual(result.conflicts, (), "UNCHANGEDSINCE equal to the modseq is no conflict")
        self.assertEqual(
            [i.flags for i in result.updated], [{Flag.SEEN}], "UNCHANGEDSINCE store not applied"
        )

    async def test_unchanged_since_partial(self) -> None:
        inbox = await self.mailbox()
        old, new = await self.append_many(inbox, 2)
        result = await inbox.set_flags(
            [old.uid, new.uid], ["\\Flagged"], StoreMode.ADD, unchanged_since=old.modseq
        )
        self.assertEqual(result.conflicts, (new.uid,), "only the newer message conflicts")
        self.assertEqual([i.uid for i in result.updated], [old.uid], "the older message is updated")

    async def test_highestmodseq_grows_on_expunge(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        await self.flag(inbox, [infos[0].uid], Flag.DELETED)
        before = (await inbox.status()).highestmodseq
        await inbox.expunge()
        after = (await inbox.status()).highestmodseq
        self.assertGreater(after, before, "an expunge must raise HIGHESTMODSEQ")
        result = await inbox.set_flags([infos[1].uid], ["\\Seen"], StoreMode.ADD)
        self.assertGreater(
            result.updated[0].modseq, after, "a change after an expunge needs a greater modseq"
        )

    async def test_highestmodseq_grows_on_remove(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        before = (await inbox.status()).highestmodseq
        await inbox.remove([infos[1].uid])
        after = (await inbox.status()).highestmodseq
        self.assertGreater(after, before, "a remove must raise HIGHESTMODSEQ")
        new = await self.append(inbox, 3)
        self.assertGreater(new.modseq, after, "an arrival after a remove needs a greater modseq")


class CopyTests(StoreTestBase):
    async def test_copy(self) -> None:
        account = await self.account()
        inbox, sent = await self.mailbox(account=account), await self.mailbox("Sent", account)
        infos = [
            await self.append(inbox, 1, ["\\Seen", "$Work"]),
            await self.append(inbox, 2, ["\\Flagged"]),
        ]
        result = await inbox.copy([i.uid for i in infos], "Sent")
        self.assertEqual(
            result.uidvalidity, sent.uidvalidity, "CopyResult.uidvalidity is the target's"
        )
        self.assertEqual(
            set(result.uids), {i.uid for i in infos}, "CopyResult.uids keys are the source UIDs"
        )
        copies = await sent.list_messages()
        self.assertEqual(
            [c.uid for c in copies], [result.uids[i.uid] for i in infos], "copies in the target"
        )
        for original, copy in zip(infos, copies, strict=True):
            self.assertEqual(copy.flags, original.flags, "copy must keep flags")
            self.assertEqual(
                copy.internal_date, original.internal_date, "copy must keep the internal date"
            )
            self.assertEqual(copy.size, original.size, "copy must keep the size")
            self.assertEqual(
                await self.content(sent, copy.uid),
                message(infos.index(original) + 1),
                "copied bytes",
            )
        self.assertEqual(
            list(await inbox.list_messages()), infos, "copy must leave the sources alone"
        )

    async def test_copy_uids_ascend_in_source_order(self) -> None:
        account = await self.account()
        inbox, sent = await self.mailbox(account=account), await self.mailbox("Sent", account)
        existing = await self.append(sent, 9)
        infos = await self.append_many(inbox, 3)
        result = await inbox.copy([infos[2].uid, infos[0].uid, infos[1].uid], "Sent")
        new = [result.uids[i.uid] for i in infos]
        self.assertEqual(
            new, sorted(set(new)), f"new UIDs must ascend with the source UIDs: {result.uids}"
        )
        self.assertGreater(new[0], existing.uid, "copies need UIDs above the target's earlier UIDs")

    async def test_copy_gives_new_modseqs(self) -> None:
        account = await self.account()
        inbox, sent = await self.mailbox(account=account), await self.mailbox("Sent", account)
        await self.append_many(sent, 2)
        highest = (await sent.status()).highestmodseq
        info = await self.append(inbox)
        await inbox.copy([info.uid], "Sent")
        copies = await sent.list_messages()
        self.assertGreater(
            copies[-1].modseq, highest, "a copy arriving needs a new modseq in the target"
        )

    async def test_copy_to_same_folder(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["$Work"])
        result = await inbox.copy([info.uid], "INBOX")
        self.assertEqual(
            result.uidvalidity, inbox.uidvalidity, "copy to the same folder: uidvalidity"
        )
        new = result.uids[info.uid]
        self.assertGreater(new, info.uid, "copy to the same folder needs a new UID")
        self.assertEqual(await self.uids(inbox), [info.uid, new], "copy to the same folder")
        self.assertEqual(
            (await self.info(inbox, new)).flags, {"$Work"}, "copy to the same folder: flags"
        )

    async def test_copy_skips_missing_uids(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        result = await inbox.copy([info.uid, info.uid + 50], "Sent")
        self.assertEqual(set(result.uids), {info.uid}, "copy of a missing UID")

    async def test_copy_to_missing_folder_fails(self) -> None:
        account = await self.account()
        inbox = await self.mailbox(account=account)
        info = await self.append(inbox)
        before = await self.names(account)
        await self.fails(inbox.copy([info.uid], "Nope"), NoSuchMailbox, "copy to a missing folder")
        self.assertEqual(await self.names(account), before, "a failed copy changed the folder tree")
        self.assertEqual(
            list(await inbox.list_messages()), [info], "a failed copy changed the source"
        )

    async def test_copy_to_unselectable_parent_fails(self) -> None:
        account = await self.account()
        inbox = await self.mailbox(account=account)
        await account.create_mailbox("a")
        await account.create_mailbox("a/b")
        await account.delete_mailbox("a")
        info = await self.append(inbox)
        await self.fails(
            inbox.copy([info.uid], "a"), NoSuchMailbox, "copy to an unselectable parent"
        )

    async def test_copy_target_inbox_any_case(self) -> None:
        account = await self.account()
        sent = await self.mailbox("Sent", account)
        info = await self.append(sent)
        result = await sent.copy([info.uid], "inbox")
        self.assertEqual(
            await self.uids(await self.mailbox(account=account)),
            list(result.uids.values()),
            "copy to 'inbox'",
        )

    async def test_move(self) -> None:
        account = await self.account()
        inbox, sent = await self.mailbox(account=account), await self.mailbox("Sent", account)
        infos = [
            await self.append(inbox, 1, ["\\Seen"]),
            await self.append(inbox, 2),
            await self.append(inbox, 3),
        ]
        result = await inbox.move([infos[0].uid, infos[2].uid], "Sent")
        self.assertEqual(result.uidvalidity, sent.uidvalidity, "move: CopyResult.uidvalidity")
        self.assertEqual(await self.uids(inbox), [infos[1].uid], "move must remove the sources")
        moved = await sent.list_messages()
        self.assertEqual(
            [m.uid for m in moved], [result.uids[infos[0].uid], result.uids[infos[2].uid]], "move"
        )
        self.assertEqual(moved[0].flags, {Flag.SEEN}, "move must keep flags")
        self.assertEqual(moved[0].internal_date, DATE, "move must keep the internal date")
        self.assertEqual(await self.content(sent, moved[1].uid), message(3), "moved bytes")

    async def test_move_to_same_folder(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["$Work"])
        result = await inbox.move([info.uid], "INBOX")
        new = result.uids[info.uid]
        self.assertGreater(new, info.uid, "move to the same folder needs a new UID")
        self.assertEqual(await self.uids(inbox), [new], "move to the same folder")
        self.assertEqual(
            await self.content(inbox, new), message(1), "move to the same folder kept the bytes"
        )

    async def test_move_to_missing_folder_keeps_sources(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await self.fails(inbox.move([info.uid], "Nope"), NoSuchMailbox, "move to a missing folder")
        self.assertEqual(list(await inbox.list_messages()), [info], "a failed move lost the source")

    async def test_move_bad_target_name(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await self.fails(inbox.move([info.uid], "../x"), InvalidMailboxName, "move to a bad name")
        self.assertEqual(await self.uids(inbox), [info.uid], "a failed move lost the source")


class ExpungeTests(StoreTestBase):
    async def test_expunge_only_deleted(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 4)
        await self.flag(inbox, [infos[1].uid, infos[3].uid], Flag.DELETED)
        removed = await inbox.expunge()
        self.assertEqual(
            list(removed), [infos[1].uid, infos[3].uid], "expunge returns removed UIDs, ascending"
        )
        self.assertEqual(
            await self.uids(inbox), [infos[0].uid, infos[2].uid], "expunge removes only \\Deleted"
        )

    async def test_expunge_restricted_to_uids(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        await self.flag(inbox, [i.uid for i in infos[:2]], Flag.DELETED)
        removed = await inbox.expunge([infos[1].uid, infos[2].uid])
        self.assertEqual(
            list(removed), [infos[1].uid], "UID EXPUNGE removes only \\Deleted among the UIDs"
        )
        self.assertEqual(await self.uids(inbox), [infos[0].uid, infos[2].uid], "UID EXPUNGE")

    async def test_expunge_nothing(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        highest = (await inbox.status()).highestmodseq
        self.assertEqual(list(await inbox.expunge()), [], "expunge without \\Deleted messages")
        self.assertEqual(
            await self.uids(inbox), [i.uid for i in infos], "expunge removed an undeleted message"
        )
        self.assertEqual(
            (await inbox.status()).highestmodseq, highest, "an empty expunge raised HIGHESTMODSEQ"
        )

    async def test_empty_uid_sets_change_nothing(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Deleted"])
        self.assertEqual(list(await inbox.expunge([])), [], "expunge([]) must not mean 'every UID'")
        self.assertEqual(list(await inbox.remove([])), [], "remove([])")
        self.assertEqual(
            (await inbox.set_flags([], ["\\Seen"], StoreMode.ADD)).updated, (), "set_flags([])"
        )
        self.assertEqual((await inbox.copy([], "Sent")).uids, {}, "copy([])")
        self.assertEqual((await inbox.move([], "Sent")).uids, {}, "move([])")
        self.assertEqual(list(await inbox.get_messages([])), [], "get_messages([])")
        self.assertEqual(
            list(await inbox.list_messages()), [info], "an empty UID set changed the folder"
        )

    async def test_uid_arguments_take_any_iterable(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 4)
        uids = [i.uid for i in infos]
        got = await inbox.get_messages(uid for uid in uids)
        self.assertEqual(list(got), infos, "get_messages of a generator")
        result = await inbox.set_flags(iter(uids[:3]), ["\\Deleted"], StoreMode.ADD)
        self.assertEqual(len(result.updated), 3, "set_flags of an iterator")
        copied = await inbox.copy(iter(uids[:1]), "Sent")
        self.assertEqual(set(copied.uids), {uids[0]}, "copy of an iterator")
        moved = await inbox.move((uid for uid in uids[3:]), "Drafts")
        self.assertEqual(set(moved.uids), {uids[3]}, "move of a generator")
        self.assertEqual(
            list(await inbox.expunge(uid for uid in uids[:1])), uids[:1], "expunge of a generator"
        )
        self.assertEqual(
            list(await inbox.remove(range(uids[1], uids[2] + 1))), uids[1:3], "remove of a range"
        )
        self.assertEqual(await self.uids(inbox), [], "every message is gone")

    async def test_remove_ignores_flags(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        removed = await inbox.remove([infos[2].uid, infos[0].uid])
        self.assertEqual(
            list(removed), [infos[0].uid, infos[2].uid], "remove returns removed UIDs, ascending"
        )
        self.assertEqual(await self.uids(inbox), [infos[1].uid], "remove")

    async def test_remove_skips_gone_uids(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await inbox.remove([info.uid])
        self.assertEqual(
            list(await inbox.remove([info.uid, 777])), [], "remove of UIDs already gone"
        )
