"""
The selected mailbox as one IMAP session sees it (RFC 3501 2.3.1, 5.2, 7.4.1).

The session's view is the list of UIDs the client has been told about, ascending, so that a
message sequence number is an index into it. Changes reported by the mailbox contract's
listeners are queued and folded into the view only when the session may tell the client:
new messages and flag changes at the end of any command, expunges only where RFC 3501 7.4.1
allows them (never during FETCH, STORE or SEARCH; never while no command is in progress).

No Twisted and no I/O here: L{SelectedMailbox.updates} returns the bytes to send.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence

from ..values import (
    Change,
    Flag,
    FlagsChanged,
    MailboxReset,
    MailboxStatus,
    MessageAdded,
    MessageExpunged,
    MessageInfo,
)
from . import _format as fmt
from ._sequence import STAR, SequenceSet

__all__ = ["SelectedMailbox", "BadSequence", "ListingCache", "PERMANENT", "listing_key"]

#: The flags a client may store; keywords may be created too (C{\\*}).
PERMANENT = sorted(Flag.SYSTEM)
#: Formatted C{FLAGS (...)} items a view keeps, one per flag set.
_FLAG_ITEMS = 256


def listing_key(user: Hashable, status: MailboxStatus) -> Hashable:
    """
    What identifies one state of a folder for L{ListingCache}: every change to its messages
    (arrival, expunge, flags; by any session or program) gives it a new HIGHESTMODSEQ
    (RFC 7162 3.1.2.1); UIDNEXT and the count are checked too, for a backend that is lax.
    """
    return (user, status.uidvalidity, status.uidnext, status.messages, status.highestmodseq)


class ListingCache:
    """
    The message lists of recently selected folders, so that SELECT of a folder that has not
    changed since (a client polling, or syncing in a new session) need not list it again.
    Bounded by the number of messages held (least recently used go first); one state per folder.
    """

    def __init__(self, budget: int = 200_000) -> None:
        self.budget = budget
        self._held = 0
        self._entries: OrderedDict[tuple[Hashable, str], tuple[Hashable, Sequence[MessageInfo]]]
        self._entries = OrderedDict()

    def get(self, folder: tuple[Hashable, str], key: Hashable) -> Sequence[MessageInfo] | None:
        """The listing of C{folder} (user, name) in state C{key}, if held."""
        entry = self._entries.get(folder)
        if entry is None or entry[0] != key:
            return None
        self._entries.move_to_end(folder)
        return entry[1]

    def put(
        self, folder: tuple[Hashable, str], key: Hashable, messages: Sequence[MessageInfo]
    ) -> None:
        """Hold C{messages}, the whole listing of C{folder} in state C{key}."""
        old = self._entries.pop(folder, None)
        if old is not None:
            self._held -= len(old[1])
        if len(messages) > self.budget:
            return
        self._entries[folder] = (key, tuple(messages))
        self._held += len(messages)
        while self._held > self.budget:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._held -= len(dropped)


class BadSequence(Exception):
    """A message sequence number beyond the mailbox (RFC 3501 6.4.8, 9: answered with BAD)."""


class SelectedMailbox:
    """The view of one selected folder; feed it L{Change}s with L{on_change}."""

    def __init__(
        self,
        name: str,
        messages: Iterable[MessageInfo],
        *,
        uidvalidity: int,
        read_only: bool,
        recent: Iterable[int] = (),
        highestmodseq: int = 0,
    ) -> None:
        self.name = name
        self.uidvalidity = uidvalidity
        self.read_only = read_only
        self.infos: dict[int, MessageInfo] = {m.uid: m for m in messages}
        #: UIDs in the order of their sequence numbers, expunged ones included until announced.
        self.uids: list[int] = sorted(self.infos)
        #: UIDs this session claimed as \\Recent (some may not have reached the view yet).
        self.recent: set[int] = set(recent)
        self._recent_in_view = len(self.recent & self.infos.keys())
        self.highestmodseq = max([highestmodseq, *(m.modseq for m in self.infos.values())])
        #: Messages the client knows of (the last EXISTS, less the EXPUNGEs since).
        self.announced = len(self.uids)
        self.announced_recent = self.recent_count
        self._gone: set[int] = set()  # expunged in the folder, still in the view
        self._flags_pending: set[int] = set()
        self.reset = False
        self._recent_due = False
        #: The flags the client was told the mailbox defines (RFC 3501 7.2.6 FLAGS).
        self.defined_flags: set[str] = set(Flag.SYSTEM)
        for message in self.infos.values():
            self.defined_flags |= message.flags
        self._new_flags: set[str] = set()
        #: New UIDs whose \Recent state the session has yet to claim.
        self.unclaimed: list[int] = []
        # (number, info) for every message of the view, built on demand and dropped whenever
        # the view or an info changes: FETCH, STORE and SEARCH over a large mailbox share it.
        self._rows: list[tuple[int, MessageInfo]] | None = None
        self._flag_items: dict[object, bytes] = {}

    # -- listening ---------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """The listener: record C{change}; idempotent for events seen twice (snapshot races)."""
        if isinstance(change, MessageAdded | FlagsChanged):
            self._rows = None
            info = change.info
            known = self.infos.get(info.uid)
            if info.uid in self._gone:
                return
            if known is None:
                if self.uids and info.uid < self.uids[-1]:
                    return  # older than what we hold: it left before we looked
                self.infos[info.uid] = info
                self.uids.append(info.uid)
                self.unclaimed.append(info.uid)
                if info.uid in self.recent:
                    self._recent_in_view += 1
            elif info.modseq > known.modseq or (
                info.modseq == known.modseq and info.flags != known.flags
            ):
                self.infos[info.uid] = info
                if info.flags != known.flags:
                    self._flags_pending.add(info.uid)
            if not info.flags <= self.defined_flags:
                self._new_flags |= info.flags - self.defined_flags
            self.highestmodseq = max(self.highestmodseq, info.modseq)
        elif isinstance(change, MessageExpunged):
            if change.uid in self.infos:
                self._gone.add(change.uid)
            self.highestmodseq = max(self.highestmodseq, change.modseq)
        elif isinstance(change, MailboxReset):
            self.reset = True

    # -- what the session has to say ------------------------------------------------

    @property
    def recent_count(self) -> int:
        """Messages of the view that are \\Recent for this session."""
        return self._recent_in_view

    def claimed(self, uids: Iterable[int]) -> None:
        """The session claimed these new UIDs as \\Recent (L{unclaimed} is cleared)."""
        for uid in uids:
            if uid not in self.recent:
                self.recent.add(uid)
                if uid in self.infos:
                    self._recent_in_view += 1
        self.unclaimed = []

    def updates(self, *, expunge: bool, condstore: bool) -> bytes:
        """
        The untagged responses that bring the client up to date, and the view updated to match:
        EXPUNGE (only if C{expunge}), EXISTS, RECENT, then FETCH of changed flags
        (RFC 3501 7.3.1, 7.4.1; RFC 7162 3.2.4 adds MODSEQ once CONDSTORE is on).
        """
        out = [self.flag_update()]
        if expunge and self._gone:
            out += self._expunge()
        grew = len(self.uids) > self.announced
        if grew:
            self.announced = len(self.uids)
            out.append(fmt.exists(self.announced))
        # RECENT goes with new messages (once they are claimed: see recent_update); after
        # EXPUNGEs the client counts for itself.
        self._recent_due = self._recent_due or grew
        if not self.unclaimed:
            out.append(self.recent_update())
        for uid in sorted(self._flags_pending - self._gone):
            number = self.number(uid)
            if number is not None and number <= self.announced:
                out.append(self.flags_fetch(number, self.infos[uid], condstore=condstore))
        self._flags_pending &= self._gone
        return b"".join(out)

    def flag_update(self) -> bytes:
        """
        C{* FLAGS} and C{* OK [PERMANENTFLAGS]} again when a keyword new to this mailbox has
        appeared (RFC 3501 7.2.6), to be sent before any response that shows it.
        """
        if not self._new_flags:
            return b""
        self.defined_flags |= self._new_flags
        self._new_flags = set()
        out = fmt.flags_response(self.defined_flags)
        if not self.read_only:
            out += fmt.untagged_status(b"OK", "flags permitted", self.permanent_flags())
        return out

    def permanent_flags(self) -> bytes:
        """
        C{PERMANENTFLAGS}: the system flags, every keyword defined here (stored like any other:
        RFC 3501 7.1; imaptest warns of a keyword in FLAGS but not here) and C{\\*}.
        """
        keywords = sorted(self.defined_flags - Flag.SYSTEM)
        return fmt.permanentflags([*PERMANENT, *keywords])

    def recent_update(self) -> bytes:
        """C{* n RECENT} if new messages came or more are \\Recent than the client was told."""
        # Only messages the client was told of (EXISTS): a claim may cover later arrivals too,
        # and RECENT above EXISTS is wrong (imaptest stress: "seq too high ... * 2 RECENT").
        unannounced = sum(uid in self.recent for uid in self.uids[self.announced :])
        recent = self.recent_count - unannounced
        due, self._recent_due = self._recent_due or recent > self.announced_recent, False
        self.announced_recent = recent
        return fmt.recent(recent) if due else b""

    def _expunge(self) -> list[bytes]:
        """Drop the expunged messages from the view, with an EXPUNGE for each the client knew."""
        gone, self._gone = self._gone, set()
        self._rows = None
        out = []
        if len(gone) < 64:
            # Few: find each by bisection (list deletion is a memmove).
            for uid in sorted(gone):
                index = bisect.bisect_left(self.uids, uid)
                del self.uids[index]
                out += self._forget(uid, index)
            return out
        # Many: one pass; each number counts the EXPUNGEs already sent (RFC 3501 7.4.1).
        kept = []
        removed = 0
        for index, uid in enumerate(self.uids):
            if uid in gone:
                out += self._forget(uid, index - removed)
                removed += 1
            else:
                kept.append(uid)
        self.uids = kept
        return out

    def _forget(self, uid: int, index: int) -> list[bytes]:
        del self.infos[uid]
        self._flags_pending.discard(uid)
        if uid in self.recent:
            self.recent.discard(uid)
            self._recent_in_view -= 1
        if index < self.announced:
            self.announced -= 1
            return [fmt.expunge(index + 1)]
        return []

    def flags_fetch(
        self, number: int, info: MessageInfo, *, condstore: bool, flags: bool = True
    ) -> bytes:
        """C{* n FETCH (FLAGS (...) UID u [MODSEQ (m)])} for message C{number}."""
        items = [self._flags_item(info)] if flags else []
        items.append(fmt.fetch_uid(info.uid))
        if condstore:
            items.append(fmt.fetch_modseq(info.modseq))
        return fmt.fetch_line(number, items)

    def _flags_item(self, info: MessageInfo) -> bytes:
        """C{FLAGS (...)} of C{info}: formatted once per flag set (a mailbox has few)."""
        recent = info.uid in self.recent
        key: object = (info.flags, True) if recent else info.flags  # a tuple is no frozenset
        item = self._flag_items.get(key)
        if item is None:
            if len(self._flag_items) >= _FLAG_ITEMS:
                self._flag_items.clear()  # a client making keyword sets without end
            item = self._flag_items[key] = fmt.fetch_flags(info.flags, recent=recent)
        return item

    def reported(self, uids: Iterable[int]) -> None:
        """The session told the client the current flags of C{uids} itself (STORE, FETCH)."""
        if self._flags_pending:
            self._flags_pending.difference_update(uids)

    # -- numbers ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.uids)

    def number(self, uid: int) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def messages(self) -> list[tuple[int, MessageInfo]]:
        """Every message of the view as (sequence number, info), ascending (do not modify)."""
        rows = self._rows
        if rows is None or len(rows) != len(self.uids):
            uids = self.uids
            rows = self._rows = list(enumerate(map(self.infos.__getitem__, uids), 1))
        return rows

    def resolve(self, sequence: SequenceSet, *, uid: bool) -> list[tuple[int, MessageInfo]]:
        """
        The messages a sequence set (or UID set, C{uid} True) names, as (sequence number,
        info) ascending. C{*} is the last message (or its UID). A UID set ignores UIDs that do
        not exist (RFC 3501 6.4.8); a message number beyond the view raises L{BadSequence}.
        """
        uids = self.uids
        if uid:
            largest = uids[-1] if uids else 0
            slices = []
            for lo, hi in sequence.resolve(largest):
                slices.append((bisect.bisect_left(uids, lo), bisect.bisect_right(uids, hi)))
        else:
            count = len(uids)
            if count == 0 and all(STAR in r for r in sequence.ranges):
                return []  # "1:*" in an empty mailbox names nothing; clients send it freely
            spans = sequence.resolve(count)
            if not spans or spans[-1][1] > count or spans[0][0] < 1:
                raise BadSequence("message number out of range")
            slices = [(lo - 1, hi) for lo, hi in spans]
        if self._rows is None and sum(stop - start for start, stop in slices) * 8 < len(uids):
            # A few messages (STORE n, FETCH n) right after a change: not worth all the rows.
            infos = self.infos
            return [(i + 1, infos[uids[i]]) for start, stop in slices for i in range(start, stop)]
        rows = self.messages()
        if len(slices) == 1:
            start, stop = slices[0]
            return rows[start:stop]
        out: list[tuple[int, MessageInfo]] = []
        for start, stop in slices:
            out += rows[start:stop]
        return out

    def first_unseen(self) -> int | None:
        for n, uid in enumerate(self.uids, 1):
            if "\\Seen" not in self.infos[uid].flags:
                return n
        return None
