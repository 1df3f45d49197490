"""POP3 deletions reach other sessions of the same mailbox as expunges (what IMAP will show)."""

from __future__ import annotations

import poplib
from pathlib import Path

from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from twisted_mail_stack.config import load_config
from twisted_mail_stack.service import MailStack
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import INBOX, MessageExpunged

USER = "n@example.org"
OFF: list[str] = []


class NotificationTests(unittest.TestCase):
    async def test_update_fires_expunges_for_other_handles(self) -> None:
        config = load_config(
            overrides={
                "data_dir": str(Path(self.mktemp())), "domains": ["example.org"],
                "users": [f"{USER}:pw"], "listeners.pop3": ["tcp:0:interface=127.0.0.1"],
                **{f"listeners.{k}": OFF for k in
                   ("smtp", "submission", "submissions", "pop3s", "imap", "imaps")},
            }
        )  # fmt: skip
        stack = MailStack(config)
        stack.startService()
        self.addCleanup(stack.stopService)
        await stack.when_ready()
        assert stack.store is not None
        uids = [
            (await stack.store.deliver([USER], BytesSource(b"Subject: %d\r\n\r\nx\r\n" % i)))[
                USER
            ].uid
            for i in range(3)
        ]
        # Another session (an IMAP one, once IMAP lands) with the INBOX open.
        mailbox = await (await stack.store.open_account(USER)).open_mailbox(INBOX)
        self.addCleanup(mailbox.close)
        changes: list[object] = []
        await mailbox.add_listener(changes.append)
        port = stack.ports["pop3"][0].getHost().port

        def pop() -> None:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.user(USER)
            client.pass_("pw")
            client.dele(1)
            client.dele(3)
            client.quit()

        await deferToThread(pop)
        expunged = [c.uid for c in changes if isinstance(c, MessageExpunged)]
        self.assertEqual(expunged, [uids[0], uids[2]])
        self.assertEqual([m.uid for m in await mailbox.list_messages()], [uids[1]])
