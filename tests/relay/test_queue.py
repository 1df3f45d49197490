"""The durable delivery queue: entries on disk, grouped directory fsyncs, all-or-nothing."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from twisted_mail_stack.interfaces import IDeliveryQueue
from twisted_mail_stack.relay.queue import DeliveryQueue, DirSyncer
from twisted_mail_stack.sources import BytesSource, FileSource
from twisted_mail_stack.values import Envelope, EnvelopeRecipient

ENVELOPE = Envelope(
    sender="a@example.org",
    recipients=(
        EnvelopeRecipient("b@remote.example", frozenset({"FAILURE", "DELAY"}), "rfc822;b@x"),
        EnvelopeRecipient("c@remote.example"),
    ),
    body="8BITMIME",
    smtputf8=True,
    ret="HDRS",
    envid="abc",
)


class QueueTests(unittest.TestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.queue = DeliveryQueue(str(self.path), reactor)

    def test_provides_interface(self) -> None:
        self.assertTrue(IDeliveryQueue.providedBy(self.queue))

    async def test_enqueue_copy_and_load(self) -> None:
        await self.queue.enqueue("ID1", ENVELOPE, BytesSource(b"message\r\n"))
        self.assertEqual(list(await self.queue.list_ids()), ["ID1"])
        envelope, source = await self.queue.load("ID1")
        self.assertEqual(envelope, ENVELOPE)
        with source.open() as f:
            self.assertEqual(f.read(), b"message\r\n")
        self.assertEqual(os.listdir(self.path / "tmp"), [])

    async def test_enqueue_links_a_file_source(self) -> None:
        spool = self.path / "spool"
        spool.write_bytes(b"linked\r\n")
        await self.queue.enqueue("ID2", ENVELOPE, FileSource(spool))
        spool.unlink()
        _, source = await self.queue.load("ID2")
        with source.open() as f:
            self.assertEqual(f.read(), b"linked\r\n")

    async def test_remove_and_missing(self) -> None:
        await self.queue.enqueue("ID3", ENVELOPE, BytesSource(b"x"))
        await self.queue.remove("ID3")
        await self.queue.remove("ID3")
        self.assertEqual(list(await self.queue.list_ids()), [])
        await self.assertFailure(self.queue.load("ID3"), KeyError)

    async def test_failed_enqueue_leaves_nothing(self) -> None:
        with self.assertRaises(FileNotFoundError):
            await self.queue.enqueue("ID5", ENVELOPE, FileSource(self.path / "missing", 1))
        self.assertEqual(sorted(os.listdir(self.path)), ["tmp"])

    async def test_existing_id_is_refused_and_kept(self) -> None:
        await self.queue.enqueue("ID4", ENVELOPE, BytesSource(b"first"))
        with self.assertRaises(FileExistsError):
            await self.queue.enqueue("ID4", ENVELOPE, BytesSource(b"second"))
        _, source = await self.queue.load("ID4")
        with source.open() as f:
            self.assertEqual(f.read(), b"first")

    def test_bad_ids(self) -> None:
        for bad in ("", "../x", "a/b", "x.json"):
            with self.assertRaises(ValueError):
                self.queue.remove(bad)

    async def test_many_concurrent_enqueues(self) -> None:
        await defer.gatherResults(
            [self.queue.enqueue(f"C{i}", ENVELOPE, BytesSource(b"%d" % i)) for i in range(50)]
        )
        self.assertEqual(len(await self.queue.list_ids()), 50)


class DirSyncerTests(unittest.TestCase):
    def test_calls_during_a_sync_share_the_next(self) -> None:
        runs: list[Deferred[None]] = []

        def run(f: object) -> Deferred[None]:
            d: Deferred[None] = Deferred()
            runs.append(d)
            return d

        syncer = DirSyncer("/nonexistent", run)
        first = syncer.sync()
        waiting = [syncer.sync() for _ in range(5)]
        self.assertEqual(len(runs), 1)
        runs[0].callback(None)
        self.assertIsNone(self.successResultOf(first))
        self.assertEqual(len(runs), 2)  # one more fsync serves all five
        self.assertNoResult(waiting[0])
        runs[1].callback(None)
        for d in waiting:
            self.assertIsNone(self.successResultOf(d))

    def test_failure_reaches_every_waiter(self) -> None:
        runs: list[Deferred[None]] = []
        syncer = DirSyncer("/x", lambda f: runs.append(Deferred()) or runs[-1])  # type: ignore[func-returns-value]
        d = syncer.sync()
        runs[0].errback(OSError("EIO"))
        self.failureResultOf(d, OSError)
