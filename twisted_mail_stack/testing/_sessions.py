"""Conformance: what concurrent sessions share: \\Recent, the maildrop lock and change notifications."""

from __future__ import annotations

from ..errors import MailboxInUse
from ..values import Change, Flag, FlagsChanged, MessageAdded, MessageExpunged, StoreMode
from ._base import StoreTestBase, source


class ListenerError(Exception):
    """Raised by a test's deliberately broken listener."""


class RecentTests(StoreTestBase):
    async def test_claim_recent_once(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        self.assertEqual(
            list(await inbox.claim_recent()), [i.uid for i in infos], "first claim_recent"
        )
        self.assertEqual(list(await inbox.claim_recent()), [], "claim_recent returned a UID twice")
        new = await self.append(inbox, 3)
        self.assertEqual(
            list(await inbox.claim_recent()), [new.uid], "claim_recent after a new arrival"
        )

    async def test_claim_recent_once_across_handles(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        infos = await self.append_many(one, 2)
        self.assertEqual(
            list(await two.claim_recent()), [i.uid for i in infos], "claim on the second handle"
        )
        self.assertEqual(
            list(await one.claim_recent()), [], "a UID claimed by another handle was returned again"
        )
        new = await self.append(two, 3)
        self.assertEqual(list(await one.claim_recent()), [new.uid], "claim after a new arrival")
        self.assertEqual(
            list(await two.claim_recent()), [], "a UID claimed by another handle was returned again"
        )

    async def test_status_counts_unclaimed_recent(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        await self.append_many(one, 2)
        self.assertEqual((await two.status()).recent, 2, "unclaimed messages not counted")
        self.assertEqual((await one.status()).recent, 2, "status claimed \\Recent")
        await one.claim_recent()
        self.assertEqual((await two.status()).recent, 0, "claimed messages still counted")
        await self.append(two, 3)
        self.assertEqual((await one.status()).recent, 1, "a new arrival not counted")

    async def test_copies_are_recent(self) -> None:
        account = await self.account()
        inbox, sent = await self.mailbox(account=account), await self.mailbox("Sent", account)
        info = await self.append(inbox)
        await sent.claim_recent()
        result = await inbox.copy([info.uid], "Sent")
        self.assertEqual(
            list(await sent.claim_recent()),
            [result.uids[info.uid]],
            "a copy is \\Recent in its target",
        )

    async def test_claim_recent_skips_expunged(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        await inbox.remove([infos[0].uid])
        self.assertEqual(
            list(await inbox.claim_recent()), [infos[1].uid], "claim_recent returned a removed UID"
        )


class LockTests(StoreTestBase):
    async def test_lock_is_exclusive(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        await one.lock()
        await self.fails(two.lock(), MailboxInUse, "a second lock of a locked folder")

    async def test_release_allows_new_lock(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        lock = await one.lock()
        await lock.release()
        await lock.release()
        second = await two.lock()
        await self.fails(one.lock(), MailboxInUse, "lock after the lock moved to another handle")
        await second.release()

    async def test_close_releases_lock(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        await one.lock()
        await one.close()
        await (await two.lock()).release()

    async def test_lock_is_per_folder(self) -> None:
        account = await self.account()
        await (await self.mailbox(account=account)).lock()
        await (await self.mailbox("Sent", account)).lock()

    async def test_lock_does_not_block_other_sessions(self) -> None:
        locked, other = await self.mailbox(), await self.mailbox()
        await locked.lock()
        info = await self.append(other)
        await other.set_flags([info.uid], ["\\Seen"], StoreMode.ADD)
        await other.remove([info.uid])
        self.assertEqual(await self.uids(locked), [], "a lock must not stop other sessions working")


class NotificationTests(StoreTestBase):
    """Changes reach every listener of every handle before the operation's Deferred fires."""

    async def test_append_notifies_both_handles(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        log_one, log_two = await self.listen(one), await self.listen(two)
        info, [seen_one, seen_two] = await self.seen_when_fired(
            one.append(source()), log_one, log_two
        )
        expected = [MessageAdded("INBOX", info)]
        self.assertEqual(seen_one, expected, "the appending handle's listener")
        self.assertEqual(seen_two, expected, "another handle's listener")

    async def test_flag_change_notifies_both_handles(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        info = await self.append(one)
        log_one, log_two = await self.listen(one), await self.listen(two)
        result, [seen_one, seen_two] = await self.seen_when_fired(
            two.set_flags([info.uid], ["\\Seen", "$X"], StoreMode.ADD), log_one, log_two
        )
        expected = [FlagsChanged("INBOX", result.updated[0])]
        self.assertEqual(seen_one, expected, "another handle's listener")
        self.assertEqual(seen_two, expected, "the changing handle's listener")
        self.assertEqual(
            expected[0].info.flags, {Flag.SEEN, "$X"}, "FlagsChanged carries the new flags"
        )

    async def test_expunge_notifies_both_handles(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        infos = await self.append_many(one, 2)
        await self.flag(one, [i.uid for i in infos], Flag.DELETED)
        log_one, log_two = await self.listen(one), await self.listen(two)
        _, [seen_one, seen_two] = await self.seen_when_fired(one.expunge(), log_one, log_two)
        for seen, whose in ((seen_one, "the expunging handle"), (seen_two, "another handle")):
            self.assertEqual(
                [c.uid for c in seen if isinstance(c, MessageExpunged)],
                [i.uid for i in infos],
                whose,
            )
        highest = (await one.status()).highestmodseq
        self.assertEqual(
            seen_two[-1],
            MessageExpunged("INBOX", infos[-1].uid, highest),
            "modseq of the last expunge",
        )

    async def test_remove_notifies(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        info = await self.append(one)
        log = await self.listen(two)
        _, [seen] = await self.seen_when_fired(one.remove([info.uid]), log)
        self.assertEqual(
            [type(c) for c in seen], [MessageExpunged], "remove must fire MessageExpunged"
        )

    async def test_move_notifies_source_and_target(self) -> None:
        account = await self.account()
        inbox, sent = await self.mailbox(account=account), await self.mailbox("Sent", account)
        info = await self.append(inbox)
        log_inbox, log_sent = await self.listen(inbox), await self.listen(sent)
        result, [seen_inbox, seen_sent] = await self.seen_when_fired(
            inbox.move([info.uid], "Sent"), log_inbox, log_sent
        )
        self.assertEqual(
            [(type(c), getattr(c, "uid", None)) for c in seen_inbox],
            [(MessageExpunged, info.uid)],
            "move: source listener",
        )
        self.assertEqual(
            [c.info.uid for c in seen_sent if isinstance(c, MessageAdded)],
            [result.uids[info.uid]],
            "move: target listener",
        )

    async def test_copy_notifies_target(self) -> None:
        account = await self.account()
        inbox, sent = await self.mailbox(account=account), await self.mailbox("Sent", account)
        info = await self.append(inbox)
        log = await self.listen(sent)
        result, [seen] = await self.seen_when_fired(inbox.copy([info.uid], "Sent"), log)
        self.assertEqual(
            [c.info.uid for c in seen if isinstance(c, MessageAdded)],
            [result.uids[info.uid]],
            "copy: target listener",
        )

    async def test_changes_arrive_in_order(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        log = await self.listen(two)
        info = await self.append(one)
        await one.set_flags([info.uid], ["\\Deleted"], StoreMode.ADD)
        await one.expunge()
        self.assertEqual(
            [type(c) for c in log],
            [MessageAdded, FlagsChanged, MessageExpunged],
            "order of changes",
        )
        self.assertTrue(all(c.mailbox == "INBOX" for c in log), "Change.mailbox")

    async def test_noop_flag_change_is_silent(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Seen"])
        log = await self.listen(inbox)
        await inbox.set_flags([info.uid], ["\\Seen"], StoreMode.ADD)
        self.assertEqual(log, [], "a set_flags that changed nothing fired a change")

    async def test_remove_listener(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        log: list[Change] = []
        await two.add_listener(log.append)
        await two.remove_listener(log.append)
        await two.remove_listener(log.append)
        await self.append(one)
        self.assertEqual(log, [], "a removed listener was called")

    async def test_close_removes_listeners(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        log = await self.listen(two)
        await two.close()
        await self.append(one)
        self.assertEqual(log, [], "a closed handle's listener was called")

    async def test_raising_listener_breaks_nothing(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()

        def broken(change: Change) -> None:
            raise ListenerError("deliberate")

        await one.add_listener(broken)
        log = await self.listen(two)
        info, [seen] = await self.seen_when_fired(one.append(source()), log)
        self.assertEqual(
            seen, [MessageAdded("INBOX", info)], "a raising listener stopped another listener"
        )
        self.assertEqual(await self.uids(one), [info.uid], "a raising listener broke the operation")
        self.flushLoggedErrors(ListenerError)
