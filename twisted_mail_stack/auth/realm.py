"""The twisted.cred realm: a checked account name becomes the user's L{IAccount}."""

from __future__ import annotations

from collections.abc import Callable

from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import Interface, implementer

from ..errors import AccountExists, NoSuchAccount
from ..interfaces import IAccount, IMailStore
from .cache import LoginCache
from .checker import PasswordChecker
from .directory import Directory
from .userdb import UserDB

__all__ = ["MailRealm", "build_portal"]

_log = Logger()

#: What L{MailRealm.requestAvatar} gives: (IAccount, the account, logout).
AvatarTuple = tuple[type[Interface], object, Callable[[], None]]


@implementer(IRealm)
class MailRealm:
    """
    Give each logged-in user their account in C{store}, for the L{IAccount} interface.

    The password file decides who exists, so an account missing from the store is created
    at first login. Logging out closes the account.
    """

    def __init__(self, store: IMailStore) -> None:
        self._store = store

    def requestAvatar(
        self, avatarId: str | bytes | tuple[()], mind: object, *interfaces: type[Interface]
    ) -> Deferred[AvatarTuple]:
        """Open (creating if needed) the account C{avatarId}, an account name."""
        if IAccount not in interfaces:
            raise NotImplementedError("MailRealm only provides IAccount")
        if isinstance(avatarId, bytes):
            avatarId = avatarId.decode("utf-8")
        if not isinstance(avatarId, str):
            raise NotImplementedError("MailRealm has no anonymous avatar")
        return Deferred.fromCoroutine(self._open(avatarId))

    async def _open(self, user: str) -> AvatarTuple:
        try:
            account = await self._store.open_account(user)
        except NoSuchAccount:
            try:
                await self._store.create_account(user)
                _log.info("created the mail account of {user}", user=user)
            except AccountExists:
                pass  # another session's first login won the race
            account = await self._store.open_account(user)

        def logout() -> None:
            account.close().addErrback(
                lambda f: _log.failure("closing the account of {user}", f, user=user)
            )

        return IAccount, account, logout


def build_portal(
    store: IMailStore,
    userdb: UserDB,
    directory: Directory | None,
    reactor: object | None = None,
    threadpool: ThreadPool | None = None,
    cache: LoginCache | None = None,
) -> Portal:
    """The portal every protocol logs in through: L{MailRealm} plus L{PasswordChecker}."""
    checker = PasswordChecker(
        userdb, directory, reactor=reactor, threadpool=threadpool, cache=cache
    )
    return Portal(MailRealm(store), [checker])
