"""L{IMailStore} over a tree of Maildir++ accounts: C{<root>/<domain>/<local>/}."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ...errors import AccountExists, NoSuchAccount
from ...interfaces import IAccount, IMailStore, IMessageSource
from ...values import INBOX, MessageInfo
from . import tree
from .account import MaildirAccount
from .commit import GroupCommits
from .delivery import deliver
from .hub import Hubs
from .layout import account_dir
from .rows import to_us
from .worker import Worker, deferred


@implementer(IMailStore)
class MaildirMailStore:
    """
    Mail in Maildir++ directories that mutt, Dovecot and mbsync read too; see L{layout}.

    Filesystem and index work runs in C{threadpool} (default: the reactor's). Several
    instances, in one process or several, may share one C{root}; each finds the others'
    changes by polling every C{poll_interval} seconds while a folder has listeners.
    """

    def __init__(
        self,
        root: str,
        *,
        reactor: Any = None,
        threadpool: ThreadPool | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.root = os.path.abspath(root)
        self.worker = Worker(reactor, threadpool or reactor.getThreadPool(), poll_interval)
        self.hubs = Hubs(self.worker)
        self._commits = GroupCommits(self.hubs, self.worker)

    def _account_dir(self, user: str) -> str:
        """The account's directory; L{NoSuchAccount} for a name that cannot be an account."""
        try:
            return account_dir(self.root, user)
        except ValueError:
            raise NoSuchAccount(user) from None

    @deferred
    async def create_account(self, user: str) -> None:
        """See L{IMailStore}; L{ValueError} for a name that cannot be an account."""
        try:
            await self.worker.run(tree.create_account, account_dir(self.root, user))
        except AccountExists:
            raise AccountExists(user) from None

    @deferred
    async def delete_account(self, user: str) -> None:
        path = self._account_dir(user)
        try:
            await self.worker.run(tree.delete_account, self.root, path)
        except NoSuchAccount:
            raise NoSuchAccount(user) from None
        finally:
            self._commits.drop(path)

    @deferred
    async def list_accounts(self) -> Sequence[str]:
        return await self.worker.run(tree.list_accounts, self.root)

    @deferred
    async def open_account(self, user: str) -> IAccount:
        path = self._account_dir(user)
        if not await self.worker.run(tree.is_maildir, path):
            raise NoSuchAccount(user)
        return MaildirAccount(self, user, path)

    @deferred
    async def deliver(
        self,
        users: Sequence[str],
        source: IMessageSource,
        internal_date: datetime | None = None,
    ) -> dict[str, MessageInfo]:
        date_us = to_us(internal_date or datetime.now(UTC))
        users = list(dict.fromkeys(users))
        paths = [self._account_dir(user) for user in users]
        if len(users) == 1:
            # The common case: joins the other deliveries waiting for that INBOX (group commit).
            try:
                info = await self._commits.get(paths[0]).deliver(source, date_us)
            except NoSuchAccount:
                self._commits.drop(paths[0])
                raise NoSuchAccount(users[0]) from None
            return {users[0]: info}
        missing = await self.worker.run(
            lambda: [u for u, p in zip(users, paths, strict=True) if not tree.is_maildir(p)]
        )
        if missing:
            raise NoSuchAccount(missing[0])
        if not users:
            return {}
        async with self.hubs.using([(path, INBOX) for path in paths]) as hubs:
            folders = [hub.folder for hub in hubs]
            outcomes = await self.worker.run(
                deliver, folders, [h.view for h in hubs], source, date_us
            )
            for hub, outcome in zip(hubs, outcomes, strict=True):
                hub.report(outcome.changes, outcome.view)
        return {user: outcome.result[0] for user, outcome in zip(users, outcomes, strict=True)}

    @deferred
    async def close(self) -> None:
        await self._commits.close()
        await self.hubs.close()
