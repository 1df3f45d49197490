"""
The per-session cache of analysed messages (ENVELOPE, BODY, BODYSTRUCTURE and section offsets),
so that a client that asks for BODYSTRUCTURE and then for parts parses each message once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from ..interfaces import IMailbox
from ..mime import MessageStructure, analyse

__all__ = ["MessageCache"]

CacheKey = tuple[str, int, int]


class MessageCache:
    """
    The C{max_entries} most recently used L{MessageStructure}s, by (mailbox name, UIDVALIDITY,
    UID). A message's bytes never change under its UID while UIDVALIDITY stands (RFC 3501
    2.3.1.1), so entries need no invalidation; L{discard} merely frees expunged ones early.
    """

    def __init__(self, max_entries: int = 1000) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, MessageStructure] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(mailbox: IMailbox, uid: int) -> CacheKey:
        return (mailbox.name, mailbox.uidvalidity, uid)

    def get(self, mailbox: IMailbox, uid: int) -> MessageStructure | None:
        key = self.key(mailbox, uid)
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
            self._entries.move_to_end(key)
        return found

    def put(self, mailbox: IMailbox, uid: int, structure: MessageStructure) -> None:
        if self.max_entries == 0:
            return
        key = self.key(mailbox, uid)
        self._entries[key] = structure
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def analyse(self, mailbox: IMailbox, uid: int, raw: bytes) -> MessageStructure:
        """The cached structure of message C{uid}, or C{raw} analysed and cached now."""
        found = self._entries.get(self.key(mailbox, uid))
        if found is not None:
            return found
        structure = analyse(raw)
        self.put(mailbox, uid, structure)
        return structure

    def discard(self, mailbox: IMailbox, uids: Iterable[int]) -> None:
        """Forget expunged messages."""
        for uid in uids:
            self._entries.pop(self.key(mailbox, uid), None)

    def __len__(self) -> int:
        return len(self._entries)
