"""
One Maildir++ folder: its message files and its index kept in step. Blocking; every method
runs in a worker thread, one at a time per folder (a L{threading.Lock} guards that too).

Every operation takes the L{View} of the calling store instance (what it has told its listeners
so far) and returns L{Outcome}: its result, the changes to report (those made by other
processes since the view, then its own, in order) and the view after them.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from sqlite3 import Connection
from typing import Generic, TypeVar

from attrs import frozen

from ...errors import NoSuchMailbox, NoSuchMessage, StorageError
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
from .files import clean_tmp, fsync_dir, link_tmp, unlink_quietly
from .index import FolderIndex, Meta
from .layout import UIDVALIDITY_FILE, flags_of, parse_name, sized, with_flags

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: A directory mtime this close to now may still change within the same clock tick without
#: the mtime moving, so it is not trusted for skipping the next listing (Dovecot does the same).
_MTIME_SLACK_NS = 2_000_000_000
_CHUNK = 500  # UIDs per "IN (...)" query


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


def to_us(date: datetime) -> int:
    """Microseconds since the epoch; L{ValueError} for a naive date."""
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError(f"internal date must be timezone-aware: {date!r}")
    return (date - _EPOCH) // timedelta(microseconds=1)


def _info(uid: int, flags: str, date_us: int, size: int, modseq: int) -> MessageInfo:
    return MessageInfo(
        uid=uid,
        flags=frozenset(flags.split()),
        internal_date=_EPOCH + timedelta(microseconds=date_us),
        size=size,
        modseq=modseq,
    )


def _flag_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(flags))


_INFO_COLUMNS = "uid, flags, internal_date, size, modseq"


class Folder:
    """The folder at directory C{path}, called C{name} in change events."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        account = path if is_inbox(name) else os.path.dirname(path)
        self.index = FolderIndex(path, os.path.join(account, UIDVALIDITY_FILE))
        self._lock = threading.Lock()
        self._tmp_cleaned = False

    def close(self) -> None:
        with self._lock:
            self.index.close()

    # -- reading ---------------------------------------------------------------------------

    def refresh(self, view: View, expect: int | None = None) -> Outcome[int]:
        """Pick up changes made by others; the result is the UIDVALIDITY."""
        with self._lock, self._synced() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            return Outcome(meta.uidvalidity, changes, view)

    def status(self, view: View) -> Outcome[tuple[Meta, int, int]]:
        """The meta, the number of messages and of those without \\Seen."""
        with self._lock, self._synced() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view)
            count, unseen = conn.execute(
                "SELECT count(*), count(*) - count(nullif(instr(flags, ?), 0)) FROM messages",
                (Flag.SEEN,),
            ).fetchone()
            return Outcome((meta, count, unseen), changes, view)

    def messages(self, view: View, expect: int) -> Outcome[list[MessageInfo]]:
        with self._lock, self._synced() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            rows = conn.execute(f"SELECT {_INFO_COLUMNS} FROM messages ORDER BY uid")
            return Outcome([_info(*r) for r in rows], changes, view)

    def contents(self, view: View) -> Outcome[tuple[list[int], int]]:
        """Every UID, and the HIGHESTMODSEQ (to report the folder going away)."""
        with self._lock, self.index.reading() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view)
            uids = [uid for (uid,) in conn.execute("SELECT uid FROM messages ORDER BY uid")]
            return Outcome((uids, meta.highestmodseq), changes, view)

    def get(self, view: View, expect: int, uids: Sequence[int]) -> Outcome[list[MessageInfo]]:
        with self._lock, self.index.reading() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            infos = [_info(*r) for r in self._select(conn, _INFO_COLUMNS, uids)]
            return Outcome(sorted(infos, key=lambda i: i.uid), changes, view)

    def stored(self, view: View, expect: int, uids: Sequence[int]) -> Outcome[list[Stored]]:
        """The files of those C{uids} the folder holds, by ascending UID."""
        with self._lock, self.index.reading() as (conn, meta):
            changes, view = self._catch_up(conn, meta, view, expect)
            rows = self._select(conn, "uid, key, path, flags, internal_date, size", uids)
            found = [Stored(u, k, p, frozenset(f.split()), d, s) for u, k, p, f, d, s in rows]
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

    # -- writing ---------------------------------------------------------------------------

    def add(
        self,
        view: View,
        files: Sequence[tuple[str, int, frozenset[str], int]],
    ) -> Outcome[list[MessageInfo]]:
        """
        Move prepared C{tmp/} files (path, size, flags, internal date in µs) into the folder,
        durably, with ascending UIDs. All or nothing.
        """
        with self._lock, self._placing() as placed, self.index.writing() as (conn, meta):
            changes, _ = self._catch_up(conn, meta, view)
            infos = []
            for tmp, size, flags, date_us in files:
                path = with_flags("new/" + sized(os.path.basename(tmp), size), flags)
                os.rename(tmp, os.path.join(self.path, path))
                placed.append(os.path.join(self.path, path))
                key = parse_name(path[4:]).key
                infos.append(self._insert(conn, meta, key, path, flags, date_us, size))
            # Maildir: a rename is durable once its directory is; only then the index row.
            for sub in {os.path.basename(os.path.dirname(p)) for p in placed}:
                fsync_dir(os.path.join(self.path, sub))
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
            rows = self._select(conn, "uid, key, path, flags, internal_date, size, modseq", uids)
            updated, conflicts, renamed = [], [], False
            for uid, key, path, text, date_us, size, modseq in sorted(rows):
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
                conn.execute(
                    "UPDATE messages SET path = ?, flags = ?, modseq = ? WHERE uid = ?",
                    (target, _flag_text(new), modseq, uid),
                )
                updated.append(_info(uid, _flag_text(new), date_us, size, modseq))
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
                rows = conn.execute(f"SELECT {columns} FROM messages").fetchall()
            else:
                rows = self._select(conn, columns, uids)
            removed = []
            for uid, key, path, text, added in sorted(rows):
                if deleted_only and Flag.DELETED not in text.split():
                    continue
                self._retry_on_vanish(key, path, lambda p: os.unlink(os.path.join(self.path, p)))
                self._expunge_row(conn, meta, uid, added)
                removed.append(uid)
                changes.append(MessageExpunged(self.name, uid, meta.highestmodseq))
            if removed:
                fsync_dir(os.path.join(self.path, "new"))
                fsync_dir(os.path.join(self.path, "cur"))
            return Outcome(removed, changes, self._view(meta))

    def claim_recent(self, view: View, expect: int) -> Outcome[list[int]]:
        """The UIDs no earlier claim returned (RFC 3501 2.3.2), in any process."""
        with self._lock:
            self._sync()
            with self.index.writing() as (conn, meta):
                changes, _ = self._catch_up(conn, meta, view, expect)
                rows = conn.execute(
                    "SELECT uid FROM messages WHERE uid > ? ORDER BY uid", (meta.recent,)
                )
                recent = [uid for (uid,) in rows]
                meta.recent = meta.uidnext - 1
                return Outcome(recent, changes, self._view(meta))

    def export(
        self, view: View, expect: int, uids: Sequence[int], target: str
    ) -> Outcome[list[tuple[int, tuple[str, int, frozenset[str], int]]]]:
        """
        Hard-link the files of those C{uids} the folder holds into C{target}'s C{tmp/}, ready
        for L{add} there: (uid, (tmp path, size, flags, internal date)) by ascending UID.
        """
        if not all(os.path.isdir(os.path.join(target, sub)) for sub in ("cur", "tmp")):
            raise NoSuchMailbox(target)
        outcome = self.stored(view, expect, uids)
        out: list[tuple[int, tuple[str, int, frozenset[str], int]]] = []
        with self._lock:
            try:
                for s in outcome.result:
                    linked = self._retry_on_vanish(
                        s.key, s.path, lambda p: link_tmp(target, os.path.join(self.path, p))
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
            changes = self._changes_since(conn, view.modseq)
        if expect is not None and expect != meta.uidvalidity:
            raise FolderReset(changes, now)
        return changes, now

    def _changes_since(self, conn: Connection, modseq: int) -> list[Change]:
        # A message that arrived after the view is reported as added (in order of arrival,
        # which is UID order) with its current flags; one that also left again is not reported.
        events: list[tuple[int, Change]] = []
        rows = conn.execute(
            f"SELECT {_INFO_COLUMNS}, added FROM messages WHERE modseq > ?", (modseq,)
        )
        for *row, added in rows:
            info = _info(*row)
            if added > modseq:
                events.append((added, MessageAdded(self.name, info)))
            else:
                events.append((info.modseq, FlagsChanged(self.name, info)))
        rows = conn.execute("SELECT uid, modseq, added FROM expunged WHERE modseq > ?", (modseq,))
        for uid, gone, added in rows:
            if added <= modseq:
                events.append((gone, MessageExpunged(self.name, uid, gone)))
        events.sort(key=lambda e: e[0])
        return [change for _, change in events]

    def _select(self, conn: Connection, columns: str, uids: Iterable[int]) -> list[tuple]:
        wanted = sorted(set(uids))
        rows: list[tuple] = []
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(f"SELECT {columns} FROM messages WHERE uid IN ({marks})", chunk)
        return rows

    def _insert(
        self,
        conn: Connection,
        meta: Meta,
        key: str,
        path: str,
        flags: frozenset[str],
        date_us: int,
        size: int,
    ) -> MessageInfo:
        uid, meta.uidnext = meta.uidnext, meta.uidnext + 1
        modseq = meta.next_modseq()
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (uid, key, path, _flag_text(flags), date_us, size, modseq, modseq),
        )
        return _info(uid, _flag_text(flags), date_us, size, modseq)

    def _expunge_row(self, conn: Connection, meta: Meta, uid: int, added: int) -> None:
        conn.execute("DELETE FROM messages WHERE uid = ?", (uid,))
        conn.execute(
            "INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)", (uid, meta.next_modseq(), added)
        )

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
        found = self._listing().get(key)
        if found is None:
            return None
        path = found
        try:
            return action(path)
        except FileNotFoundError:
            return None

    @contextmanager
    def _placing(self) -> Iterator[list[str]]:
        """Collect files placed in new/ or cur/; remove them if the operation fails."""
        placed: list[str] = []
        try:
            yield placed
        except BaseException:
            unlink_quietly(*placed)
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
        with self.index.reading() as (_, meta):
            if self._mtimes() == (meta.new_mtime, meta.cur_mtime):
                return
        with self.index.writing() as (conn, meta):
            self._scan(conn, meta)

    def _mtimes(self) -> tuple[int, int]:
        try:
            return (
                os.stat(os.path.join(self.path, "new")).st_mtime_ns,
                os.stat(os.path.join(self.path, "cur")).st_mtime_ns,
            )
        except FileNotFoundError as e:
            raise StorageError(f"Maildir {self.path} lost its new/ or cur/") from e

    def _listing(self) -> dict[str, str]:
        """Every message file by key. new/ is listed first: a file moving to cur/ meanwhile
        (the only direction Maildir moves files) is then seen at least once."""
        found: dict[str, str] = {}
        for sub in ("new", "cur"):
            for name in os.listdir(os.path.join(self.path, sub)):
                if not name.startswith("."):  # Maildir: dot files are not messages
                    found[parse_name(name).key] = f"{sub}/{name}"
        return found

    def _scan(self, conn: Connection, meta: Meta) -> None:
        """Bring the index in line with the files (under the write transaction)."""
        mtimes = self._mtimes()
        if mtimes == (meta.new_mtime, meta.cur_mtime):
            return  # another process scanned meanwhile
        listing = self._listing()
        known = conn.execute("SELECT uid, key, path, flags, added FROM messages").fetchall()
        missing = []
        for uid, key, path, text, added in known:
            found = listing.pop(key, None)
            if found is None:
                missing.append((uid, key, path, text, added))
            elif found != path:
                self._moved(conn, meta, uid, found, text)
        if missing:
            # A file renamed while we listed its directory can be missed (readdir makes no
            # promise); look once more before calling it deleted.
            again = self._listing()
            for uid, key, _, text, added in missing:
                if key in again:
                    self._moved(conn, meta, uid, again[key], text)
                else:
                    self._expunge_row(conn, meta, uid, added)
        self._add_unknown(conn, meta, listing)
        now = time.time_ns()
        meta.new_mtime, meta.cur_mtime = (m if now - m > _MTIME_SLACK_NS else -1 for m in mtimes)

    def _moved(self, conn: Connection, meta: Meta, uid: int, path: str, text: str) -> None:
        old = frozenset(text.split())
        new = flags_of(parse_name(path[4:]).letters) | {f for f in old if not f.startswith("\\")}
        if new == old:
            conn.execute("UPDATE messages SET path = ? WHERE uid = ?", (path, uid))
        else:
            conn.execute(
                "UPDATE messages SET path = ?, flags = ?, modseq = ? WHERE uid = ?",
                (path, _flag_text(new), meta.next_modseq(), uid),
            )

    def _add_unknown(self, conn: Connection, meta: Meta, listing: dict[str, str]) -> None:
        arrivals = []
        for key, path in listing.items():
            try:
                st = os.stat(os.path.join(self.path, path))
            except FileNotFoundError:
                continue  # renamed or deleted since the listing; the next scan sees it
            if not stat.S_ISREG(st.st_mode):
                continue
            name = parse_name(path[4:])
            size = name.size if name.size is not None else st.st_size
            arrivals.append((st.st_mtime_ns // 1000, path, key, size, flags_of(name.letters)))
        # Several at once arrive in order of their dates (the mtime is the INTERNALDATE).
        for date_us, path, key, size, flags in sorted(arrivals):
            self._insert(conn, meta, key, path, flags, date_us, size)
