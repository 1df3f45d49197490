"""The relay's many-timers-on-one-call scheduler, in simulated time."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_mail_stack.relay.timers import Timers


class TimersTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.fired: list[str] = []
        self.timers = Timers(self.clock, self.fired.append)

    def test_fires_in_time_order_on_one_clock_call(self) -> None:
        for key, delay in [("c", 30.0), ("a", 10.0), ("b", 20.0)]:
            self.timers.set(key, delay)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(9.9)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.fired, ["a"])
        self.clock.advance(20)
        self.assertEqual(self.fired, ["a", "b", "c"])
        self.assertEqual(len(self.timers), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_equal_times_fire_in_the_order_set(self) -> None:
        for key in "qwerty":
            self.timers.set(key, 5.0)
        self.clock.advance(5)
        self.assertEqual("".join(self.fired), "qwerty")

    def test_set_again_replaces_the_time(self) -> None:
        self.timers.set("a", 10.0)
        self.timers.set("a", 100.0)
        self.timers.set("b", 50.0)
        self.clock.advance(60)
        self.assertEqual(self.fired, ["b"])
        self.assertIn("a", self.timers)
        self.timers.set("a", 0.0)  # sooner than the armed call: re-armed
        self.clock.advance(0)
        self.assertEqual(self.fired, ["b", "a"])
        self.clock.advance(1000)
        self.assertEqual(self.fired, ["b", "a"])

    def test_cancel(self) -> None:
        self.timers.set("a", 1.0)
        self.assertTrue(self.timers.cancel("a"))
        self.assertFalse(self.timers.cancel("a"))
        self.clock.advance(5)
        self.assertEqual(self.fired, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_clear_cancels_the_clock_call(self) -> None:
        self.timers.set("a", 1.0)
        self.timers.clear()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(5)
        self.assertEqual(self.fired, [])

    def test_fire_may_set_timers_and_a_failure_does_not_stop_the_others(self) -> None:
        def fire(key: str) -> None:
            self.fired.append(key)
            if key == "bad":
                raise RuntimeError("boom")
            if key == "a":
                self.timers.set("again", 3.0)

        self.timers = Timers(self.clock, fire)
        self.timers.set("bad", 1.0)
        self.timers.set("a", 1.0)
        self.clock.advance(1)
        self.assertEqual(self.fired, ["bad", "a"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.clock.advance(3)
        self.assertEqual(self.fired, ["bad", "a", "again"])

    def test_heap_stays_bounded_when_one_key_is_reset_many_times(self) -> None:
        for i in range(10_000):
            self.timers.set("a", float(i))
        self.assertLessEqual(len(self.timers._heap), 2 * len(self.timers) + 65)
        self.clock.advance(10_000)
        self.assertEqual(self.fired, ["a"])

    def test_times_from_fractional_clock_arithmetic_still_fire(self) -> None:
        self.clock.advance(0.1)
        self.timers.set("a", 0.2)  # 0.1 + 0.2 is not 0.3 in floating point
        self.clock.advance(0.2)
        self.assertEqual(self.fired, ["a"])
