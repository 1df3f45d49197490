"""The relay's local delivery: notices to local senders go into the store, aliases expanded."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial import unittest

from twisted_mail_stack.auth.directory import Directory
from twisted_mail_stack.auth.userdb import UserDB
from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.errors import PermanentDeliveryError
from twisted_mail_stack.relay.queue import DeliveryQueue
from twisted_mail_stack.relay.wiring import LocalDelivery
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import INBOX

NOTICE = b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nSubject: x\r\n\r\nbody\r\n"


class LocalDeliveryTests(unittest.TestCase):
    timeout = 20

    def setUp(self) -> None:
        self.store = MemoryMailStore()
        userdb = UserDB(None)
        userdb._set("alice@example.org", "x")
        self.store.create_account("alice@example.org")
        directory = Directory(
            ["example.org"],
            userdb,
            {"team@example.org": ["alice@example.org", "ext@remote.test"]},
        )
        self.queue = DeliveryQueue(self.mktemp(), reactor)
        self.deliver = LocalDelivery(self.store, directory, self.queue)

    def inbox(self) -> list[bytes]:
        folder = self.store.account_data("alice@example.org").folders[INBOX]
        return [m.data for m in folder.messages.values()]

    async def test_into_the_store_with_a_null_return_path(self) -> None:
        await self.deliver("Alice@example.org", BytesSource(NOTICE))
        self.assertEqual(self.inbox(), [b"Return-Path: <>\r\n" + NOTICE])

    async def test_alias_forwarding_out_is_queued_again(self) -> None:
        await self.deliver("team@example.org", BytesSource(NOTICE))
        self.assertEqual(len(self.inbox()), 1)
        [queue_id] = await self.queue.list_ids()
        envelope, source = await self.queue.load(queue_id)
        self.assertEqual(envelope.sender, "")
        self.assertEqual([r.address for r in envelope.recipients], ["ext@remote.test"])
        with source.open() as f:
            self.assertEqual(f.read(), NOTICE)

    async def test_unknown_user_fails_permanently(self) -> None:
        with self.assertRaises(PermanentDeliveryError) as e:
            await self.deliver("nobody@example.org", BytesSource(NOTICE))
        self.assertEqual((e.exception.code, e.exception.enhanced), (550, "5.1.1"))
