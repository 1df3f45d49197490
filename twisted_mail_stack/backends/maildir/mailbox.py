"""L{IMailbox} for one open Maildir folder: a session's handle on a shared L{FolderHub}."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from zope.interface import implementer

from ...interfaces import (
    ChangeListener,
    IMailbox,
    IMaildropLock,
    IMessageCache,
    IMessageContent,
    IMessageReader,
    IMessageSizes,
    IMessageSource,
)
from ...names import canonical_name
from ...values import (
    CopyResult,
    MailboxStatus,
    MessageInfo,
    StoreMode,
    StoreResult,
    normalise_flags,
)
from .content import MaildirContent, MaildropLock
from .files import unlink_quietly, write_tmp
from .hub import FolderHub
from .layout import folder_path
from .msgcache import CacheFile
from .rows import to_us
from .worker import deferred

if TYPE_CHECKING:
    from .store import MaildirMailStore


@implementer(IMailbox, IMessageReader, IMessageSizes, IMessageCache)
class MaildirMailbox:
    """A handle; see L{IMailbox}. Its UID operations fail if the folder was renumbered since."""

    def __init__(
        self, store: MaildirMailStore, account_dir: str, hub: FolderHub, uidvalidity: int
    ) -> None:
        self._store = store
        self._account_dir = account_dir
        self._hub = hub
        self._folder = hub.folder
        self.name = hub.name
        self.uidvalidity = uidvalidity
        self._listeners: list[ChangeListener] = []
        self._locks: list[MaildropLock] = []
        self._closed = False
        self._cache: CacheFile | None = None
        self._cache_written = False

    @deferred
    async def status(self) -> MailboxStatus:
        meta, count, unseen, recent = await self._hub.call(self._folder.status)
        return MailboxStatus(
            meta.uidvalidity, meta.uidnext, count, unseen, meta.highestmodseq, recent
        )

    @deferred
    async def list_messages(self) -> Sequence[MessageInfo]:
        return await self._hub.call(self._folder.messages, self.uidvalidity)

    @deferred
    async def list_sizes(self) -> tuple[Sequence[int], Sequence[int]]:
        return await self._hub.call(self._folder.sizes, self.uidvalidity)

    @deferred
    async def get_messages(self, uids: Iterable[int]) -> Sequence[MessageInfo]:
        return await self._hub.call(self._folder.get, self.uidvalidity, list(uids))

    @deferred
    async def open_content(self, uid: int) -> IMessageContent:
        fd, size = await self._hub.call(self._folder.open_file, self.uidvalidity, uid)
        return MaildirContent(self._store.worker, fd, size)

    @deferred
    async def read_messages(self, uids: Sequence[int], max_size: int) -> Mapping[int, bytes]:
        return await self._hub.call(self._folder.read_whole, self.uidvalidity, list(uids), max_size)

    @deferred
    async def get_cached(
        self, uids: Sequence[int], fields: Sequence[str]
    ) -> Mapping[tuple[int, str], bytes]:
        cache = self._cache_file()
        return await self._store.worker.run(cache.get, self.uidvalidity, list(uids), list(fields))

    @deferred
    async def put_cached(self, entries: Mapping[tuple[int, str], bytes]) -> None:
        if entries:
            self._cache_written = True
            await self._store.worker.run(self._cache_file().put, self.uidvalidity, dict(entries))

    def _cache_file(self) -> CacheFile:
        if self._cache is None:
            self._cache = CacheFile(self._folder.path)
        return self._cache

    @deferred
    async def append(
        self,
        source: IMessageSource,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> MessageInfo:
        flags = normalise_flags(flags)
        date_us = to_us(internal_date or datetime.now(UTC))
        self._hub.check()
        # The slow part, writing and fsyncing the bytes, happens before the folder is locked.
        tmp, size = await self._store.worker.run(write_tmp, self._folder.path, source, date_us)
        try:
            (info,) = await self._hub.call(self._folder.add, [(tmp, size, flags, date_us)])
        except BaseException:
            await self._store.worker.run(unlink_quietly, tmp)
            raise
        return info

    @deferred
    async def set_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: StoreMode,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        flags = normalise_flags(flags)
        updated, conflicts = await self._hub.call(
            self._folder.set_flags, self.uidvalidity, list(uids), flags, mode, unchanged_since
        )
        return StoreResult(tuple(updated), tuple(conflicts))

    @deferred
    async def copy(self, uids: Iterable[int], target: str) -> CopyResult:
        return await self._transfer(list(uids), target, move=False)

    @deferred
    async def move(self, uids: Iterable[int], target: str) -> CopyResult:
        return await self._transfer(list(uids), target, move=True)

    async def _transfer(self, uids: list[int], target: str, move: bool) -> CopyResult:
        name = canonical_name(target)
        path = folder_path(self._account_dir, name)
        source = self._hub
        async with self._store.hubs.using([(path, name)], source) as (dest,):
            # Linking the files into the target's tmp/ first keeps the copy all-or-nothing.
            exported = await source.call_locked(
                self._folder.export, self.uidvalidity, uids, dest.folder
            )
            try:
                infos = await dest.call_locked(dest.folder.add, [f for _, f in exported])
            except BaseException:
                await self._store.worker.run(unlink_quietly, *(f[0] for _, f in exported))
                raise
            if move:
                gone = [uid for uid, _ in exported]
                await source.call_locked(self._folder.remove, self.uidvalidity, gone, False)
            return CopyResult(
                dest.view.uidvalidity,
                {uid: i.uid for (uid, _), i in zip(exported, infos, strict=True)},
            )

    @deferred
    async def expunge(self, uids: Iterable[int] | None = None) -> Sequence[int]:
        wanted = None if uids is None else list(uids)
        return await self._hub.call(self._folder.remove, self.uidvalidity, wanted, True)

    @deferred
    async def remove(self, uids: Iterable[int]) -> Sequence[int]:
        return await self._hub.call(self._folder.remove, self.uidvalidity, list(uids), False)

    @deferred
    async def claim_recent(self) -> Sequence[int]:
        return await self._hub.call(self._folder.claim_recent, self.uidvalidity)

    @deferred
    async def lock(self) -> IMaildropLock:
        self._hub.check()
        lock = await self._store.worker.run(MaildropLock.take, self._folder.path, self.name)
        self._locks.append(lock)
        return lock

    @deferred
    async def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)
        self._hub.add_listener(listener)

    @deferred
    async def remove_listener(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
            self._hub.remove_listener(listener)

    @deferred
    async def refresh(self) -> None:
        await self._hub.call(self._folder.refresh)

    @deferred
    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for listener in self._listeners:
            self._hub.remove_listener(listener)
        for lock in self._locks:
            lock.release()
        if self._cache is not None:
            await self._close_cache(self._cache)
        await self._store.hubs.release(self._hub)

    async def _close_cache(self, cache: CacheFile) -> None:
        """Close the cache file, first dropping expunged messages' entries if this handle wrote."""
        try:
            if self._cache_written and not self._hub.gone:
                uids, _ = await self._hub.call(self._folder.sizes, self.uidvalidity)
                await self._store.worker.run(cache.prune, self.uidvalidity, uids)
        except Exception:
            pass  # a cache: its entries of expunged UIDs are merely never asked for again
        finally:
            await self._store.worker.run(cache.close)
