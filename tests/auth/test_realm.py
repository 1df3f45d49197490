"""MailRealm and build_portal: accounts opened, created at first login, closed at logout."""

from __future__ import annotations

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest
from zope.interface import Interface

from twisted_mail_stack.auth import passwords
from twisted_mail_stack.auth.directory import Directory
from twisted_mail_stack.auth.realm import MailRealm, build_portal
from twisted_mail_stack.auth.userdb import UserDB
from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.errors import AccountExists, NoSuchAccount
from twisted_mail_stack.interfaces import IAccount, IMailStore


class _Account:
    def __init__(self, user: str) -> None:
        self.user = user
        self.closed = 0

    def close(self) -> Deferred[None]:
        self.closed += 1
        return defer.succeed(None)


class RacingStore:
    """A store whose account appears between the realm's first open and its create."""

    def __init__(self) -> None:
        self.opens = 0
        self.account = _Account("a@example.org")

    def open_account(self, user: str) -> Deferred[_Account]:
        self.opens += 1
        if self.opens == 1:
            return defer.fail(NoSuchAccount(user))
        return defer.succeed(self.account)

    def create_account(self, user: str) -> Deferred[None]:
        return defer.fail(AccountExists(user))


class MailRealmTests(unittest.TestCase):
    async def test_creates_account_at_first_login_and_reuses_it(self) -> None:
        store = MemoryMailStore()
        realm = MailRealm(store)
        interface, account, logout = await realm.requestAvatar("a@example.org", None, IAccount)
        self.assertIs(interface, IAccount)
        self.assertTrue(IAccount.providedBy(account))
        self.assertEqual(account.user, "a@example.org")  # type: ignore[attr-defined]
        self.assertEqual(list(await store.list_accounts()), ["a@example.org"])
        names = [m.name for m in await account.list_mailboxes()]  # type: ignore[attr-defined]
        self.assertIn("INBOX", names)
        logout()
        # A second login opens the same account; bytes avatar ids work too.
        _, again, logout = await realm.requestAvatar(b"a@example.org", None, Interface, IAccount)
        self.assertEqual(again.user, "a@example.org")  # type: ignore[attr-defined]
        self.assertEqual(list(await store.list_accounts()), ["a@example.org"])
        logout()

    async def test_concurrent_first_login(self) -> None:
        store = RacingStore()
        _, account, logout = await MailRealm(store).requestAvatar(  # type: ignore[arg-type]
            "a@example.org", None, IAccount
        )
        self.assertIs(account, store.account)
        logout()
        self.assertEqual(store.account.closed, 1)

    def test_other_interfaces_refused(self) -> None:
        realm = MailRealm(MemoryMailStore())
        self.assertRaises(
            NotImplementedError, realm.requestAvatar, "a@example.org", None, Interface
        )
        self.assertRaises(NotImplementedError, realm.requestAvatar, (), None, IAccount)


class PortalTests(unittest.TestCase):
    def setUp(self) -> None:
        self.patch(passwords, "_LN", 4)
        self.pool = ThreadPool(minthreads=1, maxthreads=1)
        self.pool.start()
        self.addCleanup(self.pool.stop)

    async def test_login_end_to_end(self) -> None:
        from twisted.internet import reactor

        userdb = UserDB()
        userdb.add("alice@example.org", "s3cret")
        store: IMailStore = MemoryMailStore()
        portal = build_portal(
            store, userdb, Directory(["example.org"], userdb), reactor=reactor, threadpool=self.pool
        )
        interface, account, logout = await portal.login(
            UsernamePassword(b"Alice", b"s3cret"), None, IAccount
        )
        self.assertEqual(account.user, "alice@example.org")  # type: ignore[attr-defined]
        logout()
        d = portal.login(UsernamePassword(b"alice", b"wrong"), None, IAccount)
        await self.assertFailure(d, UnauthorizedLogin)  # type: ignore[arg-type]
        self.assertEqual(list(await store.list_accounts()), ["alice@example.org"])
