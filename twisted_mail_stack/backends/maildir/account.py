"""L{IAccount} for one account directory of a L{MaildirMailStore}."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from zope.interface import implementer

from ...errors import (
    CannotDeleteInbox,
    InvalidMailboxName,
    MailboxError,
    MailboxExists,
    NoSuchAccount,
)
from ...interfaces import IAccount, IMailbox
from ...names import canonical_name, is_inbox, is_inside, parents
from ...values import DELIMITER, INBOX, MailboxInfo, MessageExpunged, SpecialUse
from . import tree
from .folder import Outcome
from .hub import FolderHub, holding
from .layout import folder_dirname, folder_path
from .mailbox import MaildirMailbox
from .worker import deferred

if TYPE_CHECKING:
    from .store import MaildirMailStore

T = TypeVar("T")


@implementer(IAccount)
class MaildirAccount:
    """See L{IAccount}. Folder names map to directories as L{layout} describes."""

    delimiter = DELIMITER

    def __init__(self, store: MaildirMailStore, user: str, path: str) -> None:
        self._store = store
        self.user = user
        self.path = path

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return await self._store.worker.run(fn, *args)
        except NoSuchAccount:
            raise NoSuchAccount(self.user) from None  # deleted while open

    def _folder_path(self, name: str) -> str:
        return folder_path(self.path, name)

    @deferred
    async def list_mailboxes(self) -> Sequence[MailboxInfo]:
        folders, roles, subscribed = await self._run(self._snapshot)
        names = set(folders)
        implied = {p for n in names for p in parents(n)} | subscribed
        infos = [MailboxInfo(INBOX, roles.get(INBOX), INBOX in subscribed)]
        for name in sorted((names | implied) - {INBOX}):
            infos.append(MailboxInfo(name, roles.get(name), name in subscribed, name in names))
        return infos

    def _snapshot(self) -> tuple[list[str], dict[str, SpecialUse], set[str]]:
        return (
            tree.list_folders(self.path),
            tree.read_special_use(self.path),
            tree.read_subscriptions(self.path),
        )

    @deferred
    async def create_mailbox(self, name: str, special_use: SpecialUse | None = None) -> None:
        name = canonical_name(name)
        if is_inbox(name):
            raise MailboxExists(name)
        folder_dirname(name)  # InvalidMailboxName before any work
        await self._run(tree.create_folder, self.path, name, special_use)

    @deferred
    async def delete_mailbox(self, name: str) -> None:
        name = canonical_name(name)
        if is_inbox(name):
            raise CannotDeleteInbox(name)
        await self._vanishing([name], tree.delete_folder, self.path, name)

    @deferred
    async def rename_mailbox(self, old: str, new: str) -> None:
        old, new = canonical_name(old), canonical_name(new)
        folder_dirname(new)
        if is_inbox(new):
            raise MailboxExists(new)
        if is_inbox(old):
            await self._rename_inbox(new)
            return
        if is_inside(new, old):
            raise InvalidMailboxName(f"cannot rename {old!r} into itself")
        plan = await self._run(tree.rename_plan, self.path, old, new)
        await self._vanishing([src for src, _ in plan], tree.rename_folders, self.path, old, new)

    async def _rename_inbox(self, new: str) -> None:
        # RFC 3501 6.3.5: move every message of INBOX into a new folder; INBOX stays, and so
        # do its children.
        await self.create_mailbox(new)
        inbox = await self.open_mailbox(INBOX)
        try:
            await inbox.move([info.uid for info in await inbox.list_messages()], new)
        finally:
            await inbox.close()

    async def _vanishing(self, names: list[str], op: Callable[..., T], *args: object) -> T:
        """
        Run C{op(*args)}, which takes the folders C{names} away from their paths: handles open
        on them then see every message expunged, with the last HIGHESTMODSEQ they knew (the
        folder has no later one), and fail with L{NoSuchMailbox} from then on.
        """
        hubs = [h for n in names if (h := self._store.hubs.get(self._folder_path(n)))]
        async with holding(hubs):
            result, known = await self._run(_forgetting, hubs, op, args)
            for hub, outcome in zip(hubs, known, strict=True):
                uids, modseq = outcome.result
                self._store.hubs.forget(hub)
                hub.report(
                    [*outcome.changes, *(MessageExpunged(hub.name, uid, modseq) for uid in uids)],
                    outcome.view,
                )
            return result

    @deferred
    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        await self._run(tree.set_subscribed, self.path, canonical_name(name), subscribed)

    @deferred
    async def open_mailbox(self, name: str) -> IMailbox:
        name = canonical_name(name)
        path = self._folder_path(name)
        hub = self._store.hubs.acquire(path, name)
        try:
            uidvalidity = await hub.call(hub.folder.refresh)
        except BaseException:
            await self._store.hubs.release(hub)
            raise
        return MaildirMailbox(self._store, self.path, hub, uidvalidity)

    @deferred
    async def close(self) -> None:
        pass


def _forgetting(
    hubs: list[FolderHub], op: Callable[..., T], args: tuple[object, ...]
) -> tuple[T, list[Outcome[tuple[list[int], int]]]]:
    """In a thread: what each hub's folder holds, then C{op(*args)}."""
    known = []
    for hub in hubs:
        try:
            known.append(hub.folder.contents(hub.view))
        except MailboxError:  # unreadable: its handles learn nothing more
            known.append(Outcome(([], 0), [], hub.view))
    return op(*args), known
