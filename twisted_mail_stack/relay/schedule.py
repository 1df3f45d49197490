"""
The retry schedule of the relay, as pure arithmetic: no clock, no reactor, no I/O.

Times are seconds on the caller's clock (C{IReactorTime.seconds()}, normally the epoch). The
manager calls L{next_attempt} after every failed attempt of a recipient (or of a whole entry) and
either schedules the returned L{RetryAt} or bounces on L{Expire}.

The defaults are Postfix's: C{minimal_backoff_time = 300s}, C{maximal_backoff_time = 4000s},
C{maximal_queue_lifetime = bounce_queue_lifetime = 5d}, C{delay_warning_time = 0} (off).
"""

from __future__ import annotations

import random as _random

from attrs import field, frozen, validators

__all__ = ["RetryPolicy", "RetryAt", "Expire", "Decision", "backoff_bounds", "next_attempt"]

_positive = validators.gt(0.0)


@frozen
class RetryPolicy:
    """
    How often and how long the relay retries.

    The delay after the C{n}-th failed attempt (C{n >= 1}) is drawn from
    L{backoff_bounds}C{(policy, n)}: its upper end is
    C{min(maximal_backoff, minimal_backoff * factor ** (n - 1))} and its lower end is that
    times C{1 - jitter}, but never below C{minimal_backoff}. Jitter only ever shortens a delay,
    so the cap holds, and spreads retries of messages that failed together.
    """

    #: Delay after the first failure, and the least delay ever (seconds).
    minimal_backoff: float = field(default=300.0, validator=_positive)
    #: The largest delay between two attempts (seconds).
    maximal_backoff: float = field(default=4000.0, validator=_positive)
    #: How long after arrival a message may stay queued before it bounces (seconds).
    maximal_lifetime: float = field(default=5 * 86400.0, validator=_positive)
    #: The lifetime of a message from the null sender (a bounce), usually shorter.
    bounce_lifetime: float = field(default=5 * 86400.0, validator=_positive)
    #: Growth of the delay per failed attempt.
    factor: float = field(default=2.0, validator=validators.ge(1.0))
    #: The fraction by which a delay may be shortened at random, in [0, 1).
    jitter: float = field(default=0.2, validator=[validators.ge(0.0), validators.lt(1.0)])
    #: Send one RFC 3464 "delayed" notice once a message is this old (seconds); None: never.
    delay_warning: float | None = field(default=None, validator=validators.optional(_positive))

    def __attrs_post_init__(self) -> None:
        if self.maximal_backoff < self.minimal_backoff:
            raise ValueError("maximal_backoff is smaller than minimal_backoff")

    def lifetime(self, sender: str) -> float:
        """The lifetime of a message from C{sender} (C{""}: the null sender, a bounce)."""
        return self.bounce_lifetime if sender == "" else self.maximal_lifetime

    def expires_at(self, arrival: float, sender: str) -> float:
        """The time after which the message bounces (DSN C{Will-Retry-Until})."""
        return arrival + self.lifetime(sender)

    def warn_delay(self, arrival: float, now: float, warned: bool) -> bool:
        """True when a delay notice is due now and none was sent yet."""
        return not warned and self.delay_warning is not None and now - arrival >= self.delay_warning


@frozen
class RetryAt:
    """Try again at C{when} (never later than the expiry time)."""

    when: float


@frozen
class Expire:
    """The lifetime is over: fail the pending recipients for good (bounce, Status 4.4.7)."""


Decision = RetryAt | Expire


def backoff_bounds(policy: RetryPolicy, failures: int) -> tuple[float, float]:
    """The (lowest, highest) delay after C{failures} failed attempts (C{failures >= 1})."""
    if failures < 1:
        raise ValueError("failures must be at least 1")
    # min() before the power would overflow: the exponent is bounded by the cap.
    high = policy.minimal_backoff
    for _ in range(failures - 1):
        if high >= policy.maximal_backoff:
            break
        high *= policy.factor
    high = min(high, policy.maximal_backoff)
    low = max(policy.minimal_backoff, high * (1 - policy.jitter))
    return low, high


def next_attempt(
    policy: RetryPolicy,
    *,
    arrival: float,
    now: float,
    failures: int,
    sender: str,
    random: _random.Random | None = None,
) -> Decision:
    """
    Decide what follows the C{failures}-th failed attempt, made at C{now}, of a message that
    arrived at C{arrival} from C{sender}.

    L{Expire} once C{now} has reached the expiry time. Otherwise L{RetryAt} with C{now} plus a
    delay from L{backoff_bounds}, clamped to the expiry time so that one last attempt happens
    at the very end of the lifetime (Postfix bounces after the first failure past it).
    C{random} (default: the module's) supplies the jitter through C{random()}.
    """
    deadline = policy.expires_at(arrival, sender)
    if now >= deadline:
        return Expire()
    low, high = backoff_bounds(policy, failures)
    u = random.random() if random is not None else _random.random()
    return RetryAt(min(deadline, now + high - (high - low) * u))
