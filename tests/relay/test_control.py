"""
Operator control: the server lock, request files applied by a running manager, and the spool
changed directly while no server runs. Simulated time, a real queue on disk.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mail_stack.relay.control import (
    ControlWatcher,
    ServerLock,
    Spool,
    control_dir,
    outcome,
    request,
    server_lock,
)
from twisted_mail_stack.relay.manager import RelayManager
from twisted_mail_stack.relay.queue import DeliveryQueue
from twisted_mail_stack.relay.state import FAILED, PENDING
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import Envelope, EnvelopeRecipient

from .test_manager import BODY, Remote, Resolver


class ControlTests(unittest.TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.queue = DeliveryQueue(str(self.path), reactor)
        self.clock = Clock()
        self.clock.advance(time.time())
        self.remote = Remote({"temp@remote.test": [(451, "4.2.0 busy")]})
        self.remote.clock = self.clock
        self.manager = RelayManager(
            self.queue, Resolver(), self.remote.send, clock=self.clock, hostname="relay.test"
        )
        self.watcher = ControlWatcher(self.manager, interval=1.0)

    def start(self) -> None:
        self.manager.startService()
        self.watcher.start()
        self.addCleanup(self.manager.stopService)
        self.addCleanup(self.watcher.stop)

    async def enqueue(self, queue_id: str, rcpts: list[str]) -> None:
        envelope = Envelope("alice@example.org", tuple(EnvelopeRecipient(r) for r in rcpts))
        await self.queue.enqueue(queue_id, envelope, BytesSource(BODY))

    async def tick(self, seconds: float = 0.0) -> None:
        """Advance the clock; then run what is due now until nothing is (wakes are timers)."""
        await self.manager.wait_idle()
        self.clock.advance(seconds)
        for _ in range(5):
            await self.manager.wait_idle()
            self.clock.advance(0)

    async def test_enqueue_wakes_the_running_manager(self) -> None:
        self.start()
        await self.tick()
        await self.enqueue("A1", ["bob@remote.test"])  # after the start-up scan
        await self.tick()
        self.assertEqual([a for a, _ in self.remote.delivered], ["bob@remote.test"])
        self.assertEqual(list(await self.queue.list_ids()), [])

    async def test_requests_from_files(self) -> None:
        await self.enqueue("A1", ["temp@remote.test"])
        await self.enqueue("A2", ["temp@remote.test"])
        await self.enqueue("A3", ["temp@remote.test"])
        self.start()
        await self.tick()
        self.assertEqual(self.remote.tries.count("temp@remote.test"), 3)  # all deferred
        request(str(self.path), "retry", "A1")
        await self.tick(1.0)
        self.assertEqual(self.remote.tries.count("temp@remote.test"), 4)
        # Taken and removed; its outcome left for the command that waits (see outcome()).
        [done] = os.listdir(control_dir(str(self.path)))
        self.assertEqual(outcome(str(self.path), done.removesuffix(".done"), 0), "tried now")
        self.assertEqual(os.listdir(control_dir(str(self.path))), [])
        request(str(self.path), "delete", "A2")
        request(str(self.path), "bounce", "A3")
        await self.tick(1.0)
        await self.tick()
        ids = list(await self.queue.list_ids())
        self.assertEqual(ids, ["A1"])  # A2 deleted, A3 bounced (its notice delivered)
        directory = control_dir(str(self.path))
        results = [outcome(str(self.path), n[:-5], 0) for n in sorted(os.listdir(directory))]
        self.assertEqual(results, ["deleted", "bounced; the sender is notified"])
        [notice] = [d for a, d in self.remote.delivered if a == "alice@example.org"]
        self.assertIn(b"Action: failed", notice)
        self.assertIn(b"Status: 5.0.0", notice)
        self.assertIn(b"temp@remote.test", notice)
        self.assertEqual(self.remote.tries.count("temp@remote.test"), 4)  # no attempt for them
        request(str(self.path), "flush")
        await self.tick(1.0)
        self.assertEqual(self.remote.tries.count("temp@remote.test"), 5)
        # The timer at the old next attempt is gone: A1's one timer is its new next attempt.
        self.assertEqual(list(self.manager._timers), ["A1"])
        state = await self.queue.load_state("A1")
        assert state is not None
        self.assertAlmostEqual(self.manager._timers.when("A1") or 0.0, state.next_attempt)

    async def test_bad_and_unknown_requests_are_dropped(self) -> None:
        self.start()
        directory = Path(control_dir(str(self.path)))
        (directory / "1.req").write_text("not json")
        (directory / "2.req").write_text(json.dumps({"action": "explode", "id": "A1"}))
        name = request(str(self.path), "retry", "NOSUCH")
        await self.tick(1.0)
        self.assertEqual(sorted(p.name for p in directory.glob("*.req")), [])
        self.assertEqual(outcome(str(self.path), name, 0), "no such message")
        self.assertEqual([p.name for p in directory.glob("2.done")], ["2.done"])  # unknown action
        self.assertRaises(ValueError, request, str(self.path), "explode")

    async def test_operate_waits_for_a_run_in_progress(self) -> None:
        await self.enqueue("A1", ["temp@remote.test"])
        self.start()
        await self.manager.wait_idle()  # the start-up scan
        self.clock.advance(0)
        self.assertIn("A1", self.manager._running)  # its I/O runs in threads
        await self.manager.operate("A1", "delete")
        self.assertEqual(self.remote.tries, ["temp@remote.test"])  # the run ended first
        await self.tick()
        self.assertEqual(list(await self.queue.list_ids()), [])
        self.assertEqual(sorted(os.listdir(self.path)), ["control", "tmp"])
        self.assertNotIn("A1", self.manager._timers)

    def test_server_lock(self) -> None:
        lock = ServerLock(str(self.path))
        self.assertTrue(lock.try_acquire())
        with server_lock(str(self.path)) as stopped:
            self.assertFalse(stopped)  # another handle holds it: a server runs
        lock.release()
        with server_lock(str(self.path)) as stopped:
            self.assertTrue(stopped)
            self.assertFalse(ServerLock(str(self.path)).try_acquire())


class SpoolTests(unittest.TestCase):
    timeout = 30

    async def test_direct_changes(self) -> None:
        path = self.mktemp()
        queue = DeliveryQueue(path, reactor)
        envelope = Envelope(
            "alice@example.org", (EnvelopeRecipient("a@r.test"), EnvelopeRecipient("b@r.test"))
        )
        for queue_id in ("A1", "A2"):
            await queue.enqueue(queue_id, envelope, BytesSource(BODY))
        spool = Spool(path)
        self.assertEqual(spool.ids(), ["A1", "A2"])
        info = spool.info("A1")
        self.assertEqual((info.size, info.tried), (len(BODY), False))
        self.assertEqual([r.state for r in info.state.recipients], [PENDING, PENDING])
        self.assertEqual(spool.headers("A1"), b"From: alice@example.org\r\nSubject: hi\r\n")
        spool.bounce("A1")
        state = await queue.load_state("A1")
        assert state is not None
        self.assertEqual([r.state for r in state.recipients], [FAILED, FAILED])
        self.assertEqual([(r.status, r.notified) for r in state.recipients], [("5.0.0", False)] * 2)
        spool.retry("A2")
        state = await queue.load_state("A2")
        assert state is not None and state.next_attempt == 0.0 and state.pending
        spool.delete("A2")
        self.assertEqual(spool.ids(), ["A1"])
        self.assertEqual(sorted(os.listdir(path)), ["A1.json", "A1.msg", "A1.state", "tmp"])
        self.assertRaises(KeyError, spool.info, "A2")
        self.assertRaises(KeyError, spool.delete, "A2")
