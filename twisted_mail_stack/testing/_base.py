"""The fixtures every part of the conformance suite shares: store hooks, cleanups and helpers."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.trial import unittest

from ..interfaces import IAccount, IMailbox, IMailStore
from ..sources import BytesSource
from ..values import Change, MailboxInfo, MessageInfo, StoreMode

_T = TypeVar("_T")

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.org"

#: A fixed, timezone-aware internal date with whole seconds (IMAP's precision), not in UTC.
DATE = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))


def message(n: int = 1, body: bytes = b"Hello.\r\n") -> bytes:
    """A small RFC 5322 message, distinct for each C{n}."""
    return b"Subject: test %d\r\nMessage-ID: <%d@example.com>\r\n\r\n%s" % (n, n, body)


def source(n: int = 1) -> BytesSource:
    """L{message}(C{n}) as an L{IMessageSource}."""
    return BytesSource(message(n))


async def _resolve(value: _T | Awaitable[_T]) -> _T:
    """Accept a hook's plain value, Deferred or coroutine (an C{async def} hook)."""
    if inspect.isawaitable(value):
        return await value
    return value


class StoreTestBase(unittest.TestCase):
    """
    Base of the conformance suite: the three hooks a backend's test overrides, and helpers that
    open stores, accounts and mailboxes and close each of them after the test.
    """

    timeout = 30

    def make_store(self) -> IMailStore | Deferred[IMailStore]:
        """Return a new, empty store."""
        raise NotImplementedError

    def restart_store(self, store: IMailStore) -> IMailStore | Deferred[IMailStore] | None:
        """
        Close C{store} and return a fresh instance over the same storage (a process restart);
        None = not persistent: restart tests are skipped.
        """
        return None

    def make_peer_store(self, store: IMailStore) -> IMailStore | Deferred[IMailStore] | None:
        """
        A second, independent instance over the same storage, as another process would open it;
        None = skip cross-process tests.
        """
        return None

    def setUp(self) -> None:
        if type(self).make_store is StoreTestBase.make_store:
            raise unittest.SkipTest(
                "abstract conformance suite: subclass it and override make_store"
            )
        self._store: IMailStore | None = None
        # Handles to close before their store is closed or restarted, newest last.
        self._handles: list[tuple[IMailStore, IAccount | IMailbox]] = []

    # -- stores ------------------------------------------------------------------

    def _register_store(self, store: IMailStore) -> IMailStore:
        self.addCleanup(store.close)
        self.addCleanup(self._close_handles, store)
        return store

    async def _close_handles(self, store: IMailStore) -> None:
        mine = [handle for owner, handle in self._handles if owner is store]
        self._handles = [(owner, h) for owner, h in self._handles if owner is not store]
        for handle in reversed(mine):
            await handle.close()

    async def store(self) -> IMailStore:
        """The test's store, made on first use."""
        if self._store is None:
            self._store = self._register_store(await _resolve(self.make_store()))
        return self._store

    async def restart(self) -> IMailStore:
        """Restart the test's store (closing every handle opened on it); skip if not persistent."""
        old = await self.store()
        await self._close_handles(old)
        restarted = self.restart_store(old)
        if restarted is None:
            raise unittest.SkipTest("restart_store: the backend is not persistent")
        new = self._store = self._register_store(await _resolve(restarted))
        return new

    async def peer(self) -> IMailStore:
        """A second store over the same storage, as another process; skip if not supported."""
        peer = self.make_peer_store(await self.store())
        if peer is None:
            raise unittest.SkipTest("make_peer_store: cross-process tests not supported")
        return self._register_store(await _resolve(peer))

    # -- accounts and mailboxes ----------------------------------------------------

    async def account(self, user: str = ALICE, store: IMailStore | None = None) -> IAccount:
        """Open C{user}'s account, creating it if it does not exist yet."""
        store = store or await self.store()
        if user not in await store.list_accounts():
            await store.create_account(user)
        return await self.open_account(user, store)

    async def open_account(self, user: str = ALICE, store: IMailStore | None = None) -> IAccount:
        store = store or await self.store()
        account = await store.open_account(user)
        self._handles.append((store, account))
        return account

    async def mailbox(
        self, name: str = "INBOX", account: IAccount | None = None, create: bool = False
    ) -> IMailbox:
        """Open folder C{name} of C{account} (default: alice's), creating it first if asked."""
        account = account or await self.account()
        if create:
            await account.create_mailbox(name)
        mailbox = await account.open_mailbox(name)
        store = next(s for s, h in self._handles if h is account)
        self._handles.append((store, mailbox))
        return mailbox

    async def append(
        self,
        mailbox: IMailbox,
        data: bytes | int = 1,
        flags: Iterable[str] = (),
        internal_date: datetime | None = DATE,
    ) -> MessageInfo:
        """Append C{data} (or L{message}(C{data}) for an int) and check the returned facts."""
        data = message(data) if isinstance(data, int) else data
        info = await mailbox.append(BytesSource(data), flags, internal_date)
        self.assertEqual(info.size, len(data), "append: MessageInfo.size is not the exact length")
        return info

    async def append_many(self, mailbox: IMailbox, count: int) -> list[MessageInfo]:
        return [await self.append(mailbox, n) for n in range(1, count + 1)]

    # -- observations -----------------------------------------------------------------

    async def listen(self, mailbox: IMailbox) -> list[Change]:
        """Register a listener on C{mailbox} and return the list it appends every change to."""
        changes: list[Change] = []
        await mailbox.add_listener(changes.append)
        return changes

    async def seen_when_fired(
        self, d: Deferred[_T], *logs: list[Change]
    ) -> tuple[_T, list[list[Change]]]:
        """
        Await C{d}; return its result and a copy of each of C{logs} as it was when C{d} fired,
        before any callback of the caller could run.
        """
        seen: list[list[Change]] = []

        def snapshot(result: _T) -> _T:
            seen.extend(list(log) for log in logs)
            return result

        return await d.addCallback(snapshot), seen

    async def names(self, account: IAccount) -> dict[str, MailboxInfo]:
        """The account's folders by name, checking the order list_mailboxes promises."""
        infos = list(await account.list_mailboxes())
        names = [info.name for info in infos]
        self.assertEqual(names[:1], ["INBOX"], "list_mailboxes: INBOX must come first")
        self.assertEqual(
            names[1:], sorted(names[1:]), "list_mailboxes: names after INBOX must be sorted"
        )
        self.assertEqual(len(set(names)), len(names), f"list_mailboxes: duplicate names in {names}")
        return {info.name: info for info in infos}

    async def uids(self, mailbox: IMailbox) -> list[int]:
        return [info.uid for info in await mailbox.list_messages()]

    async def info(self, mailbox: IMailbox, uid: int) -> MessageInfo:
        infos = await mailbox.get_messages([uid])
        self.assertEqual([i.uid for i in infos], [uid], f"get_messages: UID {uid} is missing")
        return infos[0]

    async def content(self, mailbox: IMailbox, uid: int) -> bytes:
        """Read a whole message in one go."""
        content = await mailbox.open_content(uid)
        try:
            return await content.read(0, content.size + 1)
        finally:
            await content.close()

    async def flag(self, mailbox: IMailbox, uids: Iterable[int], *flags: str) -> None:
        await mailbox.set_flags(list(uids), flags, StoreMode.ADD)

    async def fails(self, d: Deferred[Any], error: type[BaseException], what: str) -> BaseException:
        """Await C{d}, which must fail with C{error}; return the exception."""
        try:
            result = await d
        except error as e:
            return e
        except Exception as e:
            self.fail(f"{what}: expected {error.__name__}, got {type(e).__name__}: {e}")
        self.fail(f"{what}: expected {error.__name__}, got result {result!r}")
