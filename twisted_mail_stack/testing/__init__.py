"""
The conformance suite of the mailbox contract (L{twisted_mail_stack.interfaces}).

Every backend, ours or a third party's, runs it from its own tests::

    from twisted_mail_stack.testing import MailStoreConformance

    class MyStoreTests(MailStoreConformance):
        def make_store(self):
            return MyStore(self.mktemp())

        def restart_store(self, store):  # optional: a persistent backend
            ...

A backend that passes it works with every protocol of the project.
"""

from __future__ import annotations

from ._accounts import AccountTests, DeliveryTests
from ._cache import MessageCacheTests
from ._changes import CopyTests, ExpungeTests, FlagTests
from ._contract import ContractTests
from ._folders import DeletedFolderTests, FolderTests, NameTests, SubscriptionTests
from ._messages import AppendTests, ContentTests, ListingTests, StatusTests, UidTests
from ._persistence import PeerTests, RestartTests
from ._sessions import LockTests, NotificationTests, RecentTests

__all__ = ["MailStoreConformance"]


class MailStoreConformance(
    ContractTests,
    AccountTests,
    DeliveryTests,
    NameTests,
    FolderTests,
    SubscriptionTests,
    DeletedFolderTests,
    AppendTests,
    ContentTests,
    UidTests,
    StatusTests,
    ListingTests,
    FlagTests,
    CopyTests,
    ExpungeTests,
    RecentTests,
    LockTests,
    NotificationTests,
    RestartTests,
    PeerTests,
    MessageCacheTests,
):
    """
    Subclass and override make_store (and optionally restart_store / make_peer_store).

    C{make_store} returns a new, empty L{IMailStore} (or a Deferred of one). C{restart_store(store)}
    closes C{store} and returns a fresh instance over the same storage, as after a process restart;
    the default, None, skips the restart tests. C{make_peer_store(store)} returns a second,
    independent instance over the same storage, as another process would open it; the default,
    None, skips the cross-process tests. Every store, account and mailbox a test opens is closed
    after it.
    """
