"""The cleartext-password policy over every kind of peer address."""

from __future__ import annotations

import pytest
from twisted.internet.address import HostnameAddress, IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress

from twisted_mail_stack.auth.policy import PlaintextPolicy, is_loopback, plaintext_allowed

LOOPBACK: list[IAddress | None] = [
    IPv4Address("TCP", "127.0.0.1", 40000),
    IPv4Address("TCP", "127.45.6.7", 40000),
    IPv6Address("TCP", "::1", 40000),
    IPv6Address("TCP", "::ffff:127.0.0.1", 40000),
    UNIXAddress(b"/run/mailstack.sock"),
    UNIXAddress(None),  # the client end of a UNIX socket has no name
]
REMOTE: list[IAddress | None] = [
    IPv4Address("TCP", "192.0.2.10", 40000),
    IPv4Address("TCP", "128.0.0.1", 40000),
    IPv6Address("TCP", "2001:db8::1", 40000),
    IPv6Address("TCP", "::ffff:192.0.2.10", 40000),
    IPv6Address("TCP", "fe80::1%eth0", 40000),
    IPv4Address("TCP", "not-an-ip", 40000),
    HostnameAddress(b"localhost", 25),  # not an IP: never trusted
    None,
]


def test_loopback_detection() -> None:
    assert all(is_loopback(peer) for peer in LOOPBACK)
    assert not any(is_loopback(peer) for peer in REMOTE)


@pytest.mark.parametrize("peer", LOOPBACK + REMOTE, ids=repr)
@pytest.mark.parametrize("secure", [True, False])
@pytest.mark.parametrize("policy", list(PlaintextPolicy))
def test_matrix(policy: PlaintextPolicy, secure: bool, peer: IAddress | None) -> None:
    expected = {
        PlaintextPolicy.NEVER: False,
        PlaintextPolicy.ALWAYS: True,
        PlaintextPolicy.TLS_ONLY: secure,
        PlaintextPolicy.TLS_OR_LOOPBACK: secure or peer in LOOPBACK,
    }[policy]
    assert plaintext_allowed(policy, secure=secure, peer=peer) is expected


def test_config_spellings() -> None:
    assert PlaintextPolicy("tls-or-loopback") is PlaintextPolicy.TLS_OR_LOOPBACK
    assert [p.value for p in PlaintextPolicy] == ["tls-or-loopback", "tls-only", "always", "never"]
