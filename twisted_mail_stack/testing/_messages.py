"""Conformance: storing, listing and reading messages; UIDs and status counters."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from zope.interface import implementer

from ..errors import NoSuchMessage, StorageError
from ..interfaces import IMessageSource
from ..sources import FileSource
from ..values import Flag, StoreMode
from ._base import DATE, StoreTestBase, message, source


@implementer(IMessageSource)
class LyingSource:
    """A source whose C{size} does not match its bytes (a truncated spool file)."""

    path = None

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


#: Every byte value, bare CR and LF, a NUL, and a line without an end.
BINARY = message(1, bytes(range(256)) * 4 + b"\r\r\n\n\x00\x00 no final newline")


class AppendTests(StoreTestBase):
    async def test_append_returns_info(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\Seen"])
        self.assertGreater(info.uid, 0, "UIDs are positive")
        self.assertGreater(info.modseq, 0, "modseqs are positive")
        self.assertEqual(info.flags, {Flag.SEEN}, "append: flags of the returned info")
        self.assertEqual(
            await self.info(inbox, info.uid), info, "get_messages differs from append's info"
        )

    async def test_append_uids_ascend(self) -> None:
        infos = await self.append_many(await self.mailbox(), 5)
        uids = [i.uid for i in infos]
        self.assertEqual(
            uids, sorted(set(uids)), f"UIDs must strictly ascend in order of arrival: {uids}"
        )

    async def test_append_modseqs_ascend(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        modseqs = [i.modseq for i in infos]
        self.assertEqual(
            modseqs, sorted(set(modseqs)), f"each arrival needs a greater modseq: {modseqs}"
        )
        status = await inbox.status()
        self.assertEqual(
            status.highestmodseq, modseqs[-1], "HIGHESTMODSEQ is the largest modseq given"
        )

    async def test_append_keeps_internal_date(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, internal_date=DATE)
        self.assertEqual(info.internal_date, DATE, "append: internal date of the returned info")
        self.assertEqual(
            (await self.info(inbox, info.uid)).internal_date, DATE, "internal date as stored"
        )

    async def test_append_default_date_is_now(self) -> None:
        inbox = await self.mailbox()
        before = datetime.now(UTC)
        info = await self.append(inbox, internal_date=None)
        after = datetime.now(UTC)
        slack = timedelta(seconds=2)
        self.assertTrue(
            before - slack <= info.internal_date <= after + slack,
            f"append: default internal date {info.internal_date} is not now",
        )

    async def test_append_invalid_flag_fails_and_stores_nothing(self) -> None:
        inbox = await self.mailbox()
        before = await inbox.status()
        for bad in ("\\Recent", "\\Bogus", "two words", ""):
            await self.fails(inbox.append(source(), [bad]), ValueError, f"append with flag {bad!r}")
        self.assertEqual(await self.uids(inbox), [], "a refused append left a message")
        after = await inbox.status()
        self.assertEqual(after.messages, before.messages, "a refused append changed the counters")

    async def test_append_naive_date_fails(self) -> None:
        inbox = await self.mailbox()
        d = inbox.append(source(), (), datetime(2020, 1, 2, 3, 4, 5))
        await self.fails(d, ValueError, "append with a naive internal date")
        self.assertEqual(await self.uids(inbox), [], "a refused append left a message")

    async def test_append_short_source_fails(self) -> None:
        inbox = await self.mailbox()
        before = await inbox.status()
        for lie in (-1, +1):
            d = inbox.append(LyingSource(message(), len(message()) + lie))
            await self.fails(d, StorageError, f"append of a source whose size is off by {lie}")
        self.assertEqual(await self.uids(inbox), [], "a failed append left a message")
        self.assertEqual(
            (await inbox.status()).messages, before.messages, "a failed append changed the counters"
        )

    async def test_append_canonical_flags(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, 1, ["\\SEEN", "\\flagged", "$Work"])
        self.assertEqual(info.flags, {Flag.SEEN, Flag.FLAGGED, "$Work"}, "flags of append")

    async def test_append_from_file_source(self) -> None:
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(BINARY)
        inbox = await self.mailbox()
        info = await inbox.append(FileSource(path), ["\\Seen"])
        self.assertEqual(await self.content(inbox, info.uid), BINARY, "append from a FileSource")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), BINARY, "append must not modify its source file")

    async def test_append_to_other_folders(self) -> None:
        sent = await self.mailbox("Sent")
        info = await self.append(sent, 7)
        self.assertEqual(await self.content(sent, info.uid), message(7), "append to Sent")
        self.assertEqual(await self.uids(await self.mailbox()), [], "append to Sent reached INBOX")


class ContentTests(StoreTestBase):
    async def test_size_is_exact(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, BINARY)
        content = await inbox.open_content(info.uid)
        self.addCleanup(content.close)
        self.assertEqual(content.size, len(BINARY), "IMessageContent.size")
        self.assertEqual((await self.info(inbox, info.uid)).size, len(BINARY), "MessageInfo.size")

    async def test_binary_message_round_trips(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, BINARY)
        self.assertEqual(
            await self.content(inbox, info.uid), BINARY, "bytes read differ from bytes stored"
        )

    async def test_read_ranges(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, BINARY)
        content = await inbox.open_content(info.uid)
        self.addCleanup(content.close)
        for offset, length in [(0, 1), (0, 10), (5, 100), (300, 7), (len(BINARY) - 3, 3), (10, 0)]:
            got = await content.read(offset, length)
            self.assertEqual(got, BINARY[offset : offset + length], f"read({offset}, {length})")

    async def test_read_at_end_is_short(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, BINARY)
        content = await inbox.open_content(info.uid)
        self.addCleanup(content.close)
        size = len(BINARY)
        self.assertEqual(await content.read(size - 2, 100), BINARY[-2:], "read across the end")
        self.assertEqual(await content.read(size, 10), b"", "read at the end")
        self.assertEqual(await content.read(size + 50, 10), b"", "read past the end")

    async def test_large_message(self) -> None:
        data = message(1, bytes(range(256)) * 1200)  # about 300 KB
        inbox = await self.mailbox()
        info = await self.append(inbox, data)
        content = await inbox.open_content(info.uid)
        self.addCleanup(content.close)
        chunks = [await content.read(offset, 65536) for offset in range(0, content.size, 65536)]
        self.assertEqual(b"".join(chunks), data, "a large message read in 64 KB chunks")

    async def test_close_content_twice(self) -> None:
        inbox = await self.mailbox()
        content = await inbox.open_content((await self.append(inbox)).uid)
        await content.close()
        await content.close()

    async def test_open_missing_message_fails(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await self.fails(
            inbox.open_content(info.uid + 1000), NoSuchMessage, "open_content of an unknown UID"
        )
        await inbox.remove([info.uid])
        await self.fails(
            inbox.open_content(info.uid), NoSuchMessage, "open_content of a removed UID"
        )

    async def test_content_readable_after_expunge(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, BINARY, ["\\Deleted"])
        content = await inbox.open_content(info.uid)
        self.addCleanup(content.close)
        await inbox.expunge()
        self.assertEqual(
            await content.read(0, len(BINARY)), BINARY, "content opened before an expunge"
        )

    async def test_content_readable_after_remove_by_other_handle(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox, BINARY)
        content = await inbox.open_content(info.uid)
        self.addCleanup(content.close)
        await (await self.mailbox()).remove([info.uid])
        self.assertEqual(
            await content.read(0, len(BINARY)), BINARY, "content opened before a remove"
        )


class UidTests(StoreTestBase):
    async def test_uid_not_reused_after_expunge_of_highest(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        await self.flag(inbox, [infos[-1].uid], Flag.DELETED)
        await inbox.expunge()
        new = await self.append(inbox, 4)
        self.assertGreater(
            new.uid, infos[-1].uid, "a UID was reused after expunging the highest UID"
        )

    async def test_uid_not_reused_after_removing_all(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 2)
        await inbox.remove([i.uid for i in infos])
        new = await self.append(inbox, 3)
        self.assertGreater(new.uid, infos[-1].uid, "a UID was reused after emptying the folder")

    async def test_uidnext_exceeds_every_uid(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        self.assertGreater((await inbox.status()).uidnext, infos[-1].uid, "UIDNEXT after appends")
        await inbox.remove([infos[-1].uid])
        self.assertGreater(
            (await inbox.status()).uidnext, infos[-1].uid, "UIDNEXT after removing the highest UID"
        )

    async def test_uidvalidity_shared_by_handles(self) -> None:
        one, two = await self.mailbox(), await self.mailbox()
        self.assertEqual(
            one.uidvalidity, two.uidvalidity, "two handles of a folder disagree on UIDVALIDITY"
        )


class StatusTests(StoreTestBase):
    async def test_status_of_empty_folder(self) -> None:
        inbox = await self.mailbox()
        status = await inbox.status()
        self.assertEqual((status.messages, status.unseen), (0, 0), "status of an empty folder")
        self.assertGreater(status.uidnext, 0, "UIDNEXT is positive")
        self.assertEqual(status.uidvalidity, inbox.uidvalidity, "status().uidvalidity")

    async def test_status_counts(self) -> None:
        inbox = await self.mailbox()
        await self.append(inbox, 1, ["\\Seen"])
        await self.append(inbox, 2)
        last = await self.append(inbox, 3, ["\\Flagged"])
        status = await inbox.status()
        self.assertEqual(status.messages, 3, "status().messages")
        self.assertEqual(status.unseen, 2, "status().unseen counts messages without \\Seen")
        self.assertGreater(status.uidnext, last.uid, "status().uidnext")
        self.assertEqual(status.highestmodseq, last.modseq, "status().highestmodseq")

    async def test_status_follows_changes(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        await inbox.set_flags([infos[0].uid], ["\\Seen"], StoreMode.ADD)
        await inbox.remove([infos[1].uid])
        status = await inbox.status()
        self.assertEqual(
            (status.messages, status.unseen), (2, 1), "status after a flag change and a remove"
        )


class ListingTests(StoreTestBase):
    async def test_list_messages_ascending(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 4)
        self.assertEqual(
            list(await inbox.list_messages()), infos, "list_messages: every message, by UID"
        )

    async def test_list_messages_is_a_snapshot(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        snapshot = await inbox.list_messages()
        before = list(snapshot)
        await inbox.set_flags([infos[0].uid], ["\\Seen"], StoreMode.ADD)
        await inbox.remove([infos[1].uid])
        await self.append(inbox, 9)
        self.assertEqual(
            list(snapshot), before, "a list_messages result changed after later operations"
        )

    async def test_get_messages_skips_missing(self) -> None:
        inbox = await self.mailbox()
        infos = await self.append_many(inbox, 3)
        await inbox.remove([infos[1].uid])
        asked = [infos[2].uid, 9999, infos[1].uid, infos[0].uid]
        got = await inbox.get_messages(asked)
        self.assertEqual(
            list(got), [infos[0], infos[2]], "get_messages: held UIDs, ascending, others skipped"
        )

    async def test_get_messages_current_state(self) -> None:
        inbox = await self.mailbox()
        info = await self.append(inbox)
        await inbox.set_flags([info.uid], ["\\Answered"], StoreMode.ADD)
        got = await self.info(inbox, info.uid)
        self.assertEqual(got.flags, {Flag.ANSWERED}, "get_messages must return current flags")
        self.assertGreater(got.modseq, info.modseq, "get_messages must return the current modseq")
