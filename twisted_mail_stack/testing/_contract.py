"""Conformance: the general rules: interfaces provided, Deferreds returned, errors as failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from zope.interface.verify import verifyObject

from ..errors import InvalidMailboxName, NoSuchAccount, NoSuchMailbox, NoSuchMessage
from ..interfaces import IAccount, IMailbox, IMaildropLock, IMailStore, IMessageContent
from ..values import StoreMode
from ._base import ALICE, BOB, StoreTestBase, source

_T = TypeVar("_T")


class ContractTests(StoreTestBase):
    async def returned(self, what: str, d: Deferred[_T]) -> _T:
        self.assertIsInstance(d, Deferred, f"{what} must return a Deferred")
        return await d

    async def test_objects_provide_interfaces(self) -> None:
        store = await self.store()
        verifyObject(IMailStore, store)
        verifyObject(IAccount, account := await self.account())
        verifyObject(IMailbox, inbox := await self.mailbox(account=account))
        content = await inbox.open_content((await self.append(inbox)).uid)
        self.addCleanup(content.close)
        verifyObject(IMessageContent, content)
        lock = await inbox.lock()
        self.addCleanup(lock.release)
        verifyObject(IMaildropLock, lock)

    async def test_every_method_returns_a_deferred(self) -> None:
        store, r = await self.store(), self.returned
        await r("create_account", store.create_account(ALICE))
        await r("list_accounts", store.list_accounts())
        await r("deliver", store.deliver([ALICE], source()))
        account = await r("open_account", store.open_account(ALICE))
        await r("IAccount.list_mailboxes", account.list_mailboxes())
        await r("IAccount.create_mailbox", account.create_mailbox("A"))
        await r("IAccount.set_subscribed", account.set_subscribed("A", True))
        await r("IAccount.rename_mailbox", account.rename_mailbox("A", "B"))
        await r("IAccount.delete_mailbox", account.delete_mailbox("B"))
        inbox = await r("IAccount.open_mailbox", account.open_mailbox("INBOX"))
        await r("IMailbox.status", inbox.status())
        [info] = await r("IMailbox.list_messages", inbox.list_messages())
        await r("IMailbox.get_messages", inbox.get_messages([info.uid]))
        content = await r("IMailbox.open_content", inbox.open_content(info.uid))
        await r("IMessageContent.read", content.read(0, 10))
        await r("IMessageContent.close", content.close())
        new = await r("IMailbox.append", inbox.append(source(2)))
        await r("IMailbox.set_flags", inbox.set_flags([new.uid], ["\\Deleted"], StoreMode.ADD))
        await r("IMailbox.copy", inbox.copy([new.uid], "Sent"))
        await r("IMailbox.move", inbox.move([info.uid], "Drafts"))
        await r("IMailbox.expunge", inbox.expunge())
        await r("IMailbox.remove", inbox.remove([new.uid]))
        await r("IMailbox.claim_recent", inbox.claim_recent())
        lock = await r("IMailbox.lock", inbox.lock())
        await r("IMaildropLock.release", lock.release())
        await r("IMailbox.add_listener", inbox.add_listener(print))
        await r("IMailbox.remove_listener", inbox.remove_listener(print))
        await r("IMailbox.refresh", inbox.refresh())
        await r("IMailbox.close", inbox.close())
        await r("IAccount.close", account.close())
        await r("delete_account", store.delete_account(ALICE))
        await r("IMailStore.close", store.close())

    async def test_errors_arrive_as_failures(self) -> None:
        store = await self.store()
        account = await self.account()
        inbox = await self.mailbox(account=account)
        calls: list[tuple[str, Callable[[], Deferred[Any]], type[Exception]]] = [
            ("open_account", lambda: store.open_account(BOB), NoSuchAccount),
            ("deliver", lambda: store.deliver([BOB], source()), NoSuchAccount),
            ("open_mailbox", lambda: account.open_mailbox("Nope"), NoSuchMailbox),
            ("create_mailbox", lambda: account.create_mailbox("a//b"), InvalidMailboxName),
            ("open_content", lambda: inbox.open_content(12345), NoSuchMessage),
            ("set_flags", lambda: inbox.set_flags([1], ["\\Bogus"], StoreMode.ADD), ValueError),
            ("copy", lambda: inbox.copy([1], "Nope"), NoSuchMailbox),
        ]
        for what, call, error in calls:
            try:
                d = call()
            except Exception as e:
                self.fail(f"{what} raised {e!r} instead of returning a failed Deferred")
            await self.fails(d, error, what)
