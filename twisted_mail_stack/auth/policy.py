"""When a cleartext password (SASL PLAIN/LOGIN, POP3 USER/PASS, IMAP LOGIN) may be accepted."""

from __future__ import annotations

import enum
import ipaddress

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress

__all__ = ["PlaintextPolicy", "plaintext_allowed", "is_loopback"]


class PlaintextPolicy(enum.Enum):
    """The operator's choice, shared by SMTP, POP3 and IMAP."""

    #: Over TLS, or from this machine (like Dovecot's disable_plaintext_auth). The default.
    TLS_OR_LOOPBACK = "tls-or-loopback"
    #: Only over TLS.
    TLS_ONLY = "tls-only"
    #: Always, even in the clear over the network: for tests and trusted networks only.
    ALWAYS = "always"
    #: Never: no password logins at all.
    NEVER = "never"


def is_loopback(peer: IAddress | None) -> bool:
    """
    True for a peer on this machine: IPv4 127.0.0.0/8, IPv6 C{::1}, an IPv4-mapped
    C{::ffff:127.x.y.z}, or a UNIX socket.
    """
    if isinstance(peer, UNIXAddress):
        return True
    if not isinstance(peer, IPv4Address | IPv6Address):
        return False
    try:
        ip = ipaddress.ip_address(peer.host.partition("%")[0])  # drop an IPv6 zone index
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def plaintext_allowed(policy: PlaintextPolicy, *, secure: bool, peer: IAddress | None) -> bool:
    """
    May this connection use a cleartext password mechanism?

    C{secure} is whether the connection is under TLS now; C{peer} its remote address.
    Protocols also use this to decide whether to advertise such mechanisms (RFC 3501 6.2.3
    LOGINDISABLED, RFC 4954 4, RFC 2595 2.1).
    """
    if policy is PlaintextPolicy.NEVER:
        return False
    if policy is PlaintextPolicy.ALWAYS or secure:
        return True
    return policy is PlaintextPolicy.TLS_OR_LOOPBACK and is_loopback(peer)
