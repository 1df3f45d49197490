"""
The Maildir backend shares its tree with other programs: Python's mailbox module, mbsync
(isync), and any MDA or MUA that drops, renames or deletes message files.
"""

from __future__ import annotations

import builtins
import io
import mailbox
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from twisted.internet.threads import deferToThread

from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import (
    Change,
    Flag,
    FlagsChanged,
    MessageAdded,
    MessageExpunged,
    StoreMode,
)

from .test_maildir import MaildirCase, drop

DATE = datetime(2022, 5, 6, 7, 8, 9, tzinfo=UTC)


def message(n: int) -> bytes:
    return b"From: a@example.com\nSubject: %d\n\nbody %d\n" % (n, n)


def without_tuid(data: bytes) -> bytes:
    """mbsync adds an "X-TUID:" header to each message it copies, to track it."""
    return b"".join(line for line in data.splitlines(True) if not line.startswith(b"X-TUID: "))


def read_all(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class PythonMailboxTests(MaildirCase):
    """Python's mailbox.Maildir reads what the store writes, and the store sees what it writes."""

    async def test_reads_messages_flags_and_folders(self) -> None:
        store = self.make_store()
        account = await self.account(store)
        await account.create_mailbox("Work/Projects")
        await account.create_mailbox("dot.ted")
        inbox = await self.mailbox(store)
        flags = [
            [],
            [Flag.SEEN],
            [Flag.FLAGGED, Flag.ANSWERED, "$Label"],
            [Flag.DRAFT, Flag.DELETED],
        ]
        for n, f in enumerate(flags):
            await inbox.append(BytesSource(message(n)), f, DATE)
        work = await self.mailbox(store, "Work/Projects")
        await work.append(BytesSource(message(9)))

        md = mailbox.Maildir(self.account_dir(), factory=None, create=False)
        got = {}
        for key in md.keys():
            msg = md[key]
            got[msg["Subject"]] = (msg.get_flags(), md.get_file(key).read())
        self.assertEqual(
            got,
            {
                "0": ("", message(0)),
                "1": ("S", message(1)),
                "2": ("FR", message(2)),
                "3": ("DT", message(3)),
            },
        )
        self.assertEqual(
            set(md.list_folders()),
            {"Sent", "Drafts", "Trash", "Junk", "Archive", "Work.Projects", "dot&AC4-ted"},
        )
        [key] = md.get_folder("Work.Projects").keys()
        self.assertEqual(md.get_folder("Work.Projects").get_file(key).read(), message(9))

    async def test_messages_added_by_mailbox_module(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        first = await inbox.append(BytesSource(message(0)))
        changes: list[Change] = []
        await inbox.add_listener(changes.append)

        md = mailbox.Maildir(self.account_dir(), factory=None, create=False)
        msg = mailbox.MaildirMessage(message(1))
        msg.set_flags("FS")
        md.add(msg)
        md.add(mailbox.MaildirMessage(message(2)))

        infos = list(await inbox.list_messages())
        self.assertEqual([i.uid for i in infos][0], first.uid)
        new = infos[1:]
        self.assertEqual(len(new), 2)
        self.assertTrue(all(i.uid > first.uid for i in new), "fresh UIDs above the old ones")
        self.assertEqual(sorted(i.flags for i in new), sorted([{Flag.FLAGGED, Flag.SEEN}, set()]))
        self.assertEqual(
            [c.info for c in changes if isinstance(c, MessageAdded)], new, "listener told"
        )
        for info in new:
            self.assertIn(await self._content(inbox, info.uid), (message(1), message(2)))

    async def test_flag_changes_by_mailbox_module(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        info = await inbox.append(BytesSource(message(0)), ["$Keep"])
        changes: list[Change] = []
        await inbox.add_listener(changes.append)

        md = mailbox.Maildir(self.account_dir(), factory=None, create=False)
        [key] = md.keys()
        msg = md[key]
        msg.set_flags("RS")
        md[key] = msg  # renames the file with new info letters

        await inbox.refresh()
        [change] = changes
        self.assertIsInstance(change, FlagsChanged)
        assert isinstance(change, FlagsChanged)
        self.assertEqual(change.info.uid, info.uid, "same message, same UID")
        self.assertEqual(change.info.flags, {Flag.ANSWERED, Flag.SEEN, "$Keep"}, "keywords kept")
        self.assertGreater(change.info.modseq, info.modseq)
        self.assertEqual(await self._content(inbox, info.uid), message(0))

    async def _content(self, box: Any, uid: int) -> bytes:
        content = await box.open_content(uid)
        try:
            return await content.read(0, content.size)
        finally:
            await content.close()


class ForeignFileTests(MaildirCase):
    """Files dropped, renamed or deleted behind the store's back."""

    async def test_drops_into_new_and_cur_get_fresh_uids(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        old = await inbox.append(BytesSource(message(0)))
        folder = self.account_dir()
        drop(folder, message(1), "1600000000.foreign1.host")
        drop(folder, message(2), "1600000001.foreign2.host:2,FS", sub="cur")
        infos = list(await inbox.list_messages())
        self.assertEqual([i.uid for i in infos][0], old.uid)
        one, two = infos[1:]
        self.assertGreater(one.uid, old.uid)
        self.assertGreater(two.uid, one.uid)
        self.assertEqual((one.flags, two.flags), (set(), {Flag.FLAGGED, Flag.SEEN}))
        self.assertEqual((one.size, two.size), (len(message(1)), len(message(2))))

    async def test_delete_by_another_program_is_an_expunge(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        infos = [await inbox.append(BytesSource(message(n)), [Flag.SEEN]) for n in range(3)]
        changes: list[Change] = []
        await inbox.add_listener(changes.append)
        [victim] = [
            os.path.join(self.account_dir(), "cur", n)
            for n in os.listdir(os.path.join(self.account_dir(), "cur"))
            if read_all(os.path.join(self.account_dir(), "cur", n)) == message(1)
        ]
        os.unlink(victim)
        await inbox.refresh()
        self.assertEqual([type(c) for c in changes], [MessageExpunged])
        self.assertEqual(changes[0].uid, infos[1].uid)  # type: ignore[union-attr]
        self.assertEqual(await self._uids(inbox), [infos[0].uid, infos[2].uid])

    async def test_move_to_cur_without_flags_is_silent(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        info = await inbox.append(BytesSource(message(0)))
        changes: list[Change] = []
        await inbox.add_listener(changes.append)
        [name] = os.listdir(os.path.join(self.account_dir(), "new"))
        os.rename(
            os.path.join(self.account_dir(), "new", name),
            os.path.join(self.account_dir(), "cur", name + ":2,"),
        )
        self.assertEqual(list(await inbox.list_messages()), [info])
        self.assertEqual(changes, [])
        # ...and the store still finds it to change its flags.
        result = await inbox.set_flags([info.uid], [Flag.SEEN], StoreMode.ADD)
        self.assertEqual([i.uid for i in result.updated], [info.uid])
        self.assertEqual(os.listdir(os.path.join(self.account_dir(), "cur")), [name + ":2,S"])

    async def test_flag_change_races_a_rename_by_another_program(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        info = await inbox.append(BytesSource(message(0)), [Flag.SEEN])
        cur = os.path.join(self.account_dir(), "cur")
        [name] = os.listdir(cur)
        # Another program adds "Flagged" after the store last looked; the store's rename of the
        # old name fails and must find the file again by its key.
        os.rename(os.path.join(cur, name), os.path.join(cur, name.replace(":2,S", ":2,FS")))
        result = await inbox.set_flags([info.uid], [Flag.ANSWERED], StoreMode.ADD)
        self.assertEqual(result.updated[0].flags, {Flag.SEEN, Flag.ANSWERED})
        self.assertEqual(len(os.listdir(cur)), 1, "still one file")
        self.assertTrue(os.listdir(cur)[0].endswith(":2,RS"), os.listdir(cur))

    async def _uids(self, box: Any) -> list[int]:
        return [i.uid for i in await box.list_messages()]


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    """Record every path opened through Python (in any thread) while the block runs."""
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fspath(file) if not isinstance(file, int) else "")
        return real_open(file, *args, **kwargs)

    def spy_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    builtins.open = io.open = spy_open  # type: ignore[assignment]
    os.open = spy_os_open  # type: ignore[assignment]
    try:
        yield opened
    finally:
        builtins.open = io.open = real_open  # type: ignore[assignment]
        os.open = real_os_open


class NoMessageFileOpenedTests(MaildirCase):
    """Listing reads the index (and directories), never a message file (IMailbox.list_messages)."""

    async def test_listing_opens_no_message_file(self) -> None:
        store = self.make_store()
        inbox = await self.mailbox(store)
        for n in range(20):
            await inbox.append(BytesSource(message(n)), [Flag.SEEN] if n % 2 else [])
        drop(self.account_dir(), message(99), "1600000000.foreign.host")
        expected = list(await inbox.list_messages())
        await inbox.close()
        await store.close()

        for case in ("warm", "cold"):
            if case == "cold":
                os.unlink(os.path.join(self.account_dir(), "mailstack-index.sqlite"))
            fresh = self.make_store()
            with recording_opens() as opened:
                box = await self.mailbox(fresh)
                infos = list(await box.list_messages())
                await box.status()
            messages = [
                p for p in opened if os.sep + "cur" + os.sep in p or os.sep + "new" + os.sep in p
            ]
            self.assertEqual(messages, [], f"{case} listing opened message files")
            self.assertEqual(len(infos), 21, case)
            if case == "warm":
                self.assertEqual(infos, expected)
            await box.close()
            await fresh.close()


class MbsyncTests(MaildirCase):
    """The real mbsync (isync) syncs with the store's tree: Maildir++ both ways."""

    def setUp(self) -> None:
        super().setUp()
        if shutil.which("mbsync") is None:
            self.skipTest("mbsync (isync) is not installed")
        self.local = os.path.join(self.base, "local")
        os.makedirs(self.local)
        self.config = os.path.join(self.base, "mbsyncrc")
        with open(self.config, "w") as f:
            # mbsync rejects "Path" with "SubFolders Maildir++": the Inbox is the tree's root.
            f.write(
                f"MaildirStore ours\n"
                f"Inbox {self.account_dir()}/\n"
                f"SubFolders Maildir++\n\n"
                f"MaildirStore local\n"
                f"Path {self.local}/\n"
                f"Inbox {self.local}/INBOX\n"
                f"SubFolders Verbatim\n\n"
                f"Channel sync\n"
                f"Far :ours:\n"
                f"Near :local:\n"
                f"Patterns *\n"
                f"Create Both\n"
                f"SyncState *\n"
            )

    def mbsync(self, direction: str) -> Any:
        return deferToThread(
            subprocess.run,
            ["mbsync", "-c", self.config, "-q", direction, "sync"],
            check=True,
            capture_output=True,
            timeout=20,
        )

    async def test_pull_then_push(self) -> None:
        store = self.make_store()
        account = await self.account(store)
        await account.create_mailbox("Work/Projects")
        inbox = await self.mailbox(store)
        infos = [
            await inbox.append(BytesSource(message(1)), [Flag.SEEN]),
            await inbox.append(BytesSource(message(2))),
            await inbox.append(BytesSource(message(3)), [Flag.FLAGGED]),
        ]
        work = await self.mailbox(store, "Work/Projects")
        await work.append(BytesSource(message(4)))

        await self.mbsync("--pull")
        local = mailbox.Maildir(os.path.join(self.local, "INBOX"), factory=None, create=False)
        pulled = {
            without_tuid(local.get_file(k).read()): local[k].get_flags() for k in local.keys()
        }
        self.assertEqual(pulled, {message(1): "S", message(2): "", message(3): "F"})
        projects = mailbox.Maildir(
            os.path.join(self.local, "Work", "Projects"), factory=None, create=False
        )
        self.assertEqual(
            [without_tuid(projects.get_file(k).read()) for k in projects.keys()], [message(4)]
        )
        # mbsync renamed our files (",U=<n>"); to the store they are the same messages.
        self.assertEqual(list(await inbox.list_messages()), infos)

        local.add(mailbox.MaildirMessage(message(5)))
        await self.mbsync("--push")
        now = list(await inbox.list_messages())
        self.assertEqual(now[:3], infos)
        [pushed] = now[3:]
        self.assertGreater(pushed.uid, infos[-1].uid, "a fresh UID")
        content = await inbox.open_content(pushed.uid)
        self.addCleanup(content.close)
        self.assertEqual(without_tuid(await content.read(0, content.size)), message(5))
