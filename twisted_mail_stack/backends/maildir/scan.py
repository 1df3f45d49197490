"""
Bringing the index in line with the files when other programs (mutt, procmail, mbsync, another
server) added, renamed or deleted message files. Blocking; inside a write transaction.

The check is cheap when nothing changed: the mtimes of C{new/} and C{cur/} against those
recorded at the last full listing. Otherwise both directories are listed and compared with the
paths the index holds; only the differences are looked at closer.
"""

from __future__ import annotations

import os
import stat
import time
from sqlite3 import Connection

from ...errors import StorageError
from . import rows
from .index import Meta
from .layout import flags_of, key_of, parse_name

#: A directory mtime this close to now may still change within the same clock tick without
#: the mtime moving, so it is not trusted to skip the next listing (Dovecot does the same).
_MTIME_SLACK_NS = 2_000_000_000
#: UIDs are 32-bit numbers (RFC 3501 9, nz-number).
_UIDS = 1 << 32


def mtimes(folder: str) -> tuple[int, int]:
    try:
        return (
            os.stat(os.path.join(folder, "new")).st_mtime_ns,
            os.stat(os.path.join(folder, "cur")).st_mtime_ns,
        )
    except FileNotFoundError as e:
        raise StorageError(f"Maildir {folder} lost its new/ or cur/") from e


def unchanged(folder: str, meta: Meta) -> bool:
    """True if the directories are as the last full listing found them."""
    return mtimes(folder) == (meta.new_mtime, meta.cur_mtime)


def listing(folder: str) -> set[str]:
    """
    Every message file, as C{new/<name>} or C{cur/<name>}. new/ is listed first: a file moving
    to cur/ meanwhile (the only way Maildir moves files) is then seen at least once.
    """
    found: set[str] = set()
    for sub in ("new/", "cur/"):
        # Maildir: dot files are not messages.
        found |= {sub + name for name in os.listdir(folder + "/" + sub) if name[0] != "."}
    return found


def named_ahead(folder: str, meta: Meta) -> bool:
    """
    Whether a file is named with a UID of this UIDVALIDITY at or above UIDNEXT (see L{_add}):
    a delivery whose index row a crash lost. Only lists the directories.
    """
    for path in listing(folder):
        if ",I=" in path:
            tag = parse_name(path[4:]).uid_tag
            if tag is not None and tag[0] == meta.uidvalidity and meta.uidnext <= tag[1] < _UIDS:
                return True
    return False


def find(folder: str, key: str) -> str | None:
    """Where the message with C{key} is now, if anywhere."""
    for path in sorted(listing(folder)):  # cur/ before new/
        if path[4:].startswith(key) and key_of(path[4:]) == key:
            return path
    return None


def scan(folder: str, conn: Connection, meta: Meta) -> None:
    """Index new files, follow renamed ones, expunge deleted ones (if anything changed)."""
    before = mtimes(folder)
    if before == (meta.new_mtime, meta.cur_mtime):
        return  # another process scanned meanwhile
    files = listing(folder)
    indexed = {path for (path,) in conn.execute("SELECT path FROM messages")}
    appeared = _by_key(files - indexed)
    missing = []
    for uid, key, _, text, added in rows.select(
        conn, "uid, key, path, flags, added", "path", indexed - files
    ):
        if key in appeared:
            _moved(conn, meta, uid, appeared.pop(key), text)
        else:
            missing.append((uid, key, text, added))
    if missing:
        # A file renamed while its directory was read can be missed (readdir promises
        # nothing then): look once more before calling it deleted.
        again = _by_key(listing(folder) - indexed)
        for uid, key, text, added in missing:
            if key in again:
                _moved(conn, meta, uid, again[key], text)
            else:
                rows.expunge(conn, meta, uid, added)
    _add(folder, conn, meta, appeared)
    now = time.time_ns()
    meta.new_mtime, meta.cur_mtime = (m if now - m > _MTIME_SLACK_NS else -1 for m in before)


def _by_key(paths: set[str]) -> dict[str, str]:
    # A key both in new/ and in cur/ (another program moving it) counts where it goes: cur/.
    return {key_of(p[4:]): p for p in sorted(paths, reverse=True)}


def _moved(conn: Connection, meta: Meta, uid: int, path: str, text: str) -> None:
    """Another program renamed a message: its flag letters may say something new."""
    old = frozenset(text.split())
    new = flags_of(parse_name(path[4:]).letters) | {f for f in old if not f.startswith("\\")}
    if new == old:
        conn.execute("UPDATE messages SET path = ? WHERE uid = ?", (path, uid))
    else:
        conn.execute(
            "UPDATE messages SET path = ?, flags = ?, modseq = ? WHERE uid = ?",
            (path, rows.flag_text(new), meta.next_modseq(), uid),
        )


def _add(folder: str, conn: Connection, meta: Meta, appeared: dict[str, str]) -> None:
    # A file whose key the index knows under another path that still exists is the same
    # message seen twice (in new/ and in cur/ while another program moves it): follow cur/.
    for uid, key, path, text in rows.select(conn, "uid, key, path, flags", "key", appeared):
        if appeared[key].startswith("cur/") and path.startswith("new/"):
            _moved(conn, meta, uid, appeared[key], text)
        del appeared[key]
    arrivals = []
    named: list[tuple[int, tuple[int, str, str, int, frozenset[str]]]] = []
    for key, path in appeared.items():
        try:
            st = os.stat(os.path.join(folder, path))
        except FileNotFoundError:
            continue  # renamed or deleted since the listing; the next scan sees it
        if stat.S_ISREG(st.st_mode):
            name = parse_name(path[4:])
            size = st.st_size if name.size is None else name.size
            arrival = (st.st_mtime_ns // 1000, path, key, size, flags_of(name.letters))
            tag = name.uid_tag
            if tag is not None and tag[0] == meta.uidvalidity and meta.uidnext <= tag[1] < _UIDS:
                named.append((tag[1], arrival))
            else:
                arrivals.append(arrival)
    # A file named with a UID of this UIDVALIDITY that was never given out (at or above
    # UIDNEXT) is a delivery whose index row a crash lost (Folder.add): it keeps that UID, so
    # nobody who was told of it sees it change. Another file claiming the same UID is new.
    named.sort()
    for uid, (d, p, k, s, f) in named:
        if uid < meta.uidnext:
            arrivals.append((d, p, k, s, f))
            continue
        meta.uidnext = uid
        rows.insert(conn, meta, [(k, p, f, d, s)])
    # Several at once arrive in order of their dates (a message file's mtime is its date).
    arrivals.sort()
    rows.insert(conn, meta, ((k, p, f, d, s) for d, p, k, s, f in arrivals))
