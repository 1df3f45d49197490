"""Per-recipient delivery state: values, JSON, and durable saves in the queue."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.trial import unittest

from twisted_mail_stack.relay.queue import DeliveryQueue
from twisted_mail_stack.relay.state import DELIVERED, FAILED, PENDING, EntryState, RecipientState
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import Envelope, EnvelopeRecipient

ENVELOPE = Envelope(
    "a@example.org", (EnvelopeRecipient("b@remote.example"), EnvelopeRecipient("c@remote.example"))
)

text = st.none() | st.text(max_size=30)
recipient_states = st.builds(
    RecipientState,
    address=st.text(min_size=1, max_size=30),
    state=st.sampled_from([PENDING, DELIVERED, FAILED]),
    reply=text,
    status=text,
    remote_mta=text,
    diagnostic_type=st.sampled_from(["smtp", "x-local"]),
    last_attempt=st.none() | st.floats(0, 2e9),
    notified=st.booleans(),
)
entry_states = st.builds(
    EntryState,
    recipients=st.lists(recipient_states, max_size=5).map(tuple),
    failures=st.integers(0, 1000),
    next_attempt=st.floats(0, 2e9),
    warned=st.booleans(),
    notices=st.integers(0, 5),
)


class StateTests(unittest.TestCase):
    def test_initial_and_updates(self) -> None:
        state = EntryState.initial(ENVELOPE)
        self.assertEqual(
            [r.address for r in state.pending], ["b@remote.example", "c@remote.example"]
        )
        state = state.update("b@remote.example", state=DELIVERED, reply="250 ok")
        self.assertEqual([r.address for r in state.pending], ["c@remote.example"])
        self.assertFalse(state.done)
        state = state.update("c@remote.example", state=FAILED, status="5.1.1")
        self.assertTrue(state.done)
        self.assertEqual([r.address for r in state.unnotified], ["c@remote.example"])
        state = state.mark_notified()
        self.assertEqual(state.unnotified, [])
        self.assertFalse(state.recipients[0].notified)
        with self.assertRaises(ValueError):  # final states stay final
            state.update("b@remote.example", state=PENDING)
        with self.assertRaises(ValueError):
            RecipientState("x@y", state="lost")

    @given(entry_states)
    def test_json_round_trip(self, state: EntryState) -> None:
        self.assertEqual(EntryState.from_json(state.to_json()), state)


class QueueStateTests(unittest.TestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp())
        self.queue = DeliveryQueue(str(self.path), reactor)

    async def test_save_load_replace_remove(self) -> None:
        before = datetime.now(UTC)
        await self.queue.enqueue("Q1", ENVELOPE, BytesSource(b"m\r\n"))
        arrival = await self.queue.queued_at("Q1")
        self.assertLessEqual(abs(arrival - before), timedelta(seconds=5))
        self.assertIsNone(await self.queue.load_state("Q1"))
        first = EntryState.initial(ENVELOPE)
        await self.queue.save_state("Q1", first)
        self.assertEqual(await self.queue.load_state("Q1"), first)
        second = first.update("b@remote.example", state=DELIVERED, reply="250 2.0.0 ok")
        await self.queue.save_state("Q1", second)
        self.assertEqual(await self.queue.load_state("Q1"), second)
        # The state file does not make a second entry, and leaves nothing in tmp/.
        self.assertEqual(list(await self.queue.list_ids()), ["Q1"])
        self.assertEqual(os.listdir(self.path / "tmp"), [])
        await self.queue.remove("Q1")
        self.assertEqual(sorted(os.listdir(self.path)), ["tmp"])
        self.assertIsNone(await self.queue.load_state("Q1"))

    async def test_next_attempts_in_one_read(self) -> None:
        for queue_id in ("Q1", "Q2", "Q3"):
            await self.queue.enqueue(queue_id, ENVELOPE, BytesSource(b"m\r\n"))
            os.utime(self.path / f"{queue_id}.json", ns=(0, {"Q1": 3, "Q2": 1, "Q3": 2}[queue_id]))
        await self.queue.save_state(
            "Q1", attrs.evolve(EntryState.initial(ENVELOPE), next_attempt=5.5)
        )
        (self.path / "Q3.state").write_text("{not json")  # unreadable: tried now, its run says why
        self.assertEqual(await self.queue.next_attempts(), [("Q2", 0.0), ("Q3", 0.0), ("Q1", 5.5)])

    async def test_an_entry_removed_while_listing_is_left_out(self) -> None:
        await self.queue.enqueue("Q1", ENVELOPE, BytesSource(b"m\r\n"))
        real = os.scandir

        class Gone:
            name = "Q0.json"

            def stat(self) -> os.stat_result:
                raise FileNotFoundError(self.name)

        def scandir(path: str) -> list[object]:
            return [Gone(), *real(path)]

        self.patch(os, "scandir", scandir)
        self.assertEqual(list(await self.queue.list_ids()), ["Q1"])

    async def test_missing_entry(self) -> None:
        with self.assertRaises(KeyError):
            await self.queue.save_state("NOPE", EntryState.initial(ENVELOPE))
        with self.assertRaises(KeyError):
            await self.queue.queued_at("NOPE")
        self.assertEqual(sorted(os.listdir(self.path)), ["tmp"])
        with self.assertRaises(ValueError):
            await self.queue.save_state("../x", EntryState.initial(ENVELOPE))
