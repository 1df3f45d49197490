"""The twisted.cred checker of user name and password against the L{UserDB}."""

from __future__ import annotations

from collections.abc import Callable

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from . import passwords
from .cache import LoginCache
from .directory import Directory
from .userdb import UserDB, canonical_user

__all__ = ["PasswordChecker"]

#: The one failure every bad login gets, so a client cannot tell unknown users from bad passwords.
FAILURE_MESSAGE = "invalid user name or password"


@implementer(ICredentialsChecker)
class PasswordChecker:
    """
    Check L{IUsernamePassword} credentials; the avatar id is the account name (C{str}).

    The user name is normalised like every address (local part lower-cased, domain
    normalised); a bare name without C{@} belongs to the directory's first local domain.
    scrypt runs in C{threadpool} (default: that of C{reactor}, any L{IReactorThreads}, by
    default the global reactor), never in the reactor thread. An unknown user costs the same
    scrypt work as a wrong password and fails with the same L{UnauthorizedLogin}.

    Give the checker a pool of its own (see L{MailStack}): scrypt takes tens of milliseconds
    and 16 MiB, and must not hold up storage work queued in the reactor's pool. With a
    L{LoginCache}, a login verified within the cache's lifetime against the user's current
    hash succeeds without scrypt; failures always pay for one scrypt verification.
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(
        self,
        userdb: UserDB,
        directory: Directory | None = None,
        reactor: object | None = None,
        threadpool: ThreadPool | None = None,
        cache: LoginCache | None = None,
    ) -> None:
        self._userdb = userdb
        self._directory = directory
        self._reactor = reactor
        self._threadpool = threadpool
        self.cache = cache

    def account_name(self, username: str) -> str | None:
        """The account name a login name refers to, or None if it cannot be one."""
        if "@" not in username and self._directory and self._directory.default_domain:
            username = f"{username}@{self._directory.default_domain}"
        try:
            return canonical_user(username)
        except ValueError:
            return None

    # Twisted types avatar ids as bytes; ours are account names, str.
    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[str]:  # type: ignore[override]
        return Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernamePassword) -> str:
        username = _text(credentials.username)
        password = _text(credentials.password)
        name = self.account_name(username) if username is not None else None
        encoded = self._userdb.get_hash(name) if name is not None else None
        if password is None or encoded is None:
            # Burn the same scrypt work as a real check, so timing does not reveal users.
            await self._in_thread(passwords.verify_dummy, password or "")
            raise UnauthorizedLogin(FAILURE_MESSAGE)
        assert name is not None
        if self.cache is not None and self.cache.verified(name, password, encoded):
            return name
        # Looked up at call time, so tests can count verifications by patching the module.
        if not await self._in_thread(passwords.verify_password, password, encoded):
            raise UnauthorizedLogin(FAILURE_MESSAGE)
        if self.cache is not None:
            self.cache.remember(name, password, encoded)
        return name

    def _in_thread(self, f: Callable[..., bool], *args: str) -> Deferred[bool]:
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        threads = IReactorThreads(reactor)
        pool = self._threadpool if self._threadpool is not None else threads.getThreadPool()
        return deferToThreadPool(threads, pool, f, *args)


def _text(value: bytes | str) -> str | None:
    """Credentials may carry bytes (Twisted's protocols) or str; None if not UTF-8."""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None
