"""
Deliveries carry their UID in the file name (",I=<uidvalidity>.<uid>"), and their index row is
committed without waiting for the disk: a row lost in a crash (power loss) comes back from the
name with the same UID, and no UID is ever given twice.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta

from twisted_mail_stack.backends.maildir import index
from twisted_mail_stack.backends.maildir.folder import Folder, View
from twisted_mail_stack.backends.maildir.layout import key_of, parse_name, tagged
from twisted_mail_stack.sources import BytesSource

from .test_maildir import ALICE, MaildirCase, drop

INDEX = "mailstack-index.sqlite"


class NameTests(MaildirCase):
    def test_tag_parsed(self) -> None:
        name = tagged("1700000000.M1P2Q3.host,S=10", 1234, 56)
        self.assertEqual(name, "1700000000.M1P2Q3.host,S=10,I=1234.56")
        self.assertEqual(parse_name(name + ":2,S").uid_tag, (1234, 56))
        self.assertEqual(parse_name(name).size, 10)
        self.assertEqual(key_of(name + ":2,S"), name)

    def test_no_or_foreign_tag(self) -> None:
        for name in ("1.M1.host,S=3", "1.M1.host,I=x.5", "1.M1.host,I=1.5x", "1.M1.host,IX=1.2"):
            self.assertIsNone(parse_name(name).uid_tag, name)


class LostRowTests(MaildirCase):
    def _index(self) -> str:
        return os.path.join(self.account_dir(), INDEX)

    async def _deliver(self, store: object, n: int) -> int:
        # Later messages with earlier dates: files indexed afresh would come in date order.
        date = datetime(2024, 1, 1, tzinfo=UTC) - timedelta(days=n)
        result = await store.deliver(  # type: ignore[attr-defined]
            [ALICE], BytesSource(b"Subject: %d\r\n\r\nbody %d\r\n" % (n, n)), date
        )
        return int(result[ALICE].uid)

    async def _lose_rows_of_later_deliveries(self, before: int, after: int) -> list[int]:
        """Deliver C{before} messages, keep the index as it is then; deliver C{after} more;
        put the old index back (the commits of the later rows lost, their files durable)."""
        store = self.make_store()
        await store.create_account(ALICE)
        first = [await self._deliver(store, n) for n in range(before)]
        await store.close()  # the last connection checkpoints the WAL into the file
        shutil.copy(self._index(), self._index() + ".saved")
        store = self.make_store()
        later = [await self._deliver(store, n) for n in range(before, before + after)]
        await store.close()
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self._index() + suffix):
                os.unlink(self._index() + suffix)
        os.replace(self._index() + ".saved", self._index())
        return first + later

    async def test_lost_rows_come_back_with_their_uids(self) -> None:
        uids = await self._lose_rows_of_later_deliveries(2, 3)
        self.assertEqual(uids, [1, 2, 3, 4, 5])
        store = self.make_store()
        inbox = await self.mailbox(store)
        infos = list(await inbox.list_messages())
        self.assertEqual([i.uid for i in infos], uids)
        for info in infos:
            content = await inbox.open_content(info.uid)
            data = await content.read(0, content.size)
            await content.close()
            self.assertIn(b"body %d" % (info.uid - 1), data)
        self.assertEqual((await inbox.status()).uidnext, 6)
        self.assertEqual(await self._deliver(store, 9), 6)

    async def test_delivery_first_after_the_crash_takes_no_lost_uid(self) -> None:
        # No read before the next delivery: the delivery itself must look first.
        await self._lose_rows_of_later_deliveries(1, 2)
        store = self.make_store()
        self.assertEqual(await self._deliver(store, 7), 4)
        inbox = await self.mailbox(store)
        infos = list(await inbox.list_messages())
        self.assertEqual([i.uid for i in infos], [1, 2, 3, 4])
        self.assertEqual(len(os.listdir(os.path.join(self.account_dir(), "new"))), 4)

    async def test_only_unused_uids_of_this_uidvalidity_are_kept(self) -> None:
        store = self.make_store()
        await store.create_account(ALICE)
        self.assertEqual(await self._deliver(store, 0), 1)
        inbox = await self.mailbox(store)
        uidvalidity = inbox.uidvalidity
        folder = self.account_dir()
        # Named with a UID already given (1), with another folder's UIDVALIDITY, twice the
        # same unused UID, and a proper one far ahead.
        drop(folder, b"taken\r\n", tagged("100.M1P1Q1.x,S=7", uidvalidity, 1))
        drop(folder, b"other\r\n", tagged("100.M1P1Q2.x,S=7", uidvalidity + 1, 50))
        drop(folder, b"twice\r\n", tagged("100.M1P1Q3.x,S=7", uidvalidity, 20))
        drop(folder, b"twice\r\n", tagged("100.M1P1Q4.x,S=7", uidvalidity, 20))
        drop(folder, b"ahead\r\n", tagged("100.M1P1Q5.x,S=7", uidvalidity, 10))
        infos = list(await inbox.list_messages())
        uids = [i.uid for i in infos]
        self.assertEqual(uids[:4], [1, 10, 20, 21], uids)
        self.assertEqual(len(uids), 6)
        self.assertEqual(uids, sorted(set(uids)))
        self.assertEqual(await self._deliver(store, 1), uids[-1] + 1)

    async def _folder_with_prepared_file(self) -> tuple[Folder, str]:
        """ALICE's INBOX opened directly, and a 7-byte message file prepared in its tmp/."""
        store = self.make_store()
        await store.create_account(ALICE)
        await store.close()
        folder = Folder(self.account_dir(), "INBOX")
        self.addCleanup(folder.close)
        tmp = os.path.join(self.account_dir(), "tmp", "prepared")
        with open(tmp, "wb") as f:
            f.write(b"hello\r\n")
        return folder, tmp

    async def test_add_names_the_file_and_restores_full_sync(self) -> None:
        folder, tmp = await self._folder_with_prepared_file()
        outcome = folder.add(View(), [(tmp, 7, frozenset(), 0)])
        self.assertEqual([i.uid for i in outcome.result], [1])
        (name,) = os.listdir(os.path.join(self.account_dir(), "new"))
        self.assertEqual(parse_name(name).uid_tag, (outcome.view.uidvalidity, 1))
        conn = folder.index._conn
        assert conn is not None
        # The delivery's own commit skips the WAL fsync; every other write keeps it.
        self.assertEqual(conn.execute("PRAGMA synchronous").fetchone()[0], 2)  # FULL

    async def test_remove_makes_the_delivery_durable_before_the_file_goes(self) -> None:
        folder, tmp = await self._folder_with_prepared_file()
        added = folder.add(View(), [(tmp, 7, frozenset(), 0)])
        events: list[str] = []
        fsync_file, unlink = index.fsync_file, os.unlink

        def record_fsync(path: str) -> int:
            events.append("fsync " + os.path.basename(path))
            return fsync_file(path)

        def record_unlink(path: str, *args: object, **kwargs: object) -> None:
            events.append("unlink " + os.path.dirname(path).rsplit("/", 1)[-1])
            unlink(path, *args, **kwargs)  # type: ignore[arg-type]

        self.patch(index, "fsync_file", record_fsync)
        self.patch(os, "unlink", record_unlink)
        folder.remove(added.view, added.view.uidvalidity, [1], False)
        self.assertEqual(events[:2], [f"fsync {INDEX}-wal", "unlink new"])
