"""
Per-client limits shared by the protocols: concurrent connections and failed logins, counted by
the client's address. State lives in one process; time comes from an injected clock.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IReactorTime

__all__ = ["client_key", "ClientLimits"]

#: Distinct addresses whose failed logins are remembered; beyond it the stalest are dropped.
_MAX_TRACKED = 10_000


def client_key(peer: IAddress | None) -> str:
    """The address limits are counted by: the IP (without IPv6 zone), or the address type."""
    if isinstance(peer, IPv4Address | IPv6Address):
        return peer.host.partition("%")[0]
    return type(peer).__name__


class ClientLimits:
    """Counts connections and failed logins per client address."""

    def __init__(
        self,
        clock: IReactorTime,
        max_connections: int,
        max_failures: int,
        failure_window: float,
    ) -> None:
        self._clock = clock
        self._max_connections = max_connections
        self._max_failures = max_failures
        self._window = failure_window
        self._connections: dict[str, int] = {}
        self._failures: dict[str, deque[float]] = {}

    def connect(self, key: str) -> bool:
        """Count a new connection from C{key}; False (and not counted) if over the limit."""
        count = self._connections.get(key, 0)
        if count >= self._max_connections:
            return False
        self._connections[key] = count + 1
        return True

    def disconnect(self, key: str) -> None:
        """Forget one connection counted by L{connect}."""
        count = self._connections.get(key, 0) - 1
        if count > 0:
            self._connections[key] = count
        else:
            self._connections.pop(key, None)

    def login_failed(self, key: str) -> None:
        """Remember a failed login from C{key}."""
        times = self._recent(key)
        times.append(self._clock.seconds())
        self._failures[key] = times
        if len(self._failures) > _MAX_TRACKED:
            del self._failures[next(iter(self._failures))]

    def logins_blocked(self, key: str) -> bool:
        """True while C{key} has had too many failed logins within the window."""
        return len(self._recent(key)) >= self._max_failures

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.pop(key, None)  # re-inserted last: dicts keep insertion order
        if times is None:
            return deque()
        horizon = self._clock.seconds() - self._window
        while times and times[0] <= horizon:
            times.popleft()
        if times:
            self._failures[key] = times
        return times
