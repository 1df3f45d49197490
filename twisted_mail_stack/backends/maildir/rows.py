"""Rows of the index (see L{index}) as the contract's values, and the row changes every
operation shares. Called inside a transaction of L{FolderIndex}."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from sqlite3 import Connection
from typing import Any

from ...values import Change, FlagsChanged, MessageAdded, MessageExpunged, MessageInfo
from .index import Meta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 500  # values per "IN (...)", well below SQLite's limit

#: The columns L{info} takes, in its order.
INFO = "uid, flags, internal_date, size, modseq"


def to_us(date: datetime) -> int:
    """Microseconds since the epoch, as the index keeps dates; L{ValueError} for a naive date."""
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError(f"internal date must be timezone-aware: {date!r}")
    return (date - _EPOCH) // timedelta(microseconds=1)


def info(uid: int, flags: str, date_us: int, size: int, modseq: int) -> MessageInfo:
    # Positional: listing a large folder builds one of these per message.
    return MessageInfo(
        uid, _flag_set(flags), _EPOCH + timedelta(microseconds=date_us), size, modseq
    )


@lru_cache(maxsize=1024)
def _flag_set(text: str) -> frozenset[str]:
    """The flags of an index row: a folder's rows share a few flag texts, so share the sets."""
    return frozenset(text.split())


def flag_text(flags: Iterable[str]) -> str:
    """Flags as the index stores them: space-separated (no flag holds a space)."""
    return " ".join(sorted(flags))


def select(conn: Connection, columns: str, column: str, values: Iterable[Any]) -> list[Any]:
    """The rows of C{messages} whose C{column} is one of C{values}."""
    wanted = sorted(set(values))
    rows: list[Any] = []
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(f"SELECT {columns} FROM messages WHERE {column} IN ({marks})", chunk)
    return rows


def insert(
    conn: Connection, meta: Meta, new: Iterable[tuple[str, str, Iterable[str], int, int]]
) -> tuple[int, int]:
    """
    Index new messages, given as (key, path, flags, internal date, size), each under the next
    UID and a new modseq. Returns the UID and modseq of the first; the others follow by one.
    """
    first = meta.uidnext, meta.highestmodseq + 1

    def values() -> Iterator[tuple[int, str, str, str, int, int, int, int]]:
        for key, path, flags, date_us, size in new:
            uid, meta.uidnext = meta.uidnext, meta.uidnext + 1
            modseq = meta.next_modseq()
            yield uid, key, path, flag_text(flags), date_us, size, modseq, modseq

    conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values())
    return first


def expunge(conn: Connection, meta: Meta, uid: int, added: int) -> int:
    """Drop a message's row and leave a tombstone; returns its modseq."""
    modseq = meta.next_modseq()
    conn.execute("DELETE FROM messages WHERE uid = ?", (uid,))
    conn.execute("INSERT OR REPLACE INTO expunged VALUES (?, ?, ?)", (uid, modseq, added))
    return modseq


def changes_since(conn: Connection, name: str, modseq: int) -> list[Change]:
    """
    What changed in folder C{name} after C{modseq}, coalesced: a message that arrived since is
    one L{MessageAdded} with its current flags (in order of arrival, which is UID order); one
    that also left again is not reported at all.
    """
    events: list[tuple[int, Change]] = []
    rows = conn.execute(f"SELECT {INFO}, added FROM messages WHERE modseq > ?", (modseq,))
    for *row, added in rows:
        now = info(*row)
        if added > modseq:
            events.append((added, MessageAdded(name, now)))
        else:
            events.append((now.modseq, FlagsChanged(name, now)))
    rows = conn.execute("SELECT uid, modseq, added FROM expunged WHERE modseq > ?", (modseq,))
    for uid, gone, added in rows:
        if added <= modseq:
            events.append((gone, MessageExpunged(name, uid, gone)))
    events.sort(key=lambda e: e[0])
    return [change for _, change in events]
