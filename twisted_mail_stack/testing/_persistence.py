"""Conformance: what survives a restart, and what another process sees (needs the optional hooks)."""

from __future__ import annotations

from twisted.internet.task import deferLater

from ..errors import MailboxInUse
from ..interfaces import IMailbox
from ..values import (
    Change,
    Flag,
    FlagsChanged,
    MessageAdded,
    MessageExpunged,
    SpecialUse,
    StoreMode,
)
from ._base import ALICE, BOB, StoreTestBase, message, source

#: Seconds within which a backend must find another process's change by itself (IMAP IDLE).
POLL_LIMIT = 10


class RestartTests(StoreTestBase):
    async def test_restart_keeps_accounts_and_folders(self) -> None:
        account = await self.account()
        await self.account(BOB)
        await account.create_mailbox("Projects/Everything", SpecialUse.ALL)
        await account.set_subscribed("Projects/Everything", True)
        await account.set_subscribed("Sent", False)
        before = await self.names(account)
        store = await self.restart()
        self.assertEqual(
            list(await store.list_accounts()), [ALICE, BOB], "accounts after a restart"
        )
        self.assertEqual(
            await self.names(await self.open_account()), before, "folders after a restart"
        )

    async def test_restart_keeps_messages(self) -> None:
        inbox = await self.mailbox()
        await self.append(inbox, 1, ["\\Seen", "$Label1", "MixedCase"])
        info = await self.append(inbox, 2)
        await inbox.set_flags([info.uid], ["\\Answered", "Later"], StoreMode.ADD)
        before = list(await inbox.list_messages())
        await self.restart()
        inbox = await self.mailbox(account=await self.open_account())
        self.assertEqual(
            list(await inbox.list_messages()),
            before,
            "flags, keywords, dates, sizes, modseqs after a restart",
        )
        self.assertEqual(await self.content(inbox, info.uid), message(2), "bytes after a restart")

    async def test_restart_keeps_uidvalidity(self) -> None:
        account = await self.account()
        before = {
            name: (await self.mailbox(name, account)).uidvalidity for name in ("INBOX", "Sent")
        }
        await self.restart()
        account = await self.open_account()
        after = {
            name: (await self.mailbox(name, account)).uidvalidity for name in ("INBOX", "Sent")
        }
        self.assertEqual(after, before, "UIDVALIDITY changed across a restart")

    async def test_restart_does_not_reuse_uids(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        await inbox.remove([infos[-1].uid])
        await self.restart()
        inbox = await self.mailbox(account=await self.open_account())
        self.assertGreater((await inbox.status()).uidnext, infos[-1].uid, "UIDNEXT after a restart")
        new = await self.append(inbox, 4)
        self.assertGreater(new.uid, infos[-1].uid, "a UID was reused after a restart")

    async def test_restart_keeps_highestmodseq(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        await inbox.set_flags([infos[0].uid], ["\\Seen"], StoreMode.ADD)
        await inbox.remove([infos[1].uid])
        highest = (await inbox.status()).highestmodseq
        await self.restart()
        inbox = await self.mailbox(account=await self.open_account())
        self.assertGreaterEqual(
            (await inbox.status()).highestmodseq, highest, "HIGHESTMODSEQ went down on restart"
        )
        result = await inbox.set_flags([infos[0].uid], ["\\Flagged"], StoreMode.ADD)
        self.assertGreater(
            result.updated[0].modseq, highest, "a modseq after a restart must exceed the old ones"
        )

    async def test_restart_keeps_recent_claims(self) -> None:
        inbox = await self.mailbox()
        await self.append_many(inbox, 2)
        await inbox.claim_recent()
        await self.restart()
        inbox = await self.mailbox(account=await self.open_account())
        self.assertEqual(
            list(await inbox.claim_recent()), [], "claim_recent repeated UIDs after a restart"
        )

    async def test_restart_releases_locks(self) -> None:
        await (await self.mailbox()).lock()
        await self.restart()
        inbox = await self.mailbox(account=await self.open_account())
        await (await inbox.lock()).release()


class PeerTests(StoreTestBase):
    """Two stores over the same storage, as two processes."""

    async def _pair(self) -> tuple[IMailbox, list[Change], IMailbox]:
        """An INBOX handle with a listener on the first store, and one on the peer."""
        mine = await self.mailbox()
        log = await self.listen(mine)
        peer = await self.peer()
        theirs = await self.mailbox(account=await self.account(ALICE, peer))
        return mine, log, theirs

    async def test_peer_append_reaches_listener_after_refresh(self) -> None:
        mine, log, theirs = await self._pair()
        info = await self.append(theirs)
        await mine.refresh()
        self.assertEqual(
            log, [MessageAdded("INBOX", info)], "another process's append after refresh()"
        )

    async def test_peer_flag_change_reaches_listener_after_refresh(self) -> None:
        mine, log, theirs = await self._pair()
        info = await self.append(mine)
        result = await theirs.set_flags([info.uid], ["\\Seen", "$Peer"], StoreMode.ADD)
        await mine.refresh()
        self.assertEqual(
            log[1:], [FlagsChanged("INBOX", result.updated[0])], "another process's flag change"
        )

    async def test_peer_expunge_reaches_listener_after_refresh(self) -> None:
        mine, log, theirs = await self._pair()
        info = await self.append(mine, 1, [Flag.DELETED])
        await theirs.expunge()
        await mine.refresh()
        self.assertEqual(
            [c.uid for c in log if isinstance(c, MessageExpunged)],
            [info.uid],
            "another process's expunge",
        )

    async def test_peer_deliver_reaches_listener_after_refresh(self) -> None:
        mine, log, _ = await self._pair()
        peer = await self.peer()
        infos = await peer.deliver([ALICE], source())
        await mine.refresh()
        self.assertEqual(log, [MessageAdded("INBOX", infos[ALICE])], "another process's delivery")

    async def test_peer_change_reported_by_any_handle(self) -> None:
        mine, log, theirs = await self._pair()
        info = await self.append(theirs)
        await (await self.mailbox()).list_messages()
        self.assertEqual(
            log,
            [MessageAdded("INBOX", info)],
            "list_messages of another handle must report the change",
        )

    async def test_peer_change_found_without_refresh(self) -> None:
        mine, log, theirs = await self._pair()
        from twisted.internet import reactor  # the one trial runs the test in

        info = await self.append(theirs)
        for _ in range(POLL_LIMIT * 10):
            if log:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(
            log, [MessageAdded("INBOX", info)], f"no change found by polling within {POLL_LIMIT} s"
        )

    async def test_peer_changes_in_list_messages(self) -> None:
        mine, _, theirs = await self._pair()
        info = await self.append(theirs, 5, ["$Peer"])
        self.assertEqual(
            list(await mine.list_messages()),
            [info],
            "list_messages misses another process's append",
        )
        self.assertEqual(
            await self.content(mine, info.uid), message(5), "bytes written by another process"
        )

    async def test_peer_uids_unique_and_ascending(self) -> None:
        mine, _, theirs = await self._pair()
        infos = [
            await self.append(handle, n) for n, handle in enumerate([mine, theirs, mine, theirs])
        ]
        uids = [i.uid for i in infos]
        self.assertEqual(uids, sorted(set(uids)), f"UIDs given by two processes: {uids}")
        modseqs = [i.modseq for i in infos]
        self.assertEqual(
            modseqs, sorted(set(modseqs)), f"modseqs given by two processes: {modseqs}"
        )

    async def test_peer_lock_is_exclusive(self) -> None:
        mine, _, theirs = await self._pair()
        lock = await mine.lock()
        await self.fails(theirs.lock(), MailboxInUse, "lock held by another process")
        await lock.release()
        await (await theirs.lock()).release()

    async def test_peer_claim_recent_once(self) -> None:
        mine, _, theirs = await self._pair()
        infos = await self.append_many(mine, 2)
        self.assertEqual(
            list(await theirs.claim_recent()), [i.uid for i in infos], "claim in another process"
        )
        self.assertEqual(
            list(await mine.claim_recent()),
            [],
            "UIDs claimed by another process were returned again",
        )

    async def test_peer_sees_folders(self) -> None:
        account = await self.account()
        peer = await self.peer()
        await (await self.account(ALICE, peer)).create_mailbox("Shared")
        self.assertIn("Shared", await self.names(account), "a folder created by another process")
