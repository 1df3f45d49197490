"""A POP3 session's view of its maildrop: the snapshot taken at login and the deletion marks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..values import MessageInfo
from ._wire import CommandError

__all__ = ["Maildrop"]


class Maildrop:
    """
    The messages listed at login, numbered from 1 (RFC 1939 5), as their UIDs and stored sizes
    (plain integers: a snapshot of a large folder holds no object per message). Later arrivals
    and expunges by other sessions do not change the numbering; DELE only marks, and the marks
    are applied by the session in the UPDATE state. C{sizes} maps numbers to canonical (CRLF)
    sizes once known.
    """

    def __init__(self, uids: Sequence[int], stored: Sequence[int], uidvalidity: int) -> None:
        if len(uids) != len(stored):
            raise ValueError("one stored size per UID")
        self._uids = uids
        self._stored = stored
        self._uidvalidity = uidvalidity
        self._deleted: set[int] = set()
        self.sizes: dict[int, int] = {}

    @classmethod
    def from_infos(cls, messages: Sequence[MessageInfo], uidvalidity: int) -> Maildrop:
        """The snapshot of a folder listed by L{IMailbox.list_messages}."""
        return cls([m.uid for m in messages], [m.size for m in messages], uidvalidity)

    def __len__(self) -> int:
        return len(self._uids)

    def get(self, number: int) -> int:
        """The UID of message C{number}; L{CommandError} if there is none or it is deleted."""
        if not 1 <= number <= len(self._uids):
            raise CommandError("no such message")
        if number in self._deleted:
            raise CommandError("message is deleted")
        return self._uids[number - 1]

    def peek(self, number: int) -> int | None:
        """The UID of message C{number}, or None if there is none or it is marked deleted."""
        if 1 <= number <= len(self._uids) and number not in self._deleted:
            return self._uids[number - 1]
        return None

    def uid(self, number: int) -> int:
        """The UID of message C{number}, deleted or not."""
        return self._uids[number - 1]

    def stored_size(self, number: int) -> int:
        """The size of message C{number} as stored (C{MessageInfo.size}), not its CRLF size."""
        return self._stored[number - 1]

    def live(self) -> Iterator[tuple[int, int]]:
        """Every message not marked deleted: its number and UID, in order."""
        deleted = self._deleted
        for number, uid in enumerate(self._uids, 1):
            if number not in deleted:
                yield number, uid

    def unique_id(self, uid: int) -> bytes:
        """
        The UIDL of a message (RFC 1939 7): UIDVALIDITY and UID, which the store keeps stable
        across sessions and restarts, the same whichever session asks.
        """
        return b"%d.%d" % (self._uidvalidity, uid)

    def uidl_listing(self) -> bytes:
        """The lines of a UIDL listing of every live message (RFC 1939 7), CRLF-terminated."""
        # Built in one pass: a unique-id line starts with a digit, so nothing needs stuffing.
        prefix = b"%d." % self._uidvalidity
        deleted = self._deleted
        return b"".join(
            [
                b"%d %s%d\r\n" % (n, prefix, uid)
                for n, uid in enumerate(self._uids, 1)
                if n not in deleted
            ]
        )

    def delete(self, number: int) -> None:
        self.get(number)
        self._deleted.add(number)

    def undelete_all(self) -> None:
        self._deleted.clear()

    def deleted_uids(self) -> list[int]:
        return sorted(self._uids[n - 1] for n in self._deleted)

    def stat(self) -> tuple[int, int]:
        """Count and total canonical size of the live messages; every size must be known."""
        count = total = 0
        for number, _ in self.live():
            count += 1
            total += self.sizes[number]
        return count, total
