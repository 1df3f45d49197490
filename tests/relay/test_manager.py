"""
The relay manager in simulated time: a real queue on disk, a task.Clock for every timer, a
scripted resolver and scripted remote replies. Days of retries run in well under a second each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from typing import Any

from attrs import evolve
from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mail_stack.errors import PermanentDeliveryError, PermanentRoutingError
from twisted_mail_stack.relay._smtpclient import Reply
from twisted_mail_stack.relay.client import Outgoing, RecipientResult
from twisted_mail_stack.relay.manager import RelayManager
from twisted_mail_stack.relay.queue import DeliveryQueue
from twisted_mail_stack.relay.schedule import RetryPolicy
from twisted_mail_stack.relay.state import DELIVERED, FAILED, PENDING, EntryState
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import Envelope, EnvelopeRecipient, MXHost

DAY = 86400.0
BODY = b"From: alice@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


class Resolver:
    def resolve(self, domain: str) -> Deferred[Sequence[MXHost]]:
        if domain == "nullmx.test":
            return defer.fail(PermanentRoutingError("nullmx.test accepts no mail", 556, "5.1.10"))
        return defer.succeed([MXHost(f"mx.{domain}", ("192.0.2.1",), 25)])


class Remote:
    """Answers each recipient with its scripted replies in turn (then the last one again)."""

    def __init__(self, script: dict[str, list[tuple[int, str]]]) -> None:
        self.script = script
        self.delivered: list[tuple[str, bytes]] = []
        self.tries: list[str] = []
        self.times: list[float] = []
        self.clock: Clock | None = None

    def send(
        self, host: MXHost, address: str, messages: Sequence[Outgoing]
    ) -> Deferred[list[list[RecipientResult]]]:
        out = []
        for m in messages:
            with m.source.open() as f:
                data = f.read()
            results = []
            for r in m.envelope.recipients:
                self.tries.append(r.address)
                self.times.append(self.clock.seconds() if self.clock else 0.0)
                replies = self.script.get(r.address, [(250, "2.0.0 ok")])
                code, text = replies.pop(0) if len(replies) > 1 else replies[0]
                if code == 250:
                    self.delivered.append((r.address, data))
                results.append(RecipientResult(r, Reply(code, [text])))
            out.append(results)
        return defer.succeed(out)


class ManagerTests(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.queue = DeliveryQueue(str(self.path), reactor)
        self.clock = Clock()
        self.clock.advance(time.time())  # the queue stamps arrivals with the real time

    def manager(self, remote: Remote, policy: RetryPolicy | None = None, **kw: Any) -> RelayManager:
        remote.clock = self.clock
        m = RelayManager(
            self.queue,
            Resolver(),
            remote.send,
            clock=self.clock,
            hostname="relay.example.org",
            policy=policy,
            **kw,
        )
        m.startService()
        self.addCleanup(m.stopService)
        return m

    async def enqueue(self, rcpts: list[str], sender: str = "alice@example.org") -> None:
        envelope = Envelope(sender, tuple(EnvelopeRecipient(r) for r in rcpts))
        await self.queue.enqueue("Q1", envelope, BytesSource(BODY))

    async def step(self, manager: RelayManager, seconds: float = 0) -> None:
        await manager.wait_idle()
        self.clock.advance(seconds)
        await manager.wait_idle()

    async def run_until_idle(self, manager: RelayManager, limit: float) -> int:
        """Advance timer by timer until none is left or C{limit} seconds passed; count runs."""
        end = self.clock.seconds() + limit
        runs = 0
        await self.step(manager)
        while self.clock.getDelayedCalls():
            when = min(c.getTime() for c in self.clock.getDelayedCalls())
            if when > end:
                break
            runs += 1
            await self.step(manager, max(0.0, when - self.clock.seconds()))
        return runs

    def sent_notices(self, remote: Remote) -> list[bytes]:
        return [data for a, data in remote.delivered if data.startswith(b"From: Mail Delivery")]

    def notices(self) -> list[tuple[Envelope, bytes]]:
        found = []
        for name in sorted(p.name for p in self.path.glob("Q1N*.json")):
            env, source = self.queue._load(name[: -len(".json")])
            with source.open() as f:
                found.append((env, f.read()))
        return found

    async def test_451_then_250_is_retried_and_delivered_once(self) -> None:
        remote = Remote({"temp@remote.test": [(451, "4.2.0 busy"), (250, "2.0.0 ok")]})
        await self.enqueue(["temp@remote.test", "bob@remote.test"])
        manager = self.manager(remote)
        await self.step(manager)
        state = await self.queue.load_state("Q1")
        assert state is not None
        self.assertEqual([r.state for r in state.recipients], [PENDING, DELIVERED])
        self.assertEqual(state.failures, 1)
        self.assertAlmostEqual(state.next_attempt - self.clock.seconds(), 300.0, places=3)
        await self.step(manager, 299)
        self.assertEqual(remote.tries, ["temp@remote.test", "bob@remote.test"])
        await self.step(manager, 1)
        self.assertEqual([a for a, _ in remote.delivered], ["bob@remote.test", "temp@remote.test"])
        self.assertEqual(list(await self.queue.list_ids()), [])  # done and removed
        self.assertEqual(self.clock.getDelayedCalls()[:0], [])

    async def test_550_for_one_of_two_bounces_that_one(self) -> None:
        remote = Remote({"nobody@remote.test": [(550, "5.1.1 no such user")]})
        await self.enqueue(["nobody@remote.test", "bob@remote.test"])
        manager = self.manager(remote)
        await self.step(manager)
        [(notice_env, data)] = self.notices()
        self.assertEqual(notice_env.sender, "")
        self.assertEqual([r.address for r in notice_env.recipients], ["alice@example.org"])
        msg = message_from_bytes(data, policy=email_policy.default)
        blocks = msg.get_payload()[1].get_payload()
        self.assertEqual(len(blocks), 2)
        self.assertEqual(blocks[1]["Final-Recipient"], "rfc822; nobody@remote.test")
        self.assertEqual(blocks[1]["Action"], "failed")
        self.assertEqual(blocks[1]["Status"], "5.1.1")
        self.assertEqual(blocks[1]["Remote-MTA"], "dns; mx.remote.test")
        self.assertEqual(blocks[1]["Diagnostic-Code"], "smtp; 550 5.1.1 no such user")
        self.assertNotIn(b"bob@remote.test", data.split(b"\r\n\r\n", 1)[1].split(b"--")[0])
        # The notice itself is sent (woken at once) to the sender, from <>.
        await self.step(manager)
        self.assertEqual(remote.delivered[-1][0], "alice@example.org")
        self.assertEqual(list(await self.queue.list_ids()), [])

    async def test_null_mx_bounces_at_once_and_bounce_is_not_bounced(self) -> None:
        remote = Remote({"alice@example.org": [(550, "5.1.1 gone")]})
        await self.enqueue(["x@nullmx.test"])
        manager = self.manager(remote)
        await self.step(manager)
        [(_, data)] = self.notices()
        self.assertIn(b"Status: 5.1.10", data)
        self.assertIn(b"Diagnostic-Code: x-local; nullmx.test accepts no mail", data)
        # The notice to alice fails with 550: no notice about the notice.
        await self.step(manager)
        self.assertEqual(remote.tries, ["alice@example.org"])
        self.assertEqual(list(await self.queue.list_ids()), [])

    async def test_expiry_bounces_with_the_last_error(self) -> None:
        remote = Remote({"temp@remote.test": [(451, "4.2.0 still busy")]})
        await self.enqueue(["temp@remote.test"])
        start = self.clock.seconds()
        manager = self.manager(remote)
        runs = await self.run_until_idle(manager, 5 * DAY + 3600)
        tries = remote.tries.count("temp@remote.test")
        self.assertTrue(108 <= tries <= 142, tries)
        self.assertGreaterEqual(runs, tries - 1)
        [data] = self.sent_notices(remote)
        self.assertIn(b"Action: failed", data)
        self.assertIn(b"Status: 4.2.0", data)
        self.assertIn(b"Diagnostic-Code: smtp; 451 4.2.0 still busy", data)
        self.assertEqual([a for a, _ in remote.delivered], ["alice@example.org"])
        last_try = max(
            t for a, t in zip(remote.tries, remote.times, strict=True) if a != "alice@example.org"
        )
        self.assertLessEqual(last_try - start, 5 * DAY + 1)  # never past the lifetime
        self.assertGreaterEqual(last_try - start, 5 * DAY - 4000)
        self.assertEqual(list(await self.queue.list_ids()), [])

    async def test_delay_notice_once(self) -> None:
        remote = Remote({"temp@remote.test": [(451, "4.2.0 busy")] * 20 + [(250, "ok")]})
        await self.enqueue(["temp@remote.test"])
        manager = self.manager(remote, RetryPolicy(delay_warning=3600))
        await self.run_until_idle(manager, 4 * 3600)
        [data] = self.sent_notices(remote)
        self.assertIn(b"Action: delayed", data)
        self.assertIn(b"Will-Retry-Until: ", data)
        self.assertIn(b"Subject: Delayed Mail", data)

    async def test_restart_retries_only_pending_recipients(self) -> None:
        remote = Remote({"temp@remote.test": [(451, "4.2.0 busy"), (250, "ok")]})
        await self.enqueue(["temp@remote.test", "bob@remote.test"])
        first = self.manager(remote)
        await self.step(first)
        await first.stopService()
        second = self.manager(remote)
        await self.step(second)
        self.assertEqual(remote.tries, ["temp@remote.test", "bob@remote.test"])  # not yet due
        await self.step(second, 300)
        self.assertEqual([a for a, _ in remote.delivered], ["bob@remote.test", "temp@remote.test"])
        self.assertEqual(list(await self.queue.list_ids()), [])

    async def test_notice_already_enqueued_before_a_crash_is_not_repeated(self) -> None:
        await self.enqueue(["nobody@remote.test"])
        envelope, _ = await self.queue.load("Q1")
        crashed = EntryState.initial(envelope).update(
            "nobody@remote.test", state=FAILED, status="5.1.1", reply="550 5.1.1 no"
        )
        await self.queue.save_state("Q1", crashed)
        earlier = Envelope("", (EnvelopeRecipient("alice@example.org"),))
        await self.queue.enqueue("Q1N0", earlier, BytesSource(b"the earlier notice"))
        remote = Remote({})
        manager = self.manager(remote)
        await self.step(manager)
        self.assertEqual(list(await self.queue.list_ids()), ["Q1N0"])
        await self.step(manager)
        self.assertEqual(remote.delivered, [("alice@example.org", b"the earlier notice")])

    async def test_flush_wakes_everything(self) -> None:
        remote = Remote({"temp@remote.test": [(451, "4.2.0 busy"), (250, "ok")]})
        await self.enqueue(["temp@remote.test"])
        manager = self.manager(remote)
        await self.step(manager)
        await manager.flush()
        await self.step(manager)
        self.assertEqual(remote.tries, ["temp@remote.test"] * 2)
        self.assertEqual(list(await self.queue.list_ids()), [])

    async def test_local_domains_go_to_the_store(self) -> None:
        """Notices to a local sender are delivered locally; a local failure is final."""
        stored: list[tuple[str, bytes]] = []

        def deliver_local(address: str, source: Any) -> Deferred[None]:
            if address.startswith("gone@"):
                return defer.fail(PermanentDeliveryError("no such user", 550, "5.1.1"))
            if address.startswith("busy@"):
                return defer.fail(OSError("disk full"))
            with source.open() as f:
                stored.append((address, f.read()))
            return defer.succeed(None)

        remote = Remote({"nobody@remote.test": [(550, "5.1.1 no")]})
        await self.enqueue(["nobody@remote.test", "gone@example.org", "busy@example.org"])
        manager = self.manager(
            remote, is_local=lambda d: d == "example.org", deliver_local=deliver_local
        )
        await self.step(manager)
        state = await self.queue.load_state("Q1")
        assert state is not None
        self.assertEqual(
            [(r.state, r.status) for r in state.recipients],
            [(FAILED, "5.1.1"), (FAILED, "5.1.1"), (PENDING, "4.3.0")],
        )
        self.assertIn("disk full", state.recipients[2].reply or "")
        await self.step(manager)  # the notice, to alice@example.org: local
        self.assertEqual(remote.tries, ["nobody@remote.test"])
        [(address, data)] = stored
        self.assertEqual(address, "alice@example.org")
        self.assertIn(b"Final-Recipient: rfc822; nobody@remote.test", data)
        self.assertIn(b"Final-Recipient: rfc822; gone@example.org", data)
        self.assertNotIn(b"busy@example.org", data.split(b"message/delivery-status")[1])


class NoticeConfirmationTests(unittest.TestCase):
    """A notice C{<parent>N<n>} goes once its parent saved C{notices > n}, or is gone."""

    def setUp(self) -> None:
        self.queue = DeliveryQueue(self.mktemp(), reactor)
        self.manager = RelayManager(
            self.queue, Resolver(), Remote({}).send, clock=Clock(), hostname="relay.example.org"
        )

    async def enqueue(self, queue_id: str) -> None:
        envelope = Envelope("alice@example.org", (EnvelopeRecipient("bob@remote.test"),))
        await self.queue.enqueue(queue_id, envelope, BytesSource(BODY))

    async def test_parent_not_saved_yet_then_saved(self) -> None:
        await self.enqueue("P")
        await self.enqueue("PN0")
        self.assertFalse(await self.manager._confirmed("PN0"))
        envelope, _ = await self.queue.load("P")
        await self.queue.save_state("P", evolve(EntryState.initial(envelope), notices=1))
        self.assertTrue(await self.manager._confirmed("PN0"))
        self.assertFalse(await self.manager._confirmed("PN1"))

    async def test_parent_removed_while_looking(self) -> None:
        # The parent's run ends (it removes itself) between the two reads: the notice goes.
        await self.enqueue("P")
        await self.enqueue("PN0")
        envelope, _ = await self.queue.load("P")
        await self.queue.save_state("P", evolve(EntryState.initial(envelope), notices=1))
        load_state = self.queue.load_state

        async def removed_first(queue_id: str) -> EntryState | None:
            await self.queue.remove("P")
            return await load_state(queue_id)

        self.patch(self.queue, "load_state", removed_first)
        self.assertTrue(await self.manager._confirmed("PN0"))
