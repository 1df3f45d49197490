"""
Read-ahead of small messages: POP3 clients fetch messages in order, so while one goes out the
next few are loaded, and the store's latency (thread hops, disk) leaves the RETR round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress

from twisted.internet.defer import Deferred

from ..interfaces import IMailbox
from ..streaming import CHUNK_SIZE
from ..values import MessageInfo

__all__ = ["ReadAhead"]


class ReadAhead:
    """
    Whole small messages (at most C{max_size} bytes each) loaded ahead of need, at most
    C{max_messages} and C{max_bytes} at a time, so memory stays bounded per session.
    """

    def __init__(
        self,
        mailbox: IMailbox,
        max_messages: int = 8,
        max_bytes: int = 256 * 1024,
        max_size: int = CHUNK_SIZE,
    ) -> None:
        self._mailbox = mailbox
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._max_size = max_size
        self._loading: dict[int, tuple[int, Deferred[bytes | None]]] = {}
        self._bytes = 0

    def take(self, uid: int) -> Deferred[bytes | None] | None:
        """The load of C{uid} if one was started (it gives None if it failed), else None."""
        entry = self._loading.pop(uid, None)
        if entry is None:
            return None
        self._bytes -= entry[0]
        return entry[1]

    def schedule(self, messages: Sequence[MessageInfo]) -> None:
        """Keep or start loading C{messages}, in order, while the bounds allow; drop the rest."""
        wanted = {info.uid for info in messages}
        for uid in [uid for uid in self._loading if uid not in wanted]:
            self.take(uid)
        for info in messages:
            if len(self._loading) >= self._max_messages:
                return
            if info.uid in self._loading or info.size > self._max_size:
                continue
            if self._bytes + info.size > self._max_bytes:
                return
            d = Deferred.fromCoroutine(self._load(info.uid))
            self._loading[info.uid] = (info.size, d)
            self._bytes += info.size

    def clear(self) -> None:
        """Forget every load; loads in progress finish and close their content by themselves."""
        self._loading.clear()
        self._bytes = 0

    async def _load(self, uid: int) -> bytes | None:
        try:
            content = await self._mailbox.open_content(uid)
        except Exception:
            return None  # RETR will open it again and report the error properly
        try:
            return await content.read(0, max(content.size, 1))
        except Exception:
            return None
        finally:
            with suppress(Exception):
                await content.close()
