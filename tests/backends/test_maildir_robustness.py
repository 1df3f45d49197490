"""
The Maildir backend under stress: killed mid-delivery, damaged indexes, hostile names, two
processes on one tree, interrupted deliveries.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

from twisted.internet.defer import gatherResults

from twisted_mail_stack.backends.maildir.folder import Folder
from twisted_mail_stack.backends.maildir.layout import parse_name
from twisted_mail_stack.errors import (
    InvalidMailboxName,
    NoSuchAccount,
    StorageError,
)
from twisted_mail_stack.interfaces import IMailbox
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.testing._folders import BAD_NAMES, GOOD_NAMES
from twisted_mail_stack.values import (
    Change,
    Flag,
    MailboxReset,
    MessageAdded,
    MessageExpunged,
    StoreMode,
)

from . import test_maildir_layout as layout_tests
from .test_maildir import ALICE, BOB, MaildirCase, files_under

DATE = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
INDEX = "mailstack-index.sqlite"


def checked_message(payload: bytes) -> bytes:
    """A message that carries its own length and hash, so a partial copy is detectable."""
    digest = hashlib.sha256(payload).hexdigest().encode()
    return b"X-Length: %d\nX-SHA256: %s\n\n%s" % (len(payload), digest, payload)


def is_complete(data: bytes) -> bool:
    head, _, payload = data.partition(b"\n\n")
    fields = dict(line.split(b": ", 1) for line in head.split(b"\n"))
    return (
        int(fields[b"X-Length"]) == len(payload)
        and hashlib.sha256(payload).hexdigest().encode() == fields[b"X-SHA256"]
    )


async def read(box: IMailbox, uid: int) -> bytes:
    content = await box.open_content(uid)
    try:
        return await content.read(0, content.size)
    finally:
        await content.close()


#: Delivers (and appends with a flag, so files land in new/ and in cur/) until killed,
#: printing each UID once its Deferred has fired.
CHILD = """
import os, random, sys
from twisted.internet import defer, task
from twisted_mail_stack.backends.maildir import MaildirMailStore
from twisted_mail_stack.sources import BytesSource
sys.path.insert(0, sys.argv[2])
from tests.backends.test_maildir_robustness import checked_message

async def main(reactor):
    store = MaildirMailStore(sys.argv[1], reactor=reactor)
    inbox = await (await store.open_account("alice@example.com")).open_mailbox("INBOX")
    for n in range(1_000_000):
        data = checked_message(os.urandom(random.randint(1, 300_000)).hex().encode())
        if n % 2:
            info = await inbox.append(BytesSource(data), ["\\\\Seen"])
        else:
            info = (await store.deliver(["alice@example.com"], BytesSource(data)))["alice@example.com"]
        print(info.uid, flush=True)

task.react(lambda reactor: defer.Deferred.fromCoroutine(main(reactor)))
"""


class CrashTests(MaildirCase):
    def _run_and_kill(self, wanted: int, linger: float) -> list[int]:
        """Run the child until it reported C{wanted} UIDs, let it go on for C{linger} seconds
        (mid-burst: writing, renaming or committing), then SIGKILL it."""
        checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, self.root, checkout],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert child.stdout is not None
        output = b""
        deadline = time.monotonic() + 15
        try:
            while output.count(b"\n") < wanted and time.monotonic() < deadline:
                if select.select([child.stdout], [], [], 0.2)[0]:
                    chunk = os.read(child.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    output += chunk
            time.sleep(linger)
        finally:
            child.send_signal(signal.SIGKILL)
            rest, err = child.communicate(timeout=10)
        reported = [int(line) for line in (output + rest).split(b"\n")[:-1]]
        self.assertGreaterEqual(len(reported), wanted, err.decode(errors="replace"))
        return reported

    async def test_killed_mid_burst(self) -> None:
        store = self.make_store()
        await store.create_account(ALICE)
        await store.close()
        reported: list[int] = []
        for linger in (0.005, 0.021, 0.031):
            uids = self._run_and_kill(10, linger)
            self.assertGreater(uids[0], max(reported, default=0), "UIDs after a crash are new")
            reported += uids

        store = self.make_store()
        inbox = await self.mailbox(store)
        infos = list(await inbox.list_messages())
        uids = [i.uid for i in infos]
        self.assertEqual(uids, sorted(set(uids)), "UIDs unique and ascending")
        self.assertLessEqual(set(reported), set(uids), "a reported delivery was lost")
        for info in infos:
            data = await read(inbox, info.uid)
            self.assertEqual(len(data), info.size)
            self.assertTrue(is_complete(data), f"UID {info.uid} is a partial message")
        visible = sum(len(os.listdir(os.path.join(self.account_dir(), d))) for d in ("new", "cur"))
        self.assertEqual(visible, len(infos), "every message file is indexed")
        db = sqlite3.connect(os.path.join(self.account_dir(), INDEX))
        try:
            named = [
                (uid, parse_name(path[4:]).uid_tag)
                for uid, path in db.execute("SELECT uid, path FROM messages ORDER BY uid")
            ]
        finally:
            db.close()
        # A file renamed into new/ whose commit the kill prevented keeps the UID of its name.
        self.assertEqual(named, [(uid, (inbox.uidvalidity, uid)) for uid in uids])
        new = await inbox.append(BytesSource(checked_message(b"after")))
        self.assertGreater(new.uid, max(reported + uids), "a UID was reused after the crash")


class DamagedIndexTests(MaildirCase):
    async def _damage_and_reopen(self, damage: Any) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        flags = [[Flag.SEEN], [], [Flag.FLAGGED, Flag.ANSWERED], [Flag.DELETED], []]
        for n, f in enumerate(flags):
            await inbox.append(BytesSource(b"message %d\n" % n), f, DATE)
        old = inbox.uidvalidity
        await inbox.close()
        await store.close()

        outside = files_under(self.base) - {
            p for p in files_under(self.base) if p.startswith("mail")
        }
        damage(os.path.join(self.account_dir(), INDEX))
        store = self.make_store()
        inbox = await self.mailbox(store)
        self.assertGreater(inbox.uidvalidity, old, "a rebuilt index needs a new UIDVALIDITY")
        infos = list(await inbox.list_messages())
        contents = sorted([(await read(inbox, i.uid), i.flags) for i in infos])
        self.assertEqual(
            contents, sorted((b"message %d\n" % n, set(f)) for n, f in enumerate(flags))
        )
        self.assertEqual([i.internal_date for i in infos], [DATE] * 5, "dates from the mtimes")
        self.assertEqual((await inbox.status()).uidvalidity, inbox.uidvalidity)
        after = files_under(self.base)
        self.assertEqual(after - {p for p in after if p.startswith("mail")}, outside)

    async def test_garbage(self) -> None:
        def garbage(path: str) -> None:
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.write(os.urandom(size))

        await self._damage_and_reopen(garbage)

    async def test_truncated(self) -> None:
        await self._damage_and_reopen(lambda path: os.truncate(path, os.path.getsize(path) // 2))

    async def test_empty(self) -> None:
        await self._damage_and_reopen(lambda path: os.truncate(path, 0))

    async def test_missing(self) -> None:
        await self._damage_and_reopen(os.unlink)

    async def test_open_handles_see_a_reset(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        info = await inbox.append(BytesSource(b"x\n"))
        changes: list[Change] = []
        await inbox.add_listener(changes.append)
        os.unlink(os.path.join(self.account_dir(), INDEX))
        await inbox.refresh()
        [reset] = changes
        self.assertIsInstance(reset, MailboxReset)
        assert isinstance(reset, MailboxReset)
        self.assertGreater(reset.uidvalidity, inbox.uidvalidity)
        # The old handle's UIDs mean nothing now.
        with self.assertRaises(StorageError):
            await inbox.set_flags([info.uid], [Flag.SEEN], StoreMode.ADD)
        fresh = await self.mailbox(store)
        self.assertEqual(fresh.uidvalidity, reset.uidvalidity)
        self.assertEqual(len(await fresh.list_messages()), 1)


class HostileNameTests(MaildirCase):
    """Nothing is ever written outside the root, nor outside the account for a folder name."""

    async def test_folder_names(self) -> None:
        store = self.make_store()
        account = await self.account(store)
        inbox = await self.mailbox(store)
        info = await inbox.append(BytesSource(b"x\n"))
        before = files_under(self.base)
        for name in BAD_NAMES:
            for call in (
                partial(account.create_mailbox, name),
                partial(account.open_mailbox, name),
                partial(account.delete_mailbox, name),
                partial(account.rename_mailbox, "Sent", name),
                partial(account.rename_mailbox, name, "Fresh"),
                partial(account.set_subscribed, name, True),
                partial(inbox.copy, [info.uid], name),
                partial(inbox.move, [info.uid], name),
            ):
                with self.assertRaises(InvalidMailboxName, msg=repr(name)):
                    await call()
        self.assertEqual(files_under(self.base), before)

        for name in GOOD_NAMES + ("a/../b", "..", "../x", "x/.."):
            try:
                await account.create_mailbox(name)
            except InvalidMailboxName:
                self.assertIn(name, ("a/../b", "..", "../x", "x/.."))
        account_dir = os.path.relpath(self.account_dir(), self.base) + os.sep
        new = files_under(self.base) - before
        self.assertEqual({p for p in new if not p.startswith(account_dir)}, set())
        tops = {p[len(account_dir) :].split(os.sep)[0] for p in new}
        self.assertTrue(all(t.startswith(".") and t not in (".", "..") for t in tops), tops)

    async def test_account_names(self) -> None:
        store = self.make_store()
        await self.account(store)
        before = files_under(self.base)
        for user in layout_tests.BAD_USERS:
            with self.assertRaises(ValueError, msg=repr(user)):
                await store.create_account(user)
            for call in (
                partial(store.open_account, user),
                partial(store.delete_account, user),
                partial(store.deliver, [ALICE, user], BytesSource(b"x\n")),
            ):
                with self.assertRaises(NoSuchAccount, msg=repr(user)):
                    await call()
        self.assertEqual(files_under(self.base), before, "nothing written for a bad name")
        self.assertEqual(await store.list_accounts(), [ALICE])


class TwoProcessTests(MaildirCase):
    """Two store instances on one tree, as two server processes would be."""

    async def test_concurrent_appends(self) -> None:
        one, two = self.make_store(), self.make_store()
        box_one, box_two = await self.mailbox(one), await self.mailbox(two)
        infos = await gatherResults(
            [(box_one if n % 2 else box_two).append(BytesSource(b"%d\n" % n)) for n in range(30)]
        )
        uids = [i.uid for i in infos]
        self.assertEqual(len(set(uids)), 30, "distinct UIDs")
        by_modseq = sorted(infos, key=lambda i: i.modseq)
        self.assertEqual([i.uid for i in by_modseq], sorted(uids), "UIDs ascend as they commit")
        self.assertEqual([i.uid for i in await box_one.list_messages()], sorted(uids))
        self.assertEqual(list(await box_one.list_messages()), list(await box_two.list_messages()))

    async def test_listener_sees_the_other_by_polling(self) -> None:
        one, two = self.make_store(), self.make_store()
        box_one, box_two = await self.mailbox(one), await self.mailbox(two)
        changes: list[Change] = []
        await box_one.add_listener(changes.append)
        infos = [await box_two.append(BytesSource(b"%d\n" % n)) for n in range(5)]
        await box_two.set_flags([infos[0].uid], [Flag.SEEN], StoreMode.ADD)
        first = infos[0].uid

        def latest_flags() -> frozenset[str] | None:
            mine = [c.info for c in changes if not isinstance(c, (MessageExpunged, MailboxReset))]
            return next((i.flags for i in reversed(mine) if i.uid == first), None)

        deadline = time.monotonic() + 10
        while latest_flags() != {Flag.SEEN} and time.monotonic() < deadline:
            await self._sleep(0.02)
        self.assertEqual(
            [c.info.uid for c in changes if isinstance(c, MessageAdded)], [i.uid for i in infos]
        )
        self.assertEqual(latest_flags(), {Flag.SEEN}, "the flag change was found too")

    async def test_lock_across_instances(self) -> None:
        one, two = self.make_store(), self.make_store()
        box_one, box_two = await self.mailbox(one), await self.mailbox(two)
        lock = await box_one.lock()
        with self.assertRaises(Exception) as caught:
            await box_two.lock()
        self.assertEqual(type(caught.exception).__name__, "MailboxInUse")
        await lock.release()
        await (await box_two.lock()).release()

    async def _sleep(self, seconds: float) -> None:
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        await deferLater(reactor, seconds, lambda: None)


class StoreTests(MaildirCase):
    async def test_failed_delivery_leaves_no_copy(self) -> None:
        store = self.make_store()
        alice, bob = await self.mailbox(store), await self.mailbox(store, user=BOB)
        bob_dir = self.account_dir(BOB)
        real_add = Folder.add

        def failing_add(folder: Folder, *args: Any) -> Any:
            if folder.path == bob_dir:
                raise OSError(28, "No space left on device")
            return real_add(folder, *args)

        self.patch(Folder, "add", failing_add)
        with self.assertRaises(StorageError):
            await store.deliver([ALICE, BOB], BytesSource(b"x\n"))
        self.assertEqual(list(await alice.list_messages()), [])
        self.assertEqual(list(await bob.list_messages()), [])
        for folder in (self.account_dir(), bob_dir):
            for sub in ("tmp", "new", "cur"):
                self.assertEqual(os.listdir(os.path.join(folder, sub)), [], f"{folder}/{sub}")

    async def test_delivery_hard_links_copies(self) -> None:
        store = self.make_store()
        await self.mailbox(store)
        await self.mailbox(store, user=BOB)
        await store.deliver([ALICE, BOB], BytesSource(b"x\n"))
        [a] = os.listdir(os.path.join(self.account_dir(), "new"))
        [b] = os.listdir(os.path.join(self.account_dir(BOB), "new"))
        self.assertTrue(
            os.path.samefile(
                os.path.join(self.account_dir(), "new", a),
                os.path.join(self.account_dir(BOB), "new", b),
            ),
            "one inode for both copies",
        )

    async def test_deleted_account_handle_fails_and_writes_nothing(self) -> None:
        store = self.make_store()
        account = await self.account(store)
        await store.delete_account(ALICE)
        with self.assertRaises(NoSuchAccount):
            await account.list_mailboxes()
        with self.assertRaises(NoSuchAccount):
            await account.create_mailbox("Resurrected")
        self.assertEqual(files_under(self.root), {".mailstack-tmp"})

    def test_a_fresh_link_of_an_old_message_is_not_stale(self) -> None:
        # COPY/MOVE hard-link an old message into tmp/ (its mtime is its internal date): the
        # name says when it came, and that keeps it; an old name and mtime both do not.
        from twisted_mail_stack.backends.maildir.files import clean_tmp
        from twisted_mail_stack.backends.maildir.layout import unique_name

        folder = self.mktemp()
        tmp = os.path.join(folder, "tmp")
        os.makedirs(tmp)
        old = time.time() - 40 * 3600
        fresh, stale = unique_name(), f"{int(old)}.M1P1Q1.host"
        for name in (fresh, stale):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(b"message")
            os.utime(os.path.join(tmp, name), (old, old))
        clean_tmp(folder)
        self.assertEqual(os.listdir(tmp), [fresh])

    async def test_stale_tmp_files_removed_on_open(self) -> None:
        store = self.make_store()
        await self.account(store)
        tmp = os.path.join(self.account_dir(), "tmp")
        for name, age in (("old", 37 * 3600), ("young", 3600)):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(b"partial")
            os.utime(os.path.join(tmp, name), (time.time() - age,) * 2)
        await (await self.mailbox(store)).list_messages()
        self.assertEqual(os.listdir(tmp), ["young"])
