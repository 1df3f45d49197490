"""
The L{IMessageCache} of one Maildir folder: an SQLite file of its own beside the index
(C{mailstack-cache.sqlite}), so that the index, which deliveries write, never waits for it.

It is a cache: written with C{synchronous=OFF} (a crash may lose recent entries, never corrupt
the index or mail), its errors are logged and read as misses, and a damaged file is deleted and
made again. Entries belong to one UIDVALIDITY, kept in C{meta}: a handle of a newer one wipes
the file, a handle of an older one (stale) neither reads nor writes. Entries of expunged UIDs
are never asked for (UIDs are not reused), and L{CacheFile.prune} drops them.

Blocking; called in worker threads (a lock serialises the calls of one instance).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from twisted.logger import Logger

from .files import unlink_quietly

__all__ = ["CACHE_FILE", "CacheFile"]

CACHE_FILE = "mailstack-cache.sqlite"
_log = Logger()
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries (
    field TEXT NOT NULL, uid INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (field, uid)
) WITHOUT ROWID;
"""
_BUSY_TIMEOUT = 5.0
#: Up to this many UIDs are looked up by C{IN (...)}; more by a range scan, filtered.
_IN_LIMIT = 400


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _Stale(Exception):
    """The file belongs to a newer UIDVALIDITY than the caller's handle."""


class CacheFile:
    """The cache file of the folder at C{folder_path}, opened on first use."""

    def __init__(self, folder_path: str) -> None:
        self.path = os.path.join(folder_path, CACHE_FILE)
        self._conn: sqlite3.Connection | None = None
        self._uidvalidity = 0
        self._lock = threading.Lock()

    def _connect(self, uidvalidity: int) -> sqlite3.Connection:
        if self._conn is not None and self._uidvalidity == uidvalidity:
            return self._conn
        self._close()
        try:
            conn = self._open(uidvalidity)
        except sqlite3.DatabaseError as e:
            if not isinstance(e, sqlite3.OperationalError) or "malformed" in str(e):
                _log.warn("message cache {path} is damaged ({e}): made anew", path=self.path, e=e)
                for suffix in ("", "-wal", "-shm"):
                    unlink_quietly(self.path + suffix)
                conn = self._open(uidvalidity)
            else:
                raise
        self._conn, self._uidvalidity = conn, uidvalidity
        return conn

    def _open(self, uidvalidity: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            conn.executescript(_SCHEMA)
            query = "SELECT value FROM meta WHERE key = 'uidvalidity'"
            row = conn.execute(query).fetchone()
            if row is None or row[0] < uidvalidity:
                # A new file, or one of an older UIDVALIDITY: wiped, under the write lock.
                with _transaction(conn):
                    row = conn.execute(query).fetchone()
                    if row is None or row[0] < uidvalidity:
                        conn.execute("DELETE FROM entries")
                        conn.execute(
                            "INSERT OR REPLACE INTO meta VALUES ('uidvalidity', ?)", (uidvalidity,)
                        )
            if row is not None and row[0] > uidvalidity:
                raise _Stale()
        except BaseException:
            conn.close()
            raise
        return conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def get(
        self, uidvalidity: int, uids: Sequence[int], fields: Sequence[str]
    ) -> dict[tuple[int, str], bytes]:
        """The entries held for C{uids} x C{fields}; nothing on any error."""
        if not uids or not fields:
            return {}
        with self._lock:
            try:
                return self._get(self._connect(uidvalidity), sorted(set(uids)), fields)
            except (sqlite3.Error, OSError, _Stale) as e:
                self._failed("read", e)
                return {}

    def _get(
        self, conn: sqlite3.Connection, uids: list[int], fields: Sequence[str]
    ) -> dict[tuple[int, str], bytes]:
        found: dict[tuple[int, str], bytes] = {}
        for field in fields:
            if len(uids) <= _IN_LIMIT:
                marks = ",".join("?" * len(uids))
                rows = conn.execute(
                    f"SELECT uid, value FROM entries WHERE field = ? AND uid IN ({marks})",
                    (field, *uids),
                )
                for uid, value in rows:
                    found[uid, field] = value
                continue
            wanted = set(uids)
            rows = conn.execute(
                "SELECT uid, value FROM entries WHERE field = ? AND uid BETWEEN ? AND ?",
                (field, uids[0], uids[-1]),
            )
            for uid, value in rows:
                if uid in wanted:
                    found[uid, field] = value
        return found

    def put(self, uidvalidity: int, entries: Mapping[tuple[int, str], bytes]) -> None:
        """Store C{entries} in one transaction; on any error, log and drop them."""
        if not entries:
            return
        with self._lock:
            try:
                conn = self._connect(uidvalidity)
                with _transaction(conn):
                    conn.executemany(
                        "INSERT OR REPLACE INTO entries VALUES (?, ?, ?)",
                        [(field, uid, value) for (uid, field), value in entries.items()],
                    )
            except (sqlite3.Error, OSError, _Stale) as e:
                self._failed("write", e)

    def prune(self, uidvalidity: int, live: Iterable[int]) -> int:
        """Drop the entries of UIDs up to the largest of C{live} that are not in it."""
        keep = sorted(set(live))
        with self._lock:
            try:
                conn = self._connect(uidvalidity)
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS live (uid INTEGER PRIMARY KEY)")
                with _transaction(conn):
                    conn.execute("DELETE FROM live")
                    conn.executemany("INSERT INTO live VALUES (?)", [(u,) for u in keep])
                    gone = conn.execute(
                        "DELETE FROM entries WHERE uid <= ? AND uid NOT IN (SELECT uid FROM live)",
                        (keep[-1] if keep else 2**63 - 1,),
                    ).rowcount
                return gone
            except (sqlite3.Error, OSError, _Stale) as e:
                self._failed("prune", e)
                return 0

    def _failed(self, what: str, e: BaseException) -> None:
        if not isinstance(e, _Stale):
            _log.warn("message cache {path}: {what} failed: {e}", path=self.path, what=what, e=e)
        self._close()

    def close(self) -> None:
        with self._lock:
            self._close()
