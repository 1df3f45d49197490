"""The Maildir backend's compact listing (L{IMessageSizes}) agrees with L{IMailbox.list_messages}."""

from __future__ import annotations

from twisted_mail_stack.backends.maildir.folder import parse_sizes
from twisted_mail_stack.interfaces import IMailbox, IMessageSizes
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import INBOX

from .test_maildir import ALICE, MaildirCase


class InboxCase(MaildirCase):
    async def open_inbox(self) -> IMailbox:
        store = self.make_store()
        await store.create_account(ALICE)
        account = await store.open_account(ALICE)
        mailbox = await account.open_mailbox(INBOX)
        self.addCleanup(mailbox.close)
        return mailbox  # type: ignore[no-any-return]


class ListSizesTests(InboxCase):
    async def assert_agrees(self, mailbox: IMailbox) -> None:
        infos = await mailbox.list_messages()
        uids, sizes = await IMessageSizes(mailbox).list_sizes()
        self.assertEqual(list(uids), [i.uid for i in infos])
        self.assertEqual(list(sizes), [i.size for i in infos])

    async def test_empty_folder(self) -> None:
        mailbox = await self.open_inbox()
        self.assertEqual(await IMessageSizes(mailbox).list_sizes(), ([], []))

    async def test_agrees_with_list_messages(self) -> None:
        mailbox = await self.open_inbox()
        for n in range(1, 8):
            await mailbox.append(BytesSource(b"Subject: %d\n\n" % n + b"x" * n * 37))
        await self.assert_agrees(mailbox)
        await mailbox.remove([2, 5])
        await self.assert_agrees(mailbox)
        uids, _ = await IMessageSizes(mailbox).list_sizes()
        self.assertEqual(list(uids), [1, 3, 4, 6, 7])

    async def test_files_dropped_into_new_are_listed(self) -> None:
        # Another Maildir writer: the listing picks the file up, as list_messages does.
        mailbox = await self.open_inbox()
        await mailbox.append(BytesSource(b"Subject: one\n\nbody\n"))
        folder = self.account_dir()
        with open(f"{folder}/new/1700000000.outside.host", "wb") as f:
            f.write(b"Subject: two\n\nfrom another program\n")
        uids, sizes = await IMessageSizes(mailbox).list_sizes()
        self.assertEqual(len(uids), 2)
        self.assertIn(len(b"Subject: two\n\nfrom another program\n"), list(sizes))
        await self.assert_agrees(mailbox)

    def test_parse_sizes_restores_uid_order(self) -> None:
        # group_concat's order is not promised: the listing is sorted by UID in any case.
        self.assertEqual(parse_sizes("3,1,2", "30,10,20"), ([1, 2, 3], [10, 20, 30]))
        self.assertEqual(parse_sizes("1,2,3", "10,20,30"), ([1, 2, 3], [10, 20, 30]))
        self.assertEqual(parse_sizes(None, None), ([], []))
