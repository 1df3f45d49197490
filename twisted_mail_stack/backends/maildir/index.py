"""
The persistent UID index of one folder: an SQLite database in the folder directory.

Tables: C{meta} (uidvalidity, uidnext, highestmodseq, the \\Recent watermark, the mtimes of
C{new/} and C{cur/} at the last full scan), C{messages} (one row per message: uid, file key,
current path, flags, internal date, size, modseq of the last change and of its arrival) and
C{expunged} (tombstones: uid, modseq, modseq of arrival), so that every change after a given
modseq can be listed. One message costs one row: appends and flag changes touch one row.

Concurrency, between threads and processes alike:
  - every write is one C{BEGIN IMMEDIATE} transaction (SQLite's write lock, busy timeout);
  - the database file is only ever replaced (rebuild after corruption) under an exclusive
    C{flock} of C{mailstack-index.lock}, while every use holds a shared one; a connection made
    before a replacement notices the new inode and reconnects.

A new or rebuilt index takes its UIDVALIDITY from the account's C{mailstack-uidvalidity} counter
(Dovecot keeps one too): the time, but always above the last one given in the account, so a
folder deleted and made again, or an index rebuilt within the same second, still gets a new one.

Blocking; called in worker threads, one at a time per instance.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from attrs import asdict, define, fields
from twisted.logger import Logger

from ...errors import NoSuchMailbox, StorageError
from .files import fsync_dir, fsync_file, unlink_quietly
from .layout import INDEX_FILE, INDEX_LOCK_FILE

_log = Logger()

_VERSION = 1
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE messages (
    uid INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    flags TEXT NOT NULL,
    internal_date INTEGER NOT NULL,
    size INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    added INTEGER NOT NULL
);
CREATE INDEX messages_modseq ON messages (modseq);
CREATE TABLE expunged (uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL, added INTEGER NOT NULL);
CREATE INDEX expunged_modseq ON expunged (modseq);
"""
_BUSY_TIMEOUT = 30.0
# SQLite result codes (low byte of the extended code) that mean the file is not a usable index.
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


_MISSING = "no index yet"


def next_uidvalidity(counter: str, at_least: int) -> int:
    """Take a new UIDVALIDITY from the counter file C{counter}: now, or more (RFC 3501 2.3.1.1)."""
    fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            last = int(os.pread(fd, 32, 0).split()[0])
        except (ValueError, IndexError):
            last = 0
        value = max(int(time.time()), last + 1, at_least)
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % value, 0)
        os.fsync(fd)
        return value
    finally:
        os.close(fd)


class IndexCorrupt(Exception):
    """The database cannot be read as our index; it must be rebuilt from the files."""


def _is_corrupt(error: sqlite3.DatabaseError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _CORRUPT


@define
class Meta:
    """The C{meta} table, read at the start of a transaction and written back at its end."""

    uidvalidity: int
    uidnext: int
    highestmodseq: int
    #: Every UID up to this one has been returned by some claim_recent (RFC 3501 2.3.2).
    recent: int
    #: st_mtime_ns of new/ and cur/ when they were last listed in full; -1: list them next time.
    new_mtime: int
    cur_mtime: int

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> Meta:
        values = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if values.pop("version", None) != _VERSION or set(values) != _FIELDS:
            raise IndexCorrupt("index metadata missing")
        return cls(**values)

    def save(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", asdict(self).items())

    def next_modseq(self) -> int:
        """Take a new modseq, greater than every earlier one (RFC 7162 3.1.1)."""
        self.highestmodseq += 1
        return self.highestmodseq


_FIELDS = {a.name for a in fields(Meta)}


class FolderIndex:
    """
    Access to the index of the folder C{name} at C{folder} (a Maildir directory); C{counter} is
    the account's UIDVALIDITY counter file.
    """

    def __init__(self, folder: str, name: str, counter: str) -> None:
        self.folder = folder
        self.name = name
        self._counter = counter
        self._db_path = os.path.join(folder, INDEX_FILE)
        self._lock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._inode: tuple[int, int] | None = None

    @contextmanager
    def reading(self) -> Iterator[tuple[sqlite3.Connection, Meta]]:
        """A consistent read-only view (one read transaction)."""
        with self._using() as conn:
            conn.execute("BEGIN")
            try:
                yield conn, Meta.load(conn)
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def writing(self, durable: bool = True) -> Iterator[tuple[sqlite3.Connection, Meta]]:
        """
        One write transaction; committed, with the meta, if the block succeeds. Not
        C{durable}: the commit does not wait for the disk (WAL without fsync); for a caller
        whose changes can be rebuilt from the files after a crash (L{Folder.add}). Each
        durable commit makes every earlier one durable too (one WAL, written in order).
        """
        with self._using() as conn:
            if not durable:
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    meta = Meta.load(conn)
                    yield conn, meta
                    meta.save(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                if not durable:
                    try:
                        conn.execute("PRAGMA synchronous=FULL")
                    except sqlite3.Error:
                        self._disconnect()  # never left without fsync: a new one has it

    def sync_wal(self) -> None:
        """
        Make every commit so far durable, those made without WAL fsync (L{writing}) too, in
        any process: for a caller about to remove the files they could be rebuilt from.
        """
        try:
            fsync_file(self._db_path + "-wal")
        except FileNotFoundError:
            pass  # no WAL: everything is in the database file, synced by its checkpoint

    def close(self) -> None:
        self._disconnect()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- connection management ---------------------------------------------------------

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        fd = self._lock()
        for _ in range(3):
            damaged = False
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                conn, problem = self._current()
                if conn is not None:
                    try:
                        yield conn
                        return
                    except IndexCorrupt as e:
                        damaged, problem = True, str(e)
                    except sqlite3.DatabaseError as e:
                        if not _is_corrupt(e):
                            raise StorageError(f"index of {self.folder}: {e}") from e
                        damaged, problem = True, str(e)
                seen = self._inode
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._replace(problem, seen)
            if damaged:
                # What the caller was doing cannot be trusted; it may simply try again.
                raise StorageError(f"index of {self.folder} was damaged and has been rebuilt")
        raise StorageError(f"cannot open the index of {self.folder}")

    def _lock(self) -> int:
        if self._lock_fd is None:
            self._check_folder()
            try:
                self._lock_fd = os.open(
                    os.path.join(self.folder, INDEX_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600
                )
            except FileNotFoundError:
                raise NoSuchMailbox(self.name) from None
        return self._lock_fd

    def _check_folder(self) -> None:
        if not os.path.isdir(os.path.join(self.folder, "cur")):
            raise NoSuchMailbox(self.name)

    def _current(self) -> tuple[sqlite3.Connection | None, str]:
        """The connection to the database now at the path, or None and why it is unusable."""
        try:
            st = os.stat(self._db_path)
        except FileNotFoundError:
            self._disconnect()
            self._check_folder()
            return None, _MISSING
        if self._conn is not None and self._inode == (st.st_dev, st.st_ino):
            return self._conn, ""
        self._disconnect()
        conn = sqlite3.connect(
            self._db_path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            Meta.load(conn)
        except (sqlite3.DatabaseError, IndexCorrupt) as e:
            conn.close()
            if isinstance(e, sqlite3.DatabaseError) and not (
                _is_corrupt(e) or "no such table" in str(e)
            ):
                raise StorageError(f"index of {self.folder}: {e}") from e
            self._inode = (st.st_dev, st.st_ino)
            return None, f"index unreadable: {e}"
        self._conn, self._inode = conn, (st.st_dev, st.st_ino)
        return conn, ""

    def _disconnect(self) -> None:
        if self._conn is not None:
            # SQLite sees that the file was replaced and then neither checkpoints into it nor
            # removes the -wal that now belongs to the new file.
            self._conn.close()
        self._conn = None
        self._inode = None

    def _replace(self, problem: str, seen: tuple[int, int] | None) -> None:
        """
        Under the exclusive lock, replace the database found unusable (inode C{seen}, or
        missing) by an empty one with a new, larger UIDVALIDITY. The caller's next scan puts
        every message file back in with fresh UIDs.
        """
        fd = self._lock()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            try:
                st = os.stat(self._db_path)
                if (st.st_dev, st.st_ino) != seen:
                    return  # another process replaced or created it meanwhile
            except FileNotFoundError:
                if seen is not None:
                    return
            self._disconnect()
            previous = self._readable_uidvalidity()
            uidvalidity = next_uidvalidity(self._counter, previous + 1)
            for suffix in ("", "-wal", "-shm", "-journal"):
                unlink_quietly(self._db_path + suffix)
            self._create(uidvalidity)
            log = _log.info if problem == _MISSING else _log.warn
            log(
                "Maildir index of {folder} (re)built from the message files ({problem}); "
                "UIDVALIDITY {new}",
                folder=self.folder,
                problem=problem,
                new=uidvalidity,
            )
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _readable_uidvalidity(self) -> int:
        """The UIDVALIDITY of the database being replaced, if it can be read (else 0)."""
        try:
            # mode=ro: never create a database where there is none.
            conn = sqlite3.connect(f"file:{quote(self._db_path)}?mode=ro", uri=True)
        except sqlite3.Error:
            return 0
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'uidvalidity'").fetchone()
            return int(row[0]) if row else 0
        except (sqlite3.Error, ValueError, TypeError):
            return 0
        finally:
            conn.close()

    def _create(self, uidvalidity: int) -> None:
        # Build under a scratch name, then rename: a crash never leaves a half-made index.
        scratch = self._db_path + ".new"
        unlink_quietly(scratch, scratch + "-journal")
        conn = sqlite3.connect(scratch, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            meta = Meta(
                uidvalidity, uidnext=1, highestmodseq=1, recent=0, new_mtime=-1, cur_mtime=-1
            )
            conn.execute("BEGIN")
            conn.execute("INSERT INTO meta VALUES ('version', ?)", (_VERSION,))
            meta.save(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
        fsync_file(scratch)
        os.rename(scratch, self._db_path)
        fsync_dir(self.folder)
