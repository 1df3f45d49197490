"""
Reuse of outbound sessions: after a delivery, its session stays open for C{idle_timeout}
seconds, and the next delivery to the same place (address, port, TLS policy, credentials)
carries its message over it instead of connecting, greeting and negotiating TLS again. So one
connection carries several messages in turn, as Postfix's connection cache does.

Before reuse the session is checked with RSET (RFC 5321 4.1.1.5): a server may have closed it
meanwhile (RFC 5321 4.5.3.2.7 lets it after 5 minutes of silence, some do sooner); then a
fresh session is opened. A failure after that check is the delivery's, as on a new session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IDelayedCall

from .client import Outgoing, RecipientResult, SessionError, SMTPClient, Timeouts

__all__ = ["SessionPool"]

_Key = tuple[str, int, bool, "tuple[str, str] | None"]


class SessionPool:
    """
    L{deliver} like L{client.deliver}, keeping at most C{max_idle} idle sessions in total,
    each for at most C{idle_timeout} seconds; C{idle_timeout = 0} turns reuse off.
    """

    def __init__(
        self,
        reactor: Any,
        *,
        helo_name: str,
        tls_options: Any = None,
        timeouts: Timeouts | None = None,
        idle_timeout: float = 5.0,
        max_idle: int = 50,
    ) -> None:
        self.reactor = reactor
        self.helo_name = helo_name
        self.tls_options = tls_options
        self.timeouts = timeouts
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self._idle: dict[_Key, list[tuple[SMTPClient, IDelayedCall]]] = {}
        self._closing: list[Deferred[None]] = []
        #: Sessions opened and reused so far (for tests and benchmarks).
        self.opened = 0
        self.reused = 0

    def idle(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def deliver(
        self,
        address: str,
        port: int,
        messages: Sequence[Outgoing],
        *,
        tls_required: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> Deferred[list[list[RecipientResult]]]:
        key: _Key = (address, port, tls_required, auth)
        return Deferred.fromCoroutine(self._deliver(key, messages))

    async def _deliver(
        self, key: _Key, messages: Sequence[Outgoing]
    ) -> list[list[RecipientResult]]:
        client = await self._reusable(key)
        if client is None:
            client = await self._open(key)
        try:
            results = [await client.send(m) for m in messages]
        except BaseException:
            _abort(client)
            raise
        self._park(key, client)
        return results

    async def _reusable(self, key: _Key) -> SMTPClient | None:
        while self._idle.get(key):
            client, timer = self._idle[key].pop()
            if not self._idle[key]:
                del self._idle[key]
            if timer.active():
                timer.cancel()
            if not client.alive:
                continue
            try:
                await client.reset()
            except SessionError:
                _abort(client)
                continue
            self.reused += 1
            return client
        return None

    async def _open(self, key: _Key) -> SMTPClient:
        address, port, tls_required, auth = key
        client = SMTPClient(
            self.helo_name,
            self.reactor,
            tls_options=self.tls_options,
            tls_required=tls_required,
            timeouts=self.timeouts,
            auth=auth,
        )
        kind = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
        endpoint = kind(self.reactor, address, port, timeout=client.timeouts.connect)
        try:
            await connectProtocol(endpoint, client)
        except Exception as e:
            raise SessionError("connect", f"{address}:{port}: {e}") from None
        self.opened += 1
        try:
            await client.start()
        except BaseException:
            _abort(client)
            raise
        return client

    def _park(self, key: _Key, client: SMTPClient) -> None:
        if self.idle_timeout <= 0 or self.idle() >= self.max_idle or not client.alive:
            self._quit(client)
            return
        sessions = self._idle.setdefault(key, [])

        def expire() -> None:
            for i, (c, _) in enumerate(sessions):
                if c is client:
                    del sessions[i]
                    break
            if not sessions and self._idle.get(key) is sessions:
                del self._idle[key]
            self._quit(client)

        sessions.append((client, self.reactor.callLater(self.idle_timeout, expire)))

    def _quit(self, client: SMTPClient) -> None:
        d = Deferred.fromCoroutine(client.quit())
        self._closing.append(d)
        d.addBoth(lambda _: self._closing.remove(d))

    def close(self) -> Deferred[Any]:
        """QUIT every idle session; fires when they are closed."""
        idle, self._idle = self._idle, {}
        for sessions in idle.values():
            for client, timer in sessions:
                if timer.active():
                    timer.cancel()
                self._quit(client)
        return DeferredList(list(self._closing))


def _abort(client: SMTPClient) -> None:
    if client.transport is not None:
        client.transport.abortConnection()  # type: ignore[attr-defined]
