"""Per-client connection and failed-login limits."""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock

from twisted_mail_stack.clientlimits import ClientLimits, client_key


def test_keys() -> None:
    assert client_key(IPv4Address("TCP", "192.0.2.1", 5)) == "192.0.2.1"
    assert client_key(IPv6Address("TCP", "fe80::1%eth0", 5)) == "fe80::1"
    assert client_key(UNIXAddress(None)) == "UNIXAddress"


def test_connections() -> None:
    limits = ClientLimits(Clock(), max_connections=2, max_failures=3, failure_window=10)
    assert limits.connect("a") and limits.connect("a")
    assert not limits.connect("a")
    assert limits.connect("b")
    limits.disconnect("a")
    assert limits.connect("a")


def test_failures_expire_with_the_window() -> None:
    clock = Clock()
    limits = ClientLimits(clock, max_connections=2, max_failures=2, failure_window=10)
    limits.login_failed("a")
    clock.advance(5)
    limits.login_failed("a")
    assert limits.logins_blocked("a") and not limits.logins_blocked("b")
    clock.advance(5)
    assert not limits.logins_blocked("a")
    clock.advance(5)
    assert not limits.logins_blocked("a")
    limits.login_failed("a")
    assert not limits.logins_blocked("a")
