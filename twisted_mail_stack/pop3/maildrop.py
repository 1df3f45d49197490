"""A POP3 session's view of its maildrop: the snapshot taken at login and the deletion marks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..values import MessageInfo
from ._wire import CommandError

__all__ = ["Maildrop"]


class Maildrop:
    """
    The messages listed at login, numbered from 1 (RFC 1939 5). Later arrivals and expunges by
    other sessions do not change the numbering; DELE only marks, and the marks are applied by the
    session in the UPDATE state. C{sizes} maps numbers to canonical (CRLF) sizes once known.
    """

    def __init__(self, messages: Sequence[MessageInfo], uidvalidity: int) -> None:
        self._messages = tuple(messages)
        self._uidvalidity = uidvalidity
        self._deleted: set[int] = set()
        self.sizes: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._messages)

    def get(self, number: int) -> MessageInfo:
        """The message C{number}; L{CommandError} if there is none or it is marked deleted."""
        if not 1 <= number <= len(self._messages):
            raise CommandError("no such message")
        if number in self._deleted:
            raise CommandError("message is deleted")
        return self._messages[number - 1]

    def peek(self, number: int) -> MessageInfo | None:
        """The message C{number}, or None if there is none or it is marked deleted."""
        if 1 <= number <= len(self._messages) and number not in self._deleted:
            return self._messages[number - 1]
        return None

    def uid(self, number: int) -> int:
        """The UID of message C{number}, deleted or not."""
        return self._messages[number - 1].uid

    def live(self) -> Iterator[tuple[int, MessageInfo]]:
        """Every message not marked deleted, with its number, in order."""
        for number, info in enumerate(self._messages, 1):
            if number not in self._deleted:
                yield number, info

    def unique_id(self, info: MessageInfo) -> bytes:
        """
        The UIDL of a message (RFC 1939 7): UIDVALIDITY and UID, which the store keeps stable
        across sessions and restarts, the same whichever session asks.
        """
        return b"%d.%d" % (self._uidvalidity, info.uid)

    def delete(self, number: int) -> None:
        self.get(number)
        self._deleted.add(number)

    def undelete_all(self) -> None:
        self._deleted.clear()

    def deleted_uids(self) -> list[int]:
        return sorted(self._messages[n - 1].uid for n in self._deleted)

    def stat(self) -> tuple[int, int]:
        """Count and total canonical size of the live messages; every size must be known."""
        count = total = 0
        for number, _ in self.live():
            count += 1
            total += self.sizes[number]
        return count, total
