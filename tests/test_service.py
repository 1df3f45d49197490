"""MailStack, the embedding API: start-up, users, store, TLS, shutdown."""

from __future__ import annotations

from pathlib import Path

from twisted.cred.credentials import UsernamePassword
from twisted.trial import unittest

from twisted_mail_stack.config import load_config
from twisted_mail_stack.errors import ConfigError
from twisted_mail_stack.interfaces import IAccount
from twisted_mail_stack.service import LISTENER_KINDS, MailStack


class MailStackTests(unittest.TestCase):
    def make(self, **overrides: object) -> MailStack:
        data = Path(self.mktemp())
        # No listeners: these tests are about the service, and a default port may be taken.
        no_listeners = {f"listeners.{kind.key}": [] for kind in LISTENER_KINDS}
        config = load_config(
            overrides={
                "data_dir": str(data),
                "store.backend": "memory",
                **no_listeners,
                **overrides,
            }
        )
        return MailStack(config)

    async def start(self, stack: MailStack) -> None:
        stack.startService()
        self.addCleanup(stack.stopService)
        await stack.when_ready()

    async def test_demo_user_on_first_start(self) -> None:
        stack = self.make()
        await self.start(stack)
        assert stack.userdb is not None and stack.store is not None and stack.portal is not None
        self.assertEqual(stack.userdb.users(), ["demo@localhost"])
        self.assertIsNotNone(stack.demo_password)
        self.assertEqual(list(await stack.store.list_accounts()), ["demo@localhost"])
        credentials = UsernamePassword(b"demo@localhost", stack.demo_password.encode())
        interface, avatar, logout = await stack.portal.login(credentials, None, IAccount)
        self.assertEqual(avatar.user, "demo@localhost")
        logout()

    async def test_quick_users_replace_the_demo_user(self) -> None:
        stack = self.make(domains=["example.org"], users=["a@example.org:pw", "B@Example.org:pw2"])
        await self.start(stack)
        assert stack.userdb is not None and stack.store is not None
        self.assertEqual(stack.userdb.users(), ["a@example.org", "b@example.org"])
        self.assertIsNone(stack.demo_password)
        self.assertEqual(
            sorted(await stack.store.list_accounts()), ["a@example.org", "b@example.org"]
        )

    async def test_tls_pair_made_in_data_dir(self) -> None:
        stack = self.make()
        await self.start(stack)
        data = Path(stack.config.data_dir)
        assert stack.tls is not None
        self.assertTrue((data / "tls" / "cert.pem").is_file())
        self.assertEqual((data / "tls" / "key.pem").stat().st_mode & 0o077, 0)

    async def test_unwritable_data_dir_fails_ready(self) -> None:
        blocker = Path(self.mktemp())
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("")
        stack = MailStack(load_config(overrides={"data_dir": str(blocker / "sub")}))
        stack.startService()
        failure = await self.assertFailure(stack.when_ready(), ConfigError)
        self.assertIn("data_dir", str(failure))
        self.flushLoggedErrors(ConfigError)
        await stack.stopService()

    async def test_maildir_store_under_data_dir(self) -> None:
        stack = self.make(
            **{"store.backend": "maildir", "domains": ["example.org"], "users": ["u@example.org:x"]}
        )
        await self.start(stack)
        self.assertTrue(
            (Path(stack.config.data_dir) / "mail" / "example.org" / "u" / "new").is_dir()
        )
