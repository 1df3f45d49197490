"""The retry schedule: bounds, monotony, jitter, lifetime; and days of retries in simulated time."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mail_stack.relay.schedule import (
    Expire,
    RetryAt,
    RetryPolicy,
    backoff_bounds,
    next_attempt,
)

DAY = 86400.0


class FixedRandom(random.Random):
    """A Random whose random() always returns one value."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


policies = st.builds(
    lambda lo, span, life, factor, jitter: RetryPolicy(
        minimal_backoff=lo,
        maximal_backoff=lo + span,
        maximal_lifetime=life,
        bounce_lifetime=life / 2,
        factor=factor,
        jitter=jitter,
    ),
    st.floats(1, 10_000),
    st.floats(0, 100_000),
    st.floats(1, 30 * DAY),
    st.floats(1, 10),
    st.floats(0, 0.99),
)
unit = st.floats(0, 1, exclude_max=True)


class ScheduleTests(unittest.TestCase):
    def test_postfix_defaults(self) -> None:
        p = RetryPolicy()
        self.assertEqual((p.minimal_backoff, p.maximal_backoff), (300.0, 4000.0))
        self.assertEqual(p.maximal_lifetime, 5 * DAY)
        self.assertIsNone(p.delay_warning)
        self.assertEqual(backoff_bounds(p, 1), (300.0, 300.0))
        self.assertEqual(backoff_bounds(p, 2), (480.0, 600.0))
        self.assertEqual(backoff_bounds(p, 5), (3200.0, 4000.0))
        self.assertEqual(backoff_bounds(p, 50), (3200.0, 4000.0))

    def test_bad_policies(self) -> None:
        for kw in (
            {"minimal_backoff": 0},
            {"minimal_backoff": 10, "maximal_backoff": 5},
            {"jitter": 1.0},
            {"factor": 0.5},
            {"delay_warning": -1},
        ):
            with self.assertRaises(ValueError):
                RetryPolicy(**kw)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            backoff_bounds(RetryPolicy(), 0)

    @given(policies, st.integers(1, 10_000))
    def test_bounds_within_first_and_max_and_monotone(self, p: RetryPolicy, n: int) -> None:
        low, high = backoff_bounds(p, n)
        self.assertLessEqual(p.minimal_backoff, low)
        self.assertLessEqual(low, high)
        self.assertLessEqual(high, p.maximal_backoff)
        low2, high2 = backoff_bounds(p, n + 1)
        self.assertLessEqual(low, low2)
        self.assertLessEqual(high, high2)

    @given(policies, st.integers(1, 200), st.floats(0, 60 * DAY), st.floats(0, 60 * DAY), unit)
    def test_decision(self, p: RetryPolicy, n: int, arrival: float, age: float, u: float) -> None:
        now = arrival + age
        for sender in ("a@example.org", ""):
            d = next_attempt(
                p, arrival=arrival, now=now, failures=n, sender=sender, random=FixedRandom(u)
            )
            deadline = arrival + p.lifetime(sender)
            if now >= deadline:
                self.assertEqual(d, Expire())
                continue
            assert isinstance(d, RetryAt)
            low, high = backoff_bounds(p, n)
            self.assertLessEqual(d.when, deadline)
            self.assertGreater(d.when, now)
            if now + high <= deadline:
                self.assertLessEqual(now + low - 1e-6, d.when)
                self.assertLessEqual(d.when, now + high + 1e-6)

    def test_jitter_extremes(self) -> None:
        p = RetryPolicy()
        at = {
            u: next_attempt(p, arrival=0, now=1000, failures=3, sender="s", random=FixedRandom(u))
            for u in (0.0, 0.999999)
        }
        self.assertEqual(at[0.0], RetryAt(1000 + 1200))
        late = at[0.999999]
        assert isinstance(late, RetryAt)
        self.assertAlmostEqual(late.when, 1000 + 960, places=3)

    def test_warn_delay(self) -> None:
        p = RetryPolicy(delay_warning=4 * 3600)
        self.assertFalse(p.warn_delay(0, 4 * 3600 - 1, False))
        self.assertTrue(p.warn_delay(0, 4 * 3600, False))
        self.assertFalse(p.warn_delay(0, 4 * 3600, True))
        self.assertFalse(RetryPolicy().warn_delay(0, 100 * DAY, False))

    def test_days_of_retries_in_simulated_time(self) -> None:
        """A message that always fails is tried on the schedule and expires at 5 days, once."""
        p = RetryPolicy()
        clock = Clock()
        clock.advance(1_700_000_000)
        arrival = clock.seconds()
        rng = random.Random(7)
        attempts: list[float] = []
        expired: list[float] = []

        def attempt() -> None:
            attempts.append(clock.seconds())
            d = next_attempt(
                p,
                arrival=arrival,
                now=clock.seconds(),
                failures=len(attempts),
                sender="s",
                random=rng,
            )
            if isinstance(d, Expire):
                expired.append(clock.seconds())
            else:
                clock.callLater(d.when - clock.seconds(), attempt)

        attempt()
        while clock.getDelayedCalls():
            clock.advance(min(c.getTime() for c in clock.getDelayedCalls()) - clock.seconds())
        self.assertEqual(expired, [arrival + 5 * DAY])
        gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
        self.assertEqual(gaps[0], 300.0)
        self.assertTrue(480 <= gaps[1] <= 600, gaps[1])
        self.assertTrue(all(g <= 4000 for g in gaps))
        self.assertTrue(all(g >= 3200 for g in gaps[5:-1]))
        # 5 days at most 4000s apart, at least 3200s: between 108 and 140 attempts.
        self.assertTrue(108 <= len(attempts) <= 140, len(attempts))
