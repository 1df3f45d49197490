"""The in-memory backend: the conformance suite, and what is particular to it."""

from __future__ import annotations

from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.interfaces import IMailStore
from twisted_mail_stack.testing import MailStoreConformance


class MemoryConformanceTests(MailStoreConformance):
    def make_store(self) -> IMailStore:
        return MemoryMailStore()


class MemorySharedStorageTests(MailStoreConformance):
    """
    The restart and cross-process tests, with the one store standing for the storage: a memory
    store's contents live as long as the object, so a "restart" or a "peer" is the same object.
    This checks those tests themselves against the reference backend.
    """

    def make_store(self) -> IMailStore:
        return MemoryMailStore()

    def restart_store(self, store: IMailStore) -> IMailStore:
        return store

    def make_peer_store(self, store: IMailStore) -> IMailStore:
        return store
