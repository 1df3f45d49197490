"""
A complete mail store in one SQLite database file: an example for backend authors.

Everything lives in one file written through the stdlib C{sqlite3} module: accounts, folders,
subscriptions, SPECIAL-USE roles, message bytes (BLOBs), flags, modseqs, UIDNEXT/UIDVALIDITY,
the C{\\Recent} watermark and tombstones of expunged messages. It implements L{IMailStore},
L{IAccount}, L{IMailbox}, L{IMessageContent} and L{IMaildropLock} from their docstrings alone,
and passes C{twisted_mail_stack.testing.MailStoreConformance}.

Simplification: every SQLite call blocks and runs in the reactor thread; each method does its
work at once and returns an already-fired Deferred. That keeps the example readable, but a busy
disk stalls every connection. A production backend would run the same functions in a thread
pool (C{twisted.internet.threads.deferToThreadPool}) with one connection per thread, and emit
change events back in the reactor thread.

How the rules of L{twisted_mail_stack.interfaces} are kept:
  - Atomicity and durability: each change is one C{BEGIN IMMEDIATE} transaction, in WAL mode
    with C{synchronous=FULL}, so it is on disk before its Deferred fires.
  - UIDVALIDITY is the folder's row id. C{AUTOINCREMENT} never reuses an id, and a new database
    starts counting at the current Unix time, so a folder deleted and re-created (or a database
    replaced by a fresh one) never shows old UIDs under the same UIDVALIDITY.
  - Modseqs: each folder row counts its HIGHESTMODSEQ; every arrival, flag change or expunge
    takes the next value. An expunge leaves a tombstone (uid, modseq) behind.
  - Change events: one loop, L{SQLiteMailStore._sync}, compares what this store instance has
    already told a folder's listeners with the rows and tombstones whose modseq is newer. It runs
    after each of our own writes (so listeners hear before the Deferred fires), on refresh() and
    list_messages(), and every two seconds while someone listens, which is how changes by other
    processes, or other store instances on the same file, are found.
  - Content opened before an expunge stays readable: each open content has its own connection
    holding a read transaction, and WAL keeps that snapshot's bytes alive until it ends.
  - Tombstones are kept for ever here. A production backend would prune old ones and make
    handles that fell behind the pruning point re-read the folder.
  - The POP3 maildrop lock is C{flock} on a side file per folder: exclusive across processes and
    across open files of one process, and released by the kernel if the process dies.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from twisted_mail_stack.backends._listeners import ListenerSet
from twisted_mail_stack.errors import (
    AccountExists,
    CannotDeleteInbox,
    InvalidMailboxName,
    MailboxExists,
    MailboxInUse,
    NoSuchAccount,
    NoSuchMailbox,
    NoSuchMessage,
    StorageError,
)
from twisted_mail_stack.interfaces import (
    ChangeListener,
    IAccount,
    IMailbox,
    IMaildropLock,
    IMailStore,
    IMessageContent,
    IMessageSource,
)
from twisted_mail_stack.names import canonical_name, is_inside, parents
from twisted_mail_stack.values import (
    DEFAULT_FOLDERS,
    DELIMITER,
    INBOX,
    Change,
    CopyResult,
    Flag,
    FlagsChanged,
    MailboxInfo,
    MailboxStatus,
    MessageAdded,
    MessageExpunged,
    MessageInfo,
    SpecialUse,
    StoreMode,
    StoreResult,
    normalise_flags,
)

__all__ = ["SQLiteMailStore"]

_log = Logger()
_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Seconds between looks for other processes' changes while a listener is registered.
POLL_INTERVAL = 2.0
_CHUNK = 64 * 1024

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS accounts (user TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,       -- never reused: it is the UIDVALIDITY
    user TEXT NOT NULL,
    name TEXT NOT NULL,
    special_use TEXT,
    uidnext INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL DEFAULT 1,
    recent_uid INTEGER NOT NULL DEFAULT 0,      -- every UID up to this one was claimed \\Recent
    UNIQUE (user, name)
);
CREATE TABLE IF NOT EXISTS subscriptions (user TEXT, name TEXT, PRIMARY KEY (user, name));
CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    folder INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    body INTEGER NOT NULL,                      -- shared by copies and multi-user deliveries
    flags TEXT NOT NULL,                        -- space-separated; flags never contain spaces
    internal_date TEXT NOT NULL,                -- ISO 8601, UTC
    size INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (folder, uid)
);
CREATE INDEX IF NOT EXISTS messages_by_modseq ON messages (folder, modseq);
CREATE INDEX IF NOT EXISTS messages_by_body ON messages (body);
CREATE TABLE IF NOT EXISTS tombstones (
    folder INTEGER, uid INTEGER, modseq INTEGER, PRIMARY KEY (folder, uid)
);
-- A body goes when its last message does.
CREATE TRIGGER IF NOT EXISTS drop_unused_body AFTER DELETE ON messages
WHEN NOT EXISTS (SELECT 1 FROM messages WHERE body = OLD.body)
BEGIN DELETE FROM bodies WHERE id = OLD.body; END;
-- UIDVALIDITY counts from the database's creation time, so two databases never share one.
INSERT INTO sqlite_sequence (name, seq) SELECT 'folders', strftime('%s', 'now')
WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'folders');
COMMIT;
"""

_MESSAGE_COLUMNS = "uid, flags, internal_date, size, modseq"


def _deferred(method: Callable[_P, _T]) -> Callable[_P, Deferred[_T]]:
    """Run a blocking method now and return its outcome as a Deferred; SQLite and OS errors
    become L{StorageError}, as the contract asks for anything the client cannot fix."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        try:
            return succeed(method(*args, **kwargs))
        except (sqlite3.Error, OSError) as e:
            return fail(StorageError(f"{type(e).__name__}: {e}"))
        except Exception:
            return fail()

    return wrapper


def _column(db: sqlite3.Connection, sql: str, *args: object) -> list[int]:
    """The first column of a query's rows, e.g. a list of UIDs."""
    return [row[0] for row in db.execute(sql, args)]


def _info(row: tuple[int, str, str, int, int]) -> MessageInfo:
    """A MessageInfo from a row selected as L{_MESSAGE_COLUMNS}."""
    uid, flags, date, size, modseq = row
    return MessageInfo(uid, frozenset(flags.split()), datetime.fromisoformat(date), size, modseq)


def _iso_date(value: datetime | None) -> str:
    """An internal date as stored: ISO 8601 in UTC, now if not given."""
    if value is not None and value.tzinfo is None:
        raise ValueError("internal_date must be timezone-aware")
    return (value or datetime.now(UTC)).astimezone(UTC).isoformat()


def _uid_list(uids: Iterable[int]) -> str:
    """UIDs as one JSON parameter, for C{uid IN (SELECT value FROM json_each(?))}: one bound
    variable whatever their number."""
    return json.dumps(sorted({int(u) for u in uids}))


def _next_modseq(db: sqlite3.Connection, folder: int) -> int:
    return int(
        db.execute(
            "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE id = ? RETURNING highestmodseq",
            (folder,),
        ).fetchone()[0]
    )


def _add_message(
    db: sqlite3.Connection, folder: int, body: int, flags: str, date: str, size: int
) -> MessageInfo:
    """Insert a message with the folder's next UID and next modseq."""
    uid, modseq = db.execute(
        "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
        " WHERE id = ? RETURNING uidnext - 1, highestmodseq",
        (folder,),
    ).fetchone()
    db.execute(
        "INSERT INTO messages (folder, uid, body, flags, internal_date, size, modseq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (folder, uid, body, flags, date, size, modseq),
    )
    return _info((uid, flags, date, size, modseq))


def _remove_messages(db: sqlite3.Connection, folder: int, uids: Iterable[int]) -> list[int]:
    """Delete messages, leaving a tombstone with a new modseq for each so peers see it go."""
    sql = (
        "DELETE FROM messages WHERE folder = ? AND uid IN (SELECT value FROM json_each(?))"
        " RETURNING uid"
    )
    removed = sorted(_column(db, sql, folder, _uid_list(uids)))
    for uid in removed:
        db.execute(
            "INSERT INTO tombstones VALUES (?, ?, ?)", (folder, uid, _next_modseq(db, folder))
        )
    return removed


def _store_body(db: sqlite3.Connection, source: IMessageSource) -> int:
    """Copy a source into a new BLOB in chunks, without holding the message in memory."""
    body = db.execute("INSERT INTO bodies (data) VALUES (zeroblob(?))", (source.size,)).lastrowid
    assert body is not None
    written = 0
    with source.open() as f, db.blobopen("bodies", "data", body) as blob:
        while chunk := f.read(_CHUNK):
            if written + len(chunk) > source.size:
                raise StorageError("message source is longer than its size")
            blob.write(chunk)
            written += len(chunk)
    if written != source.size:
        raise StorageError("message source is shorter than its size")
    return body


class _Watch:
    """
    One folder as this store instance's listeners know it, shared by all its open handles here.

    C{known} is the set of UIDs the listeners have heard of and C{modseq} the folder modseq up to
    which every change has been reported: L{SQLiteMailStore._sync} reports what lies beyond.
    """

    def __init__(self, folder: int, name: str, known: set[int], modseq: int) -> None:
        self.folder, self.name, self.known, self.modseq = folder, name, known, modseq
        self.listeners = ListenerSet()
        self.handles = 0

    def emit(self, changes: Iterable[Change]) -> None:
        for change in changes:
            self.listeners.emit(change)


@implementer(IMailStore)
class SQLiteMailStore:
    """The whole store in the SQLite database at C{path} (created if missing)."""

    def __init__(self, path: str, clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode = WAL")  # readers keep a snapshot while we write
        self._db.execute("PRAGMA synchronous = FULL")  # a commit is durable when it returns
        self._db.executescript(_SCHEMA)
        self._lock_dir = self.path + ".locks"
        os.makedirs(self._lock_dir, exist_ok=True)
        self._watches: dict[int, _Watch] = {}
        self._contents: set[_Content] = set()
        self._poller = LoopingCall(self._poll)
        self._poller.clock = clock
        self._closed = False

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """
        One transaction. A write one (C{BEGIN IMMEDIATE}) takes the database's write lock at
        once, so no other writer slips in between our reads and our writes; a read one sees a
        single snapshot even while other processes commit.
        """
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _folder(self, user: str, name: str) -> tuple[int, int, int] | None:
        """(id, uidnext, highestmodseq) of a folder, or None."""
        return self._db.execute(  # type: ignore[no-any-return]
            "SELECT id, uidnext, highestmodseq FROM folders WHERE user = ? AND name = ?",
            (user, name),
        ).fetchone()

    # -- change events ----------------------------------------------------------------

    def _sync(self, *folders: int) -> None:
        """Report every change of these folders that their listeners here have not heard of."""
        for folder in folders:
            watch = self._watches.get(folder)
            if watch is not None:
                with self._transaction(write=False):
                    news = self._news(watch)
                watch.emit(news)

    def _news(self, watch: _Watch) -> list[Change]:
        """
        The changes of a watched folder since C{watch.modseq}, in order; updates the watch.
        Run it in a read transaction, so that it sees one snapshot while others write.
        """
        row = self._db.execute(
            "SELECT name, highestmodseq FROM folders WHERE id = ?", (watch.folder,)
        )
        current = row.fetchone()
        if current is None:  # the folder was deleted: every message it had is gone
            gone, watch.known = sorted(watch.known), set()
            return [MessageExpunged(watch.name, uid, watch.modseq) for uid in gone]
        watch.name = current[0]
        if current[1] == watch.modseq:
            return []  # the usual case when polling: one cheap query
        rows = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE folder = ? AND modseq > ?",
            (watch.folder, watch.modseq),
        ).fetchall()
        dead = self._db.execute(
            "SELECT uid, modseq FROM tombstones WHERE folder = ? AND modseq > ?",
            (watch.folder, watch.modseq),
        ).fetchall()
        watch.modseq = current[1]
        changes: list[tuple[int, Change]] = []
        for r in rows:
            info = _info(r)
            kind = FlagsChanged if info.uid in watch.known else MessageAdded
            watch.known.add(info.uid)
            changes.append((info.modseq, kind(watch.name, info)))
        for uid, modseq in dead:
            if uid in watch.known:  # one we never reported came and went: nothing to say
                watch.known.discard(uid)
                changes.append((modseq, MessageExpunged(watch.name, uid, modseq)))
        return [change for _, change in sorted(changes, key=lambda c: c[0])]

    def _poll(self) -> None:
        try:
            self._sync(*[w.folder for w in self._watches.values() if w.listeners])
        except Exception:
            _log.failure("polling the SQLite mail store failed")

    def _update_poller(self) -> None:
        """Poll while any listener is registered, and only then."""
        wanted = not self._closed and any(w.listeners for w in self._watches.values())
        if wanted and not self._poller.running:
            self._poller.start(POLL_INTERVAL, now=False)
        elif not wanted and self._poller.running:
            self._poller.stop()

    # -- IMailStore ---------------------------------------------------------------------

    @_deferred
    def create_account(self, user: str) -> None:
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM accounts WHERE user = ?", (user,)).fetchone():
                raise AccountExists(user)
            db.execute("INSERT INTO accounts VALUES (?)", (user,))
            for name, role in ((INBOX, None), *DEFAULT_FOLDERS):
                db.execute(
                    "INSERT INTO folders (user, name, special_use) VALUES (?, ?, ?)",
                    (user, name, role and role.value),
                )
                db.execute("INSERT OR IGNORE INTO subscriptions VALUES (?, ?)", (user, name))

    @_deferred
    def delete_account(self, user: str) -> None:
        with self._transaction() as db:
            if db.execute("DELETE FROM accounts WHERE user = ?", (user,)).rowcount == 0:
                raise NoSuchAccount(user)
            folders = _column(db, "SELECT id FROM folders WHERE user = ?", user)
            for folder in folders:
                _delete_folder(db, folder)
            db.execute("DELETE FROM subscriptions WHERE user = ?", (user,))
        self._sync(*folders)

    @_deferred
    def list_accounts(self) -> Sequence[str]:
        return [user for (user,) in self._db.execute("SELECT user FROM accounts ORDER BY user")]

    @_deferred
    def open_account(self, user: str) -> IAccount:
        if not self._db.execute("SELECT 1 FROM accounts WHERE user = ?", (user,)).fetchone():
            raise NoSuchAccount(user)
        return SQLiteAccount(self, user)

    @_deferred
    def deliver(
        self,
        users: Sequence[str],
        source: IMessageSource,
        internal_date: datetime | None = None,
    ) -> dict[str, MessageInfo]:
        date = _iso_date(internal_date)
        result: dict[str, MessageInfo] = {}
        with self._transaction() as db:  # all recipients or none: one transaction
            inboxes = {}
            for user in dict.fromkeys(users):
                inbox = self._folder(user, INBOX)
                if inbox is None:
                    raise NoSuchAccount(user)
                inboxes[user] = inbox[0]
            body = _store_body(db, source) if inboxes else 0  # one BLOB for every copy
            for user, folder in inboxes.items():
                result[user] = _add_message(db, folder, body, "", date, source.size)
        self._sync(*inboxes.values())
        return result

    @_deferred
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._update_poller()
        for content in list(self._contents):
            content.close()
        self._db.close()


def _delete_folder(db: sqlite3.Connection, folder: int) -> None:
    # No tombstones: open handles notice the missing folder row and expunge everything.
    db.execute("DELETE FROM messages WHERE folder = ?", (folder,))
    db.execute("DELETE FROM tombstones WHERE folder = ?", (folder,))
    db.execute("DELETE FROM folders WHERE id = ?", (folder,))


@implementer(IAccount)
class SQLiteAccount:
    delimiter = DELIMITER

    def __init__(self, store: SQLiteMailStore, user: str) -> None:
        self._store, self._db, self.user = store, store._db, user

    def _selectable(self, name: str) -> tuple[int, int, int]:
        folder = self._store._folder(self.user, name)
        if folder is None:
            raise NoSuchMailbox(name)
        return folder

    @_deferred
    def list_mailboxes(self) -> Sequence[MailboxInfo]:
        folders = dict(
            self._db.execute("SELECT name, special_use FROM folders WHERE user = ?", (self.user,))
        )
        subscribed = set(
            _column(self._db, "SELECT name FROM subscriptions WHERE user = ?", self.user)
        )
        # Parents that exist only because of their children are listed, unselectable.
        names = set(folders) | {p for n in folders for p in parents(n)}
        order = sorted(names, key=lambda n: (n != INBOX, n))
        return [
            MailboxInfo(
                name=n,
                special_use=SpecialUse(folders[n]) if folders.get(n) else None,
                subscribed=n in subscribed,
                selectable=n in folders,
            )
            for n in order
        ]

    @_deferred
    def create_mailbox(self, name: str, special_use: SpecialUse | None = None) -> None:
        name = canonical_name(name)
        with self._store._transaction() as db:
            if self._store._folder(self.user, name) is not None:
                raise MailboxExists(name)
            db.execute(
                "INSERT INTO folders (user, name, special_use) VALUES (?, ?, ?)",
                (self.user, name, special_use and special_use.value),
            )

    @_deferred
    def delete_mailbox(self, name: str) -> None:
        name = canonical_name(name)
        if name == INBOX:
            raise CannotDeleteInbox(name)
        with self._store._transaction() as db:
            folder = self._selectable(name)[0]
            _delete_folder(db, folder)
        self._store._sync(folder)

    @_deferred
    def rename_mailbox(self, old: str, new: str) -> None:
        old, new = canonical_name(old), canonical_name(new)
        with self._store._transaction() as db:
            source, uidnext, modseq = self._selectable(old)
            if new != old and old != INBOX and is_inside(new, old):
                raise InvalidMailboxName(f"cannot rename {old!r} into its own child {new!r}")
            if old == INBOX:
                # RFC 3501 6.3.5: INBOX's messages move to a new folder; INBOX stays, empty,
                # and its children stay where they are.
                if self._store._folder(self.user, new) is not None:
                    raise MailboxExists(new)
                target = db.execute(
                    "INSERT INTO folders (user, name, uidnext, highestmodseq) VALUES (?, ?, ?, ?)"
                    " RETURNING id",
                    (self.user, new, uidnext, modseq),
                ).fetchone()[0]
                uids = _column(db, "SELECT uid FROM messages WHERE folder = ?", source)
                db.execute("UPDATE messages SET folder = ? WHERE folder = ?", (target, source))
                for uid in uids:
                    db.execute(
                        "INSERT INTO tombstones VALUES (?, ?, ?)",
                        (source, uid, _next_modseq(db, source)),
                    )
            else:
                # The folder and its children keep their rows (so UIDs and UIDVALIDITY) and
                # subscriptions; only the names change.
                moves = [
                    (n, new + n[len(old) :])
                    for (n,) in db.execute("SELECT name FROM folders WHERE user = ?", (self.user,))
                    if is_inside(n, old)
                ]
                for _, to in moves:
                    if self._store._folder(self.user, to) is not None:
                        raise MailboxExists(to)
                for table in ("folders", "subscriptions"):
                    for frm, to in moves:
                        db.execute(
                            f"UPDATE OR REPLACE {table} SET name = ? WHERE user = ? AND name = ?",
                            (to, self.user, frm),
                        )
        self._store._sync(source)

    @_deferred
    def set_subscribed(self, name: str, subscribed: bool) -> None:
        name = canonical_name(name)
        if subscribed:
            sql = "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)"
        else:
            sql = "DELETE FROM subscriptions WHERE user = ? AND name = ?"
        with self._store._transaction() as db:
            db.execute(sql, (self.user, name))

    @_deferred
    def open_mailbox(self, name: str) -> IMailbox:
        name = canonical_name(name)
        store = self._store
        with store._transaction(write=False) as db:
            folder, _, modseq = self._selectable(name)
            watch = store._watches.get(folder)
            if watch is None:  # the first handle here: listeners start from the current state
                known = set(_column(db, "SELECT uid FROM messages WHERE folder = ?", folder))
                watch = store._watches[folder] = _Watch(folder, name, known, modseq)
        watch.handles += 1
        return SQLiteMailbox(store, self.user, watch)

    @_deferred
    def close(self) -> None:
        pass  # the account holds nothing of its own; the store owns the connection


@implementer(IMailbox)
class SQLiteMailbox:
    """A handle on one folder. Its listeners live in the folder's shared L{_Watch}."""

    def __init__(self, store: SQLiteMailStore, user: str, watch: _Watch) -> None:
        self._store, self._db, self._user, self._watch = store, store._db, user, watch
        self._id = self.uidvalidity = watch.folder
        self._listeners: list[ChangeListener] = []
        self._locks: list[_Lock] = []
        self._closed = False

    @property
    def name(self) -> str:
        return self._watch.name

    def _check(self) -> int:
        """Our folder's UIDNEXT; L{NoSuchMailbox} if it has been deleted meanwhile."""
        row = self._db.execute("SELECT uidnext FROM folders WHERE id = ?", (self._id,)).fetchone()
        if row is None:
            raise NoSuchMailbox(self.name)
        return int(row[0])

    def _select(self, uids: Iterable[int]) -> list[MessageInfo]:
        rows = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE folder = ?"
            " AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid",
            (self._id, _uid_list(uids)),
        )
        return [_info(r) for r in rows]

    @_deferred
    def status(self) -> MailboxStatus:
        row = self._db.execute(
            "SELECT uidnext, highestmodseq, count(uid), total(instr(flags, ?) = 0),"
            " total(uid > recent_uid)"
            " FROM folders LEFT JOIN messages ON folder = id WHERE id = ? GROUP BY id",
            (Flag.SEEN, self._id),  # keywords cannot contain a backslash: no false match
        ).fetchone()
        if row is None:
            raise NoSuchMailbox(self.name)
        uidnext, modseq, messages, unseen, recent = row
        return MailboxStatus(self.uidvalidity, uidnext, messages, int(unseen), modseq, int(recent))

    @_deferred
    def list_messages(self) -> Sequence[MessageInfo]:
        # The contract: this also reports other processes' changes. One snapshot for both, so
        # the listeners have heard of exactly the messages listed.
        with self._store._transaction(write=False) as db:
            news = self._store._news(self._watch)
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE folder = ? ORDER BY uid",
                (self._id,),
            ).fetchall()
        self._watch.emit(news)
        self._check()  # after the news, which tell the listeners of a deletion
        return [_info(r) for r in rows]

    @_deferred
    def get_messages(self, uids: Iterable[int]) -> Sequence[MessageInfo]:
        self._check()
        return self._select(uids)

    @_deferred
    def open_content(self, uid: int) -> IMessageContent:
        self._check()
        return _Content(self._store, self._id, uid)

    @_deferred
    def append(
        self,
        source: IMessageSource,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> MessageInfo:
        text = " ".join(sorted(normalise_flags(flags)))  # ValueError before anything is stored
        date = _iso_date(internal_date)
        with self._store._transaction() as db:
            self._check()
            info = _add_message(db, self._id, _store_body(db, source), text, date, source.size)
        self._store._sync(self._id)
        return info

    @_deferred
    def set_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: StoreMode,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        given = normalise_flags(flags)  # ValueError before anything changes
        updated, conflicts = [], []
        with self._store._transaction() as db:
            self._check()
            for info in self._select(uids):
                if unchanged_since is not None and info.modseq > unchanged_since:
                    conflicts.append(info.uid)  # RFC 7162 3.1.3
                    continue
                if mode is StoreMode.REPLACE:
                    new = given
                elif mode is StoreMode.ADD:
                    new = info.flags | given
                else:
                    new = info.flags - given
                if new == info.flags:
                    continue  # nothing changes, so neither does the modseq
                modseq = _next_modseq(db, self._id)
                db.execute(
                    "UPDATE messages SET flags = ?, modseq = ? WHERE folder = ? AND uid = ?",
                    (" ".join(sorted(new)), modseq, self._id, info.uid),
                )
                updated.append(MessageInfo(info.uid, new, info.internal_date, info.size, modseq))
        self._store._sync(self._id)
        return StoreResult(tuple(updated), tuple(conflicts))

    def _copy(self, uids: Iterable[int], target: str, move: bool) -> CopyResult:
        target = canonical_name(target)
        with self._store._transaction() as db:  # atomic: all the copies (and removals) or none
            self._check()
            dest = self._store._folder(self._user, target)
            if dest is None:
                raise NoSuchMailbox(target)
            rows = db.execute(
                "SELECT uid, body, flags, internal_date, size FROM messages WHERE folder = ?"
                " AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid",
                (self._id, _uid_list(uids)),
            ).fetchall()
            # Copies share the body row: no bytes are duplicated.
            mapping = {uid: _add_message(db, dest[0], *rest).uid for uid, *rest in rows}
            if move:
                _remove_messages(db, self._id, mapping)
        self._store._sync(dest[0], self._id)
        return CopyResult(dest[0], mapping)

    @_deferred
    def copy(self, uids: Iterable[int], target: str) -> CopyResult:
        return self._copy(uids, target, move=False)

    @_deferred
    def move(self, uids: Iterable[int], target: str) -> CopyResult:
        return self._copy(uids, target, move=True)

    @_deferred
    def expunge(self, uids: Iterable[int] | None = None) -> Sequence[int]:
        with self._store._transaction() as db:
            self._check()
            sql = "SELECT uid FROM messages WHERE folder = ? AND instr(flags, ?)"
            deleted = set(_column(db, sql, self._id, Flag.DELETED))
            if uids is not None:
                deleted &= set(uids)
            removed = _remove_messages(db, self._id, deleted)
        self._store._sync(self._id)
        return removed

    @_deferred
    def remove(self, uids: Iterable[int]) -> Sequence[int]:
        with self._store._transaction() as db:
            self._check()
            removed = _remove_messages(db, self._id, uids)
        self._store._sync(self._id)
        return removed

    @_deferred
    def claim_recent(self) -> Sequence[int]:
        # The write transaction makes claim-and-advance atomic across processes, so each
        # message is \Recent for exactly one caller.
        with self._store._transaction() as db:
            uidnext = self._check()
            sql = (
                "SELECT uid FROM messages WHERE folder = ?"
                " AND uid > (SELECT recent_uid FROM folders WHERE id = folder) ORDER BY uid"
            )
            recent = _column(db, sql, self._id)
            db.execute("UPDATE folders SET recent_uid = ? WHERE id = ?", (uidnext - 1, self._id))
        return recent

    @_deferred
    def lock(self) -> IMaildropLock:
        self._check()
        lock = _Lock(os.path.join(self._store._lock_dir, str(self._id)), self.name)
        self._locks.append(lock)
        return lock

    @_deferred
    def add_listener(self, listener: ChangeListener) -> None:
        self._store._sync(self._id)  # earlier changes go to earlier listeners, not this one
        self._watch.listeners.add(listener)
        self._listeners.append(listener)
        self._store._update_poller()

    @_deferred
    def remove_listener(self, listener: ChangeListener) -> None:
        self._watch.listeners.discard(listener)
        if listener in self._listeners:
            self._listeners.remove(listener)
        self._store._update_poller()

    @_deferred
    def refresh(self) -> None:
        self._store._sync(self._id)
        self._check()  # after the sync, which tells the listeners of a deletion

    @_deferred
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for listener in self._listeners:
            self._watch.listeners.discard(listener)
        for lock in self._locks:
            lock.release()
        self._watch.handles -= 1
        if self._watch.handles == 0 and self._store._watches.get(self._id) is self._watch:
            del self._store._watches[self._id]
        self._store._update_poller()


@implementer(IMessageContent)
class _Content:
    """
    A message's bytes, read with SQLite's incremental BLOB I/O.

    It has a connection of its own holding one read transaction: in WAL mode that snapshot
    keeps the bytes readable even after another connection expunges the message.
    """

    def __init__(self, store: SQLiteMailStore, folder: int, uid: int) -> None:
        self._store = store
        self._conn = sqlite3.connect(store.path, isolation_level=None, timeout=30)
        try:
            self._conn.execute("BEGIN")
            row = self._conn.execute(
                "SELECT body, size FROM messages WHERE folder = ? AND uid = ?", (folder, uid)
            ).fetchone()
            if row is None:
                raise NoSuchMessage(uid)
            self._blob = self._conn.blobopen("bodies", "data", row[0], readonly=True)
        except BaseException:
            self._conn.close()
            raise
        self.size: int = row[1]
        store._contents.add(self)  # closed with the store at the latest

    @_deferred
    def read(self, offset: int, length: int) -> bytes:
        if offset >= self.size:
            return b""
        self._blob.seek(offset)
        return self._blob.read(length)

    @_deferred
    def close(self) -> None:
        if self in self._store._contents:
            self._store._contents.discard(self)
            self._blob.close()
            self._conn.close()  # ends the read transaction: SQLite may now reuse the pages


@implementer(IMaildropLock)
class _Lock:
    """
    C{flock} on the folder's lock file. Each lock opens the file anew, and flock locks belong to
    an open file, so two locks conflict even inside one process; the kernel drops them when the
    process dies.
    """

    def __init__(self, path: str, name: str) -> None:
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise MailboxInUse(name) from None

    @_deferred
    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None
