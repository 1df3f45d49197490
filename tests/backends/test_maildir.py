"""
The Maildir backend against the conformance suite (as one process, across restarts and as two
processes), and the helpers of the other Maildir test modules.
"""

from __future__ import annotations

import os

from twisted.internet.defer import Deferred
from twisted.trial import unittest

from twisted_mail_stack import testing
from twisted_mail_stack.backends.maildir import MaildirMailStore
from twisted_mail_stack.backends.maildir.layout import account_dir
from twisted_mail_stack.interfaces import IAccount, IMailbox, IMailStore

ALICE = "alice@example.com"
BOB = "bob@example.com"
#: Short, so that the tests that wait for a poll are quick.
POLL = 0.05


class MaildirConformanceTests(testing.MailStoreConformance):
    def make_store(self) -> IMailStore:
        return MaildirMailStore(self.mktemp(), poll_interval=POLL)

    def restart_store(self, store: IMailStore) -> Deferred[IMailStore]:
        assert isinstance(store, MaildirMailStore)

        async def restart() -> IMailStore:
            await store.close()
            return MaildirMailStore(store.root, poll_interval=POLL)

        return Deferred.fromCoroutine(restart())

    def make_peer_store(self, store: IMailStore) -> IMailStore:
        assert isinstance(store, MaildirMailStore)
        return MaildirMailStore(store.root, poll_interval=POLL)


class MaildirCase(unittest.TestCase):
    """Stores over C{self.root} (inside C{self.base}), each closed after the test."""

    timeout = 30

    def setUp(self) -> None:
        self.base = os.path.abspath(self.mktemp())
        self.root = os.path.join(self.base, "mail")
        os.makedirs(self.root)

    def make_store(self, **kwargs: object) -> MaildirMailStore:
        kwargs.setdefault("poll_interval", POLL)
        store = MaildirMailStore(self.root, **kwargs)  # type: ignore[arg-type]
        self.addCleanup(store.close)
        return store

    def account_dir(self, user: str = ALICE) -> str:
        return account_dir(self.root, user)

    async def account(self, store: MaildirMailStore, user: str = ALICE) -> IAccount:
        if user not in await store.list_accounts():
            await store.create_account(user)
        account = await store.open_account(user)
        self.addCleanup(account.close)
        return account

    async def mailbox(
        self, store: MaildirMailStore, name: str = "INBOX", user: str = ALICE
    ) -> IMailbox:
        mailbox = await (await self.account(store, user)).open_mailbox(name)
        self.addCleanup(mailbox.close)
        return mailbox


def files_under(path: str) -> set[str]:
    """Every file and directory below C{path}, relative to it."""
    found = set()
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(directory, name), path))
    return found


def drop(folder: str, data: bytes, name: str, sub: str = "new") -> str:
    """Deliver like a foreign MDA: write into tmp/, then rename into C{sub}/."""
    tmp = os.path.join(folder, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    path = os.path.join(folder, sub, name)
    os.rename(tmp, path)
    return path


class MaildirSubscriptionTests(MaildirCase):
    async def test_delete_keeps_the_subscription(self) -> None:
        # RFC 3501 6.3.6: the server MUST NOT unilaterally remove a subscription (imaptest
        # "listext" lists it after DELETE as \Subscribed \NonExistent).
        store = self.make_store()
        await store.create_account(ALICE)
        account = await store.open_account(ALICE)
        self.addCleanup(account.close)
        await account.create_mailbox("Gone")
        await account.set_subscribed("Gone", True)
        await account.delete_mailbox("Gone")
        infos = {i.name: i for i in await account.list_mailboxes()}
        self.assertTrue(infos["Gone"].subscribed)
        self.assertFalse(infos["Gone"].selectable)
