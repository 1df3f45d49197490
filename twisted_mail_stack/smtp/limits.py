"""Per-client bookkeeping shared by the sessions of one listener: connection counts, AUTH failures."""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["ConnectionCounter", "FailureThrottle", "Networks"]


class ConnectionCounter:
    """Connections open now, in total and per client host."""

    def __init__(self, max_total: int, max_per_host: int) -> None:
        self.max_total = max_total
        self.max_per_host = max_per_host
        self.total = 0
        self._per_host: dict[str, int] = {}

    def acquire(self, host: str) -> bool:
        """Count a new connection from C{host}; False (nothing counted) if over a limit."""
        current = self._per_host.get(host, 0)
        if self.total >= self.max_total or current >= self.max_per_host:
            return False
        self.total += 1
        self._per_host[host] = current + 1
        return True

    def release(self, host: str) -> None:
        self.total -= 1
        left = self._per_host[host] - 1
        if left:
            self._per_host[host] = left
        else:
            del self._per_host[host]


class FailureThrottle:
    """AUTH failures per client host within a sliding window of C{window} seconds."""

    def __init__(self, limit: int, window: float, now: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._now = now
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, host: str) -> deque[float] | None:
        times = self._failures.get(host)
        if times is None:
            return None
        horizon = self._now() - self.window
        while times and times[0] < horizon:
            times.popleft()
        if not times:
            del self._failures[host]
            return None
        return times

    def blocked(self, host: str) -> bool:
        times = self._recent(host)
        return times is not None and len(times) >= self.limit

    def record(self, host: str) -> None:
        times = self._recent(host)
        if times is None:
            times = self._failures[host] = deque()
        times.append(self._now())
        if len(self._failures) > 100_000:  # bound memory under a spray from many hosts
            self._failures.pop(next(iter(self._failures)))


class Networks:
    """A set of IP networks (C{192.0.2.0/24}, C{2001:db8::/32}, single addresses)."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def __contains__(self, host: object) -> bool:
        if not self._networks or not isinstance(host, str):
            return False
        try:
            ip = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._networks)
