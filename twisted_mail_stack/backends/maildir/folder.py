"""
One Maildir++ folder: its message files and its index kept in step. Blocking; every method
runs in a worker thread, one at a time per folder (a L{threading.Lock} guards that too).

Every operation takes the L{View} of the calling store instance (what it has told its listeners
so far) and returns L{Outcome}: its result, the changes to report (those made by other
processes since the view, then its own, in order) and the view after them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from sqlite3 import Connection
from typing import Generic, TypeVar

from attrs import frozen

from ...errors import NoSuchMailbox, NoSuchMessage
from ...names import is_inbox
from ...values import (
    Change,
    Flag,
    FlagsChanged,
    MailboxReset,
    MessageAdded,
    MessageExpunged,
    MessageInfo,
    StoreMode,
)
from . import rows, scan
from .content import read_file
from .files import clean_tmp, fsync_dir, link_tmp, unlink_quietly
from .index import FolderIndex, Meta
from .layout import UIDVALIDITY_FILE, key_of, sized, tagged, with_flags

T = TypeVar("T")


@frozen
class View:
    """What one store instance has reported of a folder: up to C{modseq} under C{uidvalidity}."""

    uidvalidity: int = 0  # 0: nothing yet
    modseq: int = 0


@frozen
class Outcome(Generic[T]):
    result: T
    changes: list[Change]
    view: View


class FolderReset(Exception):
    """The folder was renumbered since the handle was opened; C{changes} must still be reported."""

    def __init__(self, changes: list[Change], view: View) -> None:
        super().__init__("mailbox was reset (new UIDVALIDITY); open it again")
        self.changes = changes
        self.view = view


@frozen
class Stored:
    """A message's file, as the index knows it."""

    uid: int
    key: str
    path: str  # "new/..." or "cur/..."
    flags: frozenset[str]
    internal_date: int  # microseconds since the epoch
    size: int


class Folder:
    """The folder at directory C{path}, called C{name} in change events."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        account = path if is_inbox(name) else os.path.dirname(path)
        self.index = FolderIndex(path, name, os.path.join(account, UIDVALIDITY_FILE))
        self._lock = threading.Lock()
        self._tmp_cleaned = False
        #: Looked for files added by others (or whose index rows a crash lost) once.
        self._scanned = False

    def close(self) -> None:
        with self._lock:
            self.index.close()

    # -- reading ---------------------------------------------------------------------------

    def refresh(self, view: View, expect: int | None = None) -> Outcome[int]:
        """Pick up changes made by others; the result is the UIDVALIDITY."""
        with self._lock, self._synced() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            return Outcome(meta.uidvalidity, changes, view)

    def status(self, view: View) -> Outcome[tuple[Meta, int, int, int]]:
        """The meta, the number of messages, of those without \\Seen and of unclaimed \\Recent."""
        with self._lock, self._synced() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view)
            count, unseen, recent = conn.execute(
                "SELECT count(*), count(*) - count(nullif(instr(flags, ?), 0)),"
                " count(nullif(uid > ?, 0)) FROM messages",
                (Flag.SEEN, meta.recent),
            ).fetchone()
            return Outcome((meta, count, unseen, recent), changes, view)

    def messages(self, view: View, expect: int) -> Outcome[list[MessageInfo]]:
        with self._lock, self._synced() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            found = conn.execute(f"SELECT {rows.INFO} FROM messages ORDER BY uid")
            return Outcome([rows.info(*r) for r in found], changes, view)

    def sizes(self, view: View, expect: int) -> Outcome[tuple[list[int], list[int]]]:
        """Every UID, ascending, and its size: L{messages} without the per-row objects."""
        with self._lock, self._synced() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            # One row for the whole folder: a query of 10,000 rows steps (and hands the GIL
            # over) 10,000 times.
            uids, sizes = conn.execute(
                "SELECT group_concat(uid), group_concat(size)"
                " FROM (SELECT uid, size FROM messages ORDER BY uid)"
            ).fetchone()
        return Outcome(parse_sizes(uids, sizes), changes, view)

    def contents(self, view: View) -> Outcome[tuple[list[int], int]]:
        """Every UID, and the HIGHESTMODSEQ (to report the folder going away)."""
        with self._lock, self.index.reading() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view)
            uids = [uid for (uid,) in conn.execute("SELECT uid FROM messages ORDER BY uid")]
            return Outcome((uids, meta.highestmodseq), changes, view)

    def get(self, view: View, expect: int, uids: Sequence[int]) -> Outcome[list[MessageInfo]]:
        with self._lock, self.index.reading() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            infos = [rows.info(*r) for r in rows.select(conn, rows.INFO, "uid", uids)]
            return Outcome(sorted(infos, key=lambda i: i.uid), changes, view)

    def stored(self, view: View, expect: int, uids: Sequence[int]) -> Outcome[list[Stored]]:
        """The files of those C{uids} the folder holds, by ascending UID."""
        with self._lock, self.index.reading() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            columns = "uid, key, path, flags, internal_date, size"
            found = [
                Stored(u, k, p, frozenset(f.split()), d, s)
                for u, k, p, f, d, s in rows.select(conn, columns, "uid", uids)
            ]
            return Outcome(sorted(found, key=lambda s: s.uid), changes, view)

    def open_file(self, view: View, expect: int, uid: int) -> Outcome[tuple[int, int]]:
        """Open a message: its file descriptor and size. L{NoSuchMessage} if not held."""
        outcome = self.stored(view, expect, [uid])
        if not outcome.result:
            raise NoSuchMessage(uid)
        stored = outcome.result[0]
        with self._lock:
            fd = self._retry_on_vanish(
                stored.key, stored.path, lambda p: os.open(os.path.join(self.path, p), os.O_RDONLY)
            )
        if fd is None:
            raise NoSuchMessage(uid)
        return Outcome((fd, stored.size), outcome.changes, outcome.view)

    def read_whole(
        self, view: View, expect: int, uids: Sequence[int], max_size: int
    ) -> Outcome[dict[int, bytes]]:
        """The bytes of those C{uids} held whose size is at most C{max_size}, by UID."""
        out: dict[int, bytes] = {}
        with self._lock:
            with self.index.reading() as (conn, meta):
                changes, view = self._catch_up(conn, meta, view, expect)
                found = rows.select(conn, "uid, key, path, size", "uid", uids)
            for uid, key, path, size in found:
                if size > max_size:
                    continue
                try:  # where the index says, unless another program renamed it since
                    out[uid] = read_file(self.path, path, size)
                except FileNotFoundError:
                    data = self._retry_on_vanish(
                        key, path, partial(read_file, self.path, size=size)
                    )
                    if data is not None:
                        out[uid] = data
        return Outcome(out, changes, view)

    # -- writing ---------------------------------------------------------------------------

    def add(
        self,
        view: View,
        files: Sequence[tuple[str, int, frozenset[str], int]],
    ) -> Outcome[list[MessageInfo]]:
        """
        Move prepared C{tmp/} files (path, size, flags, internal date in µs) into the folder,
        durably, with ascending UIDs, in one index transaction and one fsync per directory.
        All or nothing: on failure the files are back in C{tmp/} (the caller removes them).

        Each file is named with the UID it gets (L{layout.tagged}) and is durable before the
        index row is committed; that commit does not wait for the disk: a row lost in a crash
        is rebuilt from the name with the same UID (L{scan}), which the first use of the
        folder in a process does before any UID is given out here.
        """
        with self._lock:
            if not self._scanned:
                self._recover()
            with self._placing() as placed, self.index.writing(durable=False) as (conn, meta):
                return self._add(conn, meta, view, files, placed)

    def _add(
        self,
        conn: Connection,
        meta: Meta,
        view: View,
        files: Sequence[tuple[str, int, frozenset[str], int]],
        placed: list[tuple[str, str]],
    ) -> Outcome[list[MessageInfo]]:
        changes, _ = self._catch_up(conn, meta, view)
        new = []
        uidvalidity, uid = meta.uidvalidity, meta.uidnext  # rows.insert gives these in order
        for n, (tmp, size, flags, date_us) in enumerate(files):
            name = tagged(sized(os.path.basename(tmp), size), uidvalidity, uid + n)
            path = with_flags("new/" + name, flags)
            final = os.path.join(self.path, path)
            os.rename(tmp, final)
            placed.append((final, tmp))
            new.append((key_of(path[4:]), path, flags, date_us, size))
        # Maildir: a rename is durable once its directory is; only then the index row.
        for sub in {path[:3] for _, path, *_ in new}:
            fsync_dir(os.path.join(self.path, sub))
        first, modseq = rows.insert(conn, meta, new)
        assert first == uid, "UIDs given in the order of the names"
        infos = [
            rows.info(uid + i, rows.flag_text(flags), date_us, size, modseq + i)
            for i, (_, _, flags, date_us, size) in enumerate(new)
        ]
        changes.extend(MessageAdded(self.name, info) for info in infos)
        return Outcome(infos, changes, self._view(meta))

    def set_flags(
        self,
        view: View,
        expect: int,
        uids: Sequence[int],
        flags: frozenset[str],
        mode: StoreMode,
        unchanged_since: int | None,
    ) -> Outcome[tuple[list[MessageInfo], list[int]]]:
        with self._lock, self.index.writing() as (conn, meta):
            changes, _ = self._catch_up(conn, meta, view, expect)
            columns = "uid, key, path, flags, internal_date, size, modseq"
            updated, conflicts, renamed = [], [], False
            for uid, key, path, text, date_us, size, modseq in sorted(
                rows.select(conn, columns, "uid", uids)
            ):
                if unchanged_since is not None and modseq > unchanged_since:
                    conflicts.append(uid)
                    continue
                old = frozenset(text.split())
                if mode is StoreMode.REPLACE:
                    new = flags
                elif mode is StoreMode.ADD:
                    new = old | flags
                else:
                    new = old - flags
                if new == old:
                    continue
                target = self._retry_on_vanish(key, path, partial(self._rename_for, flags=new))
                if target is None:
                    continue  # deleted by another program; the next scan records it
                renamed = renamed or target != path
                modseq = meta.next_modseq()
                text = rows.flag_text(new)
                conn.execute(
                    "UPDATE messages SET path = ?, flags = ?, modseq = ? WHERE uid = ?",
                    (target, text, modseq, uid),
                )
                updated.append(rows.info(uid, text, date_us, size, modseq))
            if renamed:
                fsync_dir(os.path.join(self.path, "cur"))
            changes.extend(FlagsChanged(self.name, info) for info in updated)
            return Outcome((updated, conflicts), changes, self._view(meta))

    def remove(
        self, view: View, expect: int | None, uids: Sequence[int] | None, deleted_only: bool
    ) -> Outcome[list[int]]:
        """
        Remove the messages C{uids} (all if None), only those flagged \\Deleted if
        C{deleted_only}. C{expect=None} also accepts a renumbered folder (rollback of a delivery).
        """
        with self._lock, self.index.writing() as (conn, meta):
            changes, _ = self._catch_up(conn, meta, view, expect)
            columns = "uid, key, path, flags, added"
            if uids is None:
                found = conn.execute(f"SELECT {columns} FROM messages").fetchall()
            else:
                found = rows.select(conn, columns, "uid", uids)
            removed = []
            if found:
                # A delivery's row may not be durable yet (Folder.add); once its file is gone,
                # a crash could not bring the row back: make it durable first.
                self.index.sync_wal()
            for uid, key, path, text, added in sorted(found):
                if deleted_only and Flag.DELETED not in text.split():
                    continue
                self._retry_on_vanish(key, path, lambda p: os.unlink(os.path.join(self.path, p)))
                modseq = rows.expunge(conn, meta, uid, added)
                removed.append(uid)
                changes.append(MessageExpunged(self.name, uid, modseq))
            if removed:
                fsync_dir(os.path.join(self.path, "new"))
                fsync_dir(os.path.join(self.path, "cur"))
            return Outcome(removed, changes, self._view(meta))

    def claim_recent(self, view: View, expect: int) -> Outcome[list[int]]:
        """
        The UIDs no earlier claim returned (RFC 3501 2.3.2), in any process. Only indexed
        messages: no directory scan here, so a claim after each delivery costs O(1) in the
        folder's size; files other programs drop are indexed by the next scan (poller, listing)
        and claimed by the claim their notification brings.
        """
        with self._lock, self.index.writing() as (conn, meta):
            changes, _ = self._catch_up(conn, meta, view, expect)
            found = conn.execute(
                "SELECT uid FROM messages WHERE uid > ? ORDER BY uid", (meta.recent,)
            )
            recent = [uid for (uid,) in found]
            meta.recent = meta.uidnext - 1
            return Outcome(recent, changes, self._view(meta))

    def export(
        self, view: View, expect: int, uids: Sequence[int], target: Folder
    ) -> Outcome[list[tuple[int, tuple[str, int, frozenset[str], int]]]]:
        """
        Hard-link the files of those C{uids} the folder holds into C{target}'s C{tmp/}, ready
        for L{add} there: (uid, (tmp path, size, flags, internal date)) by ascending UID.
        """
        if not all(os.path.isdir(os.path.join(target.path, sub)) for sub in ("cur", "tmp")):
            raise NoSuchMailbox(target.name)
        outcome = self.stored(view, expect, uids)
        out: list[tuple[int, tuple[str, int, frozenset[str], int]]] = []
        with self._lock:
            try:
                for s in outcome.result:
                    linked = self._retry_on_vanish(
                        s.key, s.path, lambda p: link_tmp(target.path, os.path.join(self.path, p))
                    )
                    if linked is not None:
                        out.append((s.uid, (*linked, s.flags, s.internal_date)))
            except BaseException:
                unlink_quietly(*(f[0] for _, f in out))
                raise
        return Outcome(out, outcome.changes, outcome.view)

    # -- helpers ---------------------------------------------------------------------------

    def _view(self, meta: Meta) -> View:
        return View(meta.uidvalidity, meta.highestmodseq)

    def _catch_up(
        self, conn: Connection, meta: Meta, view: View, expect: int | None = None
    ) -> tuple[list[Change], View]:
        """The changes others made since C{view}, by modseq; or a reset to the new UIDVALIDITY."""
        now = self._view(meta)
        if view.uidvalidity == 0:
            changes: list[Change] = []
        elif view.uidvalidity != meta.uidvalidity:
            changes = [MailboxReset(self.name, meta.uidvalidity)]
        elif view.modseq >= meta.highestmodseq:
            changes = []
        else:
            changes = rows.changes_since(conn, self.name, view.modseq)
        if expect is not None and expect != meta.uidvalidity:
            raise FolderReset(changes, now)
        return changes, now

    def _rename_for(self, path: str, flags: frozenset[str]) -> str:
        target = with_flags(path, flags)
        if target != path:
            os.rename(os.path.join(self.path, path), os.path.join(self.path, target))
        return target

    def _retry_on_vanish(self, key: str, path: str, action: Callable[[str], T]) -> T | None:
        """
        Do C{action(path)}; if the file is gone, another program may have renamed it (new/ to
        cur/, other flag letters): find it again by its key and retry. None if it is gone.
        """
        try:
            return action(path)
        except FileNotFoundError:
            pass
        found = scan.find(self.path, key)
        try:
            return None if found is None else action(found)
        except FileNotFoundError:
            return None

    @contextmanager
    def _placing(self) -> Iterator[list[tuple[str, str]]]:
        """
        Collect files placed in new/ or cur/ as (path, tmp path they came from); if the
        operation fails, put them back in tmp/ (remove those that cannot go back).
        """
        placed: list[tuple[str, str]] = []
        try:
            yield placed
        except BaseException:
            for final, tmp in reversed(placed):
                try:
                    os.rename(final, tmp)
                except OSError:
                    unlink_quietly(final)
            # A crash now must not bring back a copy whose delivery was refused.
            for sub in {os.path.dirname(final) for final, _ in placed}:
                try:
                    fsync_dir(sub)
                except OSError:
                    pass
            raise

    # -- scanning --------------------------------------------------------------------------

    @contextmanager
    def _synced(self) -> Iterator[tuple[Connection, Meta]]:
        """A read view after picking up files added, renamed or removed by other programs."""
        self._sync()
        with self.index.reading() as view:
            yield view

    def _sync(self) -> None:
        if not self._tmp_cleaned:
            clean_tmp(self.path)
            self._tmp_cleaned = True
        self._scan()

    def _scan(self) -> None:
        self._scanned = True
        with self.index.reading() as (_, meta):
            if scan.unchanged(self.path, meta):
                return
        with self.index.writing() as (conn, meta):
            scan.scan(self.path, conn, meta)

    def _recover(self) -> None:
        """Before the first L{add}: index the deliveries whose rows a crash lost, if any."""
        self._scanned = True
        with self.index.reading() as (_, meta):
            if scan.unchanged(self.path, meta) or not scan.named_ahead(self.path, meta):
                return
        with self.index.writing() as (conn, meta):
            scan.scan(self.path, conn, meta)


def parse_sizes(uids: str | None, sizes: str | None) -> tuple[list[int], list[int]]:
    """UIDs and sizes from two comma-separated lists in the same order, sorted by UID."""
    if not uids or not sizes:
        return [], []
    pairs = (list(map(int, uids.split(","))), list(map(int, sizes.split(","))))
    if any(a >= b for a, b in zip(pairs[0], pairs[0][1:], strict=False)):
        # group_concat's order is SQLite's choice, not a promise: restore it.
        order = sorted(zip(*pairs, strict=True))
        pairs = ([u for u, _ in order], [s for _, s in order])
    return pairs
