"""Connection limits: in total and per destination, released on success and on failure."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred
from twisted.trial import unittest

from twisted_mail_stack.relay.client import Outgoing, RecipientResult, SessionError
from twisted_mail_stack.relay.limits import ConnectionLimits
from twisted_mail_stack.values import MXHost


class Sessions:
    """A send whose sessions end when the test says."""

    def __init__(self) -> None:
        self.open: list[tuple[str, Deferred[list[list[RecipientResult]]]]] = []

    def send(
        self, host: MXHost, address: str, messages: Sequence[Outgoing]
    ) -> Deferred[list[list[RecipientResult]]]:
        d: Deferred[list[list[RecipientResult]]] = Deferred()
        self.open.append((host.name, d))
        return d

    def names(self) -> list[str]:
        return [name for name, d in self.open if not d.called]


def host(name: str) -> MXHost:
    return MXHost(name, ("127.0.0.1",), 25)


class LimitTests(unittest.TestCase):
    def test_per_destination_and_total(self) -> None:
        sessions = Sessions()
        limits = ConnectionLimits(total=3, per_destination=2)
        send = limits.wrap(sessions.send)
        results = [send(host(n), "127.0.0.1", []) for n in ("a", "a", "a", "b", "c", "d")]
        # a: 2 of 3 (per destination); b takes the third slot of the total; c, d wait.
        self.assertEqual(sessions.names(), ["a", "a", "b"])
        self.assertEqual((limits.active(), limits.active("a")), (3, 2))
        sessions.open[0][1].callback([])
        # The total's slot goes to who waited for it first (c); the third "a" now waits for it.
        self.assertEqual(sessions.names(), ["a", "b", "c"])
        sessions.open[1][1].errback(SessionError("connect", "refused"))
        self.assertEqual(sessions.names(), ["b", "c", "d"])
        self.failureResultOf(results[1], SessionError)
        self.assertEqual(self.successResultOf(results[0]), [])
        while sessions.names():
            self.assertLessEqual(limits.active(), 3)
            self.assertLessEqual(limits.active("a"), 2)
            next(d for _, d in sessions.open if not d.called).callback([])
        self.assertEqual([n for n, _ in sessions.open], ["a", "a", "b", "c", "d", "a"])
        self.assertEqual(limits.active(), 0)
        self.assertEqual(limits._by_destination, {})  # idle destinations are forgotten
        for r in results[2:]:
            self.assertEqual(self.successResultOf(r), [])

    def test_bad_limits(self) -> None:
        self.assertRaises(ValueError, ConnectionLimits, 0, 1)
        self.assertRaises(ValueError, ConnectionLimits, 1, 0)
