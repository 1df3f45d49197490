"""
An in-memory L{IMailStore}: complete, fast and volatile.

It is the reference backend of the conformance suite (C{twisted_mail_stack.testing}) and a store for
tests of the protocols. Everything lives in one process, so L{IMailbox.refresh} has nothing to find.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from attrs import evolve
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ..errors import (
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
from ..interfaces import (
    ChangeListener,
    IAccount,
    IMailbox,
    IMaildropLock,
    IMailStore,
    IMessageCache,
    IMessageContent,
    IMessageSource,
)
from ..names import canonical_name, is_inside, parents
from ..values import (
    DEFAULT_FOLDERS,
    DELIMITER,
    INBOX,
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
from ._listeners import ListenerSet

__all__ = ["MemoryMailStore"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _deferred(method: Callable[_P, _T]) -> Callable[_P, Deferred[_T]]:
    """Run C{method} now and return its result, or the exception it raised, as a Deferred."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        try:
            return defer.succeed(method(*args, **kwargs))
        except Exception:
            return defer.fail()

    return wrapper


def _read_source(source: IMessageSource) -> bytes:
    with source.open() as f:
        data = f.read()
    if len(data) != source.size:
        raise StorageError(f"the source gave {len(data)} bytes, not its size {source.size}")
    return data


def _aware(date: datetime) -> datetime:
    if date.tzinfo is None:
        raise ValueError("internal_date must be timezone-aware")
    return date


# -- storage -------------------------------------------------------------------


class _Message:
    """One stored message: its bytes and its index entry."""

    def __init__(self, data: bytes, info: MessageInfo) -> None:
        self.data = data
        self.info = info
        #: L{IMessageCache} entries, by field; they go with the message.
        self.cached: dict[str, bytes] = {}


class _Folder:
    """One folder's messages and counters, shared by every handle opened on it."""

    def __init__(self, name: str, uidvalidity: int, special_use: SpecialUse | None) -> None:
        self.name = name
        self.uidvalidity = uidvalidity
        self.special_use = special_use
        self.uidnext = 1
        self.highestmodseq = 1
        self.recent_mark = 0  # every UID up to this one has been claimed as \Recent
        self.messages: dict[int, _Message] = {}  # in ascending UID order
        self.listeners = ListenerSet()
        self.lock: _Lock | None = None
        self.deleted = False

    def next_uid(self) -> int:
        uid = self.uidnext
        self.uidnext += 1
        return uid

    def next_modseq(self) -> int:
        self.highestmodseq += 1
        return self.highestmodseq

    def add(self, data: bytes, flags: frozenset[str], internal_date: datetime) -> MessageInfo:
        info = MessageInfo(self.next_uid(), flags, internal_date, len(data), self.next_modseq())
        self.messages[info.uid] = _Message(data, info)
        self.listeners.emit(MessageAdded(self.name, info))
        return info

    def update(self, message: _Message, flags: frozenset[str]) -> MessageInfo:
        message.info = evolve(message.info, flags=flags, modseq=self.next_modseq())
        self.listeners.emit(FlagsChanged(self.name, message.info))
        return message.info

    def discard(self, uids: Iterable[int]) -> list[int]:
        """Remove those of C{uids} the folder holds; return them, ascending."""
        removed = sorted(uid for uid in set(uids) if uid in self.messages)
        for uid in removed:
            del self.messages[uid]
            self.listeners.emit(MessageExpunged(self.name, uid, self.next_modseq()))
        return removed

    def delete(self) -> None:
        """Mark the folder gone: its handles see every message expunged, then fail."""
        self.deleted = True
        for uid in list(self.messages):
            del self.messages[uid]
            # A folder that is gone gets no new modseq: each carries the last one handles knew.
            self.listeners.emit(MessageExpunged(self.name, uid, self.highestmodseq))
        if self.lock is not None:
            self.lock.release()

    def held(self, uids: Iterable[int]) -> list[_Message]:
        return [self.messages[uid] for uid in sorted(set(uids)) if uid in self.messages]


class _AccountData:
    def __init__(self) -> None:
        self.folders: dict[str, _Folder] = {}
        self.subscriptions: set[str] = set()


# -- handles -------------------------------------------------------------------


@implementer(IMessageContent)
class _Content:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    @_deferred
    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        return self._data[offset : offset + length]

    def close(self) -> Deferred[None]:
        return defer.succeed(None)


@implementer(IMaildropLock)
class _Lock:
    def __init__(self, folder: _Folder) -> None:
        self._folder = folder

    def release(self) -> Deferred[None]:
        if self._folder.lock is self:
            self._folder.lock = None
        return defer.succeed(None)


def _combine_flags(
    current: frozenset[str], given: frozenset[str], mode: StoreMode
) -> frozenset[str]:
    if mode is StoreMode.ADD:
        return current | given
    if mode is StoreMode.REMOVE:
        return current - given
    return given


@implementer(IMailbox, IMessageCache)
class MemoryMailbox:
    """A handle on one L{_Folder}."""

    def __init__(self, account: MemoryAccount, folder: _Folder) -> None:
        self._account = account
        self._folder = folder
        self.uidvalidity = folder.uidvalidity
        self._listeners: list[ChangeListener] = []
        self._locks: list[_Lock] = []

    @property
    def name(self) -> str:
        return self._folder.name

    def _live(self) -> _Folder:
        if self._folder.deleted:
            raise NoSuchMailbox(self._folder.name)
        return self._folder

    @_deferred
    def status(self) -> MailboxStatus:
        folder = self._live()
        unseen = sum(Flag.SEEN not in m.info.flags for m in folder.messages.values())
        recent = sum(uid > folder.recent_mark for uid in folder.messages)
        return MailboxStatus(
            folder.uidvalidity,
            folder.uidnext,
            len(folder.messages),
            unseen,
            folder.highestmodseq,
            recent,
        )

    @_deferred
    def list_messages(self) -> Sequence[MessageInfo]:
        return tuple(m.info for m in self._live().messages.values())

    @_deferred
    def get_messages(self, uids: Iterable[int]) -> Sequence[MessageInfo]:
        return tuple(m.info for m in self._live().held(uids))

    @_deferred
    def open_content(self, uid: int) -> IMessageContent:
        message = self._live().messages.get(uid)
        if message is None:
            raise NoSuchMessage(uid)
        return _Content(message.data)

    @_deferred
    def get_cached(
        self, uids: Sequence[int], fields: Sequence[str]
    ) -> Mapping[tuple[int, str], bytes]:
        found = {}
        for message in self._live().held(uids):
            for field in fields:
                value = message.cached.get(field)
                if value is not None:
                    found[message.info.uid, field] = value
        return found

    @_deferred
    def put_cached(self, entries: Mapping[tuple[int, str], bytes]) -> None:
        messages = self._live().messages
        for (uid, field), value in entries.items():
            message = messages.get(uid)
            if message is not None:
                message.cached[field] = bytes(value)

    @_deferred
    def append(
        self,
        source: IMessageSource,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> MessageInfo:
        folder = self._live()
        date = _aware(internal_date or self._account.store.now())
        return folder.add(_read_source(source), normalise_flags(flags), date)

    @_deferred
    def set_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: StoreMode,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        folder = self._live()
        given = normalise_flags(flags)
        updated, conflicts = [], []
        for message in folder.held(uids):
            if unchanged_since is not None and message.info.modseq > unchanged_since:
                conflicts.append(message.info.uid)
                continue
            new = _combine_flags(message.info.flags, given, mode)
            if new == message.info.flags:
                continue
            updated.append(folder.update(message, new))
        return StoreResult(tuple(updated), tuple(conflicts))

    @_deferred
    def copy(self, uids: Iterable[int], target: str) -> CopyResult:
        return self._copy(uids, target)

    def _copy(self, uids: Iterable[int], target: str) -> CopyResult:
        source = self._live()
        into = self._account.folder(target)
        mapping = {}
        for message in source.held(uids):
            info = into.add(message.data, message.info.flags, message.info.internal_date)
            mapping[message.info.uid] = info.uid
        return CopyResult(into.uidvalidity, mapping)

    @_deferred
    def move(self, uids: Iterable[int], target: str) -> CopyResult:
        result = self._copy(uids, target)
        self._folder.discard(result.uids)
        return result

    @_deferred
    def expunge(self, uids: Iterable[int] | None = None) -> Sequence[int]:
        folder = self._live()
        deleted = [uid for uid, m in folder.messages.items() if Flag.DELETED in m.info.flags]
        if uids is not None:
            deleted = list(set(deleted).intersection(uids))
        return folder.discard(deleted)

    @_deferred
    def remove(self, uids: Iterable[int]) -> Sequence[int]:
        return self._live().discard(uids)

    @_deferred
    def claim_recent(self) -> Sequence[int]:
        folder = self._live()
        recent = [uid for uid in folder.messages if uid > folder.recent_mark]
        folder.recent_mark = folder.uidnext - 1
        return recent

    @_deferred
    def lock(self) -> IMaildropLock:
        folder = self._live()
        if folder.lock is not None:
            raise MailboxInUse(folder.name)
        folder.lock = _Lock(folder)
        self._locks.append(folder.lock)
        return folder.lock

    @_deferred
    def add_listener(self, listener: ChangeListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)
        self._folder.listeners.add(listener)

    @_deferred
    def remove_listener(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
            self._folder.listeners.discard(listener)

    @_deferred
    def refresh(self) -> None:
        self._live()

    def close(self) -> Deferred[None]:
        for listener in self._listeners:
            self._folder.listeners.discard(listener)
        self._listeners.clear()
        for lock in self._locks:
            lock.release()
        self._locks.clear()
        return defer.succeed(None)


@implementer(IAccount)
class MemoryAccount:
    """A handle on one account of a L{MemoryMailStore}."""

    delimiter = DELIMITER

    def __init__(self, store: MemoryMailStore, user: str) -> None:
        self.store = store
        self.user = user
        self._data = store.account_data(user)

    def _live(self) -> _AccountData:
        if self.store.account_data(self.user) is not self._data:
            raise NoSuchAccount(self.user)
        return self._data

    def folder(self, name: str) -> _Folder:
        """The selectable folder C{name}, or L{NoSuchMailbox}."""
        folder = self._live().folders.get(canonical_name(name))
        if folder is None:
            raise NoSuchMailbox(name)
        return folder

    @_deferred
    def list_mailboxes(self) -> Sequence[MailboxInfo]:
        data = self._live()
        implicit = {p for name in data.folders for p in parents(name)} - data.folders.keys()
        names = sorted(data.folders.keys() | implicit, key=lambda n: (n != INBOX, n))
        return [
            MailboxInfo(name, None, name in data.subscriptions, selectable=False)
            if name in implicit
            else MailboxInfo(name, data.folders[name].special_use, name in data.subscriptions)
            for name in names
        ]

    @_deferred
    def create_mailbox(self, name: str, special_use: SpecialUse | None = None) -> None:
        self.store.create_folder(self._live(), canonical_name(name), special_use)

    @_deferred
    def delete_mailbox(self, name: str) -> None:
        name = canonical_name(name)
        if name == INBOX:
            raise CannotDeleteInbox(name)
        self.folder(name).delete()
        del self._data.folders[name]

    @_deferred
    def rename_mailbox(self, old: str, new: str) -> None:
        old, new = canonical_name(old), canonical_name(new)
        data = self._live()
        if old == INBOX:
            self._rename_inbox(new)
            return
        moving = sorted(name for name in data.folders if is_inside(name, old))
        if not moving:
            raise NoSuchMailbox(old)
        if new != old and is_inside(new, old):
            raise InvalidMailboxName(f"cannot rename {old!r} into its own child {new!r}")
        renamed = {name: new + name[len(old) :] for name in moving}
        if new in data.folders or any(n in data.folders for n in renamed.values()):
            raise MailboxExists(new)
        for name, to in renamed.items():
            folder = data.folders.pop(name)
            folder.name = to
            data.folders[to] = folder
        for name in [s for s in data.subscriptions if is_inside(s, old)]:
            data.subscriptions.discard(name)
            data.subscriptions.add(new + name[len(old) :])

    def _rename_inbox(self, new: str) -> None:
        # RFC 3501 6.3.5: the messages move to a new folder, INBOX stays (empty), its children stay.
        inbox = self.folder(INBOX)
        if new == INBOX:
            raise MailboxExists(new)
        target = self.store.create_folder(self._data, new, None)
        for message in list(inbox.messages.values()):
            target.add(message.data, message.info.flags, message.info.internal_date)
        inbox.discard(list(inbox.messages))

    @_deferred
    def set_subscribed(self, name: str, subscribed: bool) -> None:
        name = canonical_name(name)
        if subscribed:
            self._live().subscriptions.add(name)
        else:
            self._live().subscriptions.discard(name)

    @_deferred
    def open_mailbox(self, name: str) -> IMailbox:
        return self.store.mailbox_type(self, self.folder(name))

    def close(self) -> Deferred[None]:
        return defer.succeed(None)


@implementer(IMailStore)
class MemoryMailStore:
    """
    Every account in a dict, every message as bytes.

    C{clock} (an L{IReactorTime}) gives the default internal date of new messages; real time if
    not given.
    """

    #: The classes of folders and of mailbox handles; tests replace them to plant bugs.
    folder_type: Callable[[str, int, SpecialUse | None], _Folder] = _Folder
    mailbox_type: Callable[[MemoryAccount, _Folder], IMailbox] = MemoryMailbox

    def __init__(self, clock: IReactorTime | None = None) -> None:
        self._clock = clock
        self._accounts: dict[str, _AccountData] = {}
        # One counter for the whole store, so a re-created folder never repeats a UIDVALIDITY.
        self._uidvalidities = itertools.count(int(time.time()))

    # -- for the handles -----------------------------------------------------------

    def now(self) -> datetime:
        """The default internal date of a new message: now, in whole seconds."""
        seconds = time.time() if self._clock is None else self._clock.seconds()
        return datetime.fromtimestamp(int(seconds), UTC)

    def account_data(self, user: str) -> _AccountData:
        """C{user}'s folders and subscriptions, or L{NoSuchAccount}."""
        data = self._accounts.get(user)
        if data is None:
            raise NoSuchAccount(user)
        return data

    def create_folder(
        self, data: _AccountData, name: str, special_use: SpecialUse | None
    ) -> _Folder:
        """Add a new, empty folder C{name} (canonical) to C{data}, or fail with L{MailboxExists}."""
        if name in data.folders:
            raise MailboxExists(name)
        folder = data.folders[name] = self.folder_type(name, next(self._uidvalidities), special_use)
        return folder

    # -- IMailStore ------------------------------------------------------------------

    @_deferred
    def create_account(self, user: str) -> None:
        if user in self._accounts:
            raise AccountExists(user)
        data = self._accounts[user] = _AccountData()
        for name, role in ((INBOX, None), *DEFAULT_FOLDERS):
            self.create_folder(data, name, role)
            data.subscriptions.add(name)

    @_deferred
    def delete_account(self, user: str) -> None:
        for folder in self.account_data(user).folders.values():
            folder.delete()
        del self._accounts[user]

    @_deferred
    def list_accounts(self) -> Sequence[str]:
        return sorted(self._accounts)

    @_deferred
    def open_account(self, user: str) -> IAccount:
        return MemoryAccount(self, user)

    @_deferred
    def deliver(
        self,
        users: Sequence[str],
        source: IMessageSource,
        internal_date: datetime | None = None,
    ) -> dict[str, MessageInfo]:
        # Check everything first: a delivery that fails leaves no copy anywhere.
        inboxes = {user: self.account_data(user).folders[INBOX] for user in users}
        date = _aware(internal_date or self.now())
        data = _read_source(source)
        return {user: inbox.add(data, frozenset(), date) for user, inbox in inboxes.items()}

    def close(self) -> Deferred[None]:
        return defer.succeed(None)
