"""The verified-login cache and the dedicated password thread pool."""

from __future__ import annotations

import threading
from pathlib import Path

from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from twisted_mail_stack.auth import passwords
from twisted_mail_stack.auth.cache import LoginCache
from twisted_mail_stack.auth.checker import PasswordChecker
from twisted_mail_stack.auth.directory import Directory
from twisted_mail_stack.auth.userdb import UserDB
from twisted_mail_stack.config import load_config
from twisted_mail_stack.errors import ConfigError
from twisted_mail_stack.service import LISTENER_KINDS, MailStack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LoginCacheTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = LoginCache(ttl=60, size=3, clock=self.clock)

    def test_hit_needs_same_password_and_hash(self) -> None:
        self.cache.remember("a@x", "pw", "$h1")
        self.assertTrue(self.cache.verified("a@x", "pw", "$h1"))
        self.assertFalse(self.cache.verified("a@x", "PW", "$h1"))
        self.assertFalse(self.cache.verified("b@x", "pw", "$h1"))
        self.assertFalse(self.cache.verified("a@x", "pw", "$h2"))
        # A changed hash drops the entry: going back to the old string needs a fresh check.
        self.assertFalse(self.cache.verified("a@x", "pw", "$h1"))

    def test_password_is_not_stored(self) -> None:
        password = "a-very-distinctive-password"
        self.cache.remember("a@x", password, "$h1")
        for value in self.cache._entries.values():
            self.assertNotIn(password.encode(), repr(value).encode())
            self.assertNotIn(password, repr(value))

    def test_nul_separates_user_and_password(self) -> None:
        self.cache.remember("a@x", "bc", "$h")
        self.assertFalse(self.cache.verified("a@x", "b\0c", "$h"))

    def test_normalised_password_hits(self) -> None:
        # verify_password compares NFC forms; the cache must agree with it.
        self.cache.remember("a@x", "\u00e9", "$h")
        self.assertTrue(self.cache.verified("a@x", "e\u0301", "$h"))

    def test_expiry(self) -> None:
        self.cache.remember("a@x", "pw", "$h")
        self.clock.now += 59.9
        self.assertTrue(self.cache.verified("a@x", "pw", "$h"))
        self.clock.now += 0.1
        self.assertFalse(self.cache.verified("a@x", "pw", "$h"))
        self.assertEqual(len(self.cache), 0)

    def test_lru_bound(self) -> None:
        for user in ("a", "b", "c"):
            self.cache.remember(user, "pw", "$h")
        self.assertTrue(self.cache.verified("a", "pw", "$h"))  # a is now the most recent
        self.cache.remember("d", "pw", "$h")
        self.assertEqual(len(self.cache), 3)
        self.assertFalse(self.cache.verified("b", "pw", "$h"))
        for user in ("a", "c", "d"):
            self.assertTrue(self.cache.verified(user, "pw", "$h"), user)

    def test_ttl_zero_disables(self) -> None:
        cache = LoginCache(ttl=0, clock=self.clock)
        cache.remember("a@x", "pw", "$h")
        self.assertEqual(len(cache), 0)
        self.assertFalse(cache.verified("a@x", "pw", "$h"))

    def test_secret_differs_per_cache(self) -> None:
        other = LoginCache(ttl=60, clock=self.clock)
        self.cache.remember("a@x", "pw", "$h")
        other.remember("a@x", "pw", "$h")
        self.assertNotEqual(self.cache._entries["a@x"][0], other._entries["a@x"][0])


class CachedCheckerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.patch(passwords, "_LN", 4)
        self.userdb = UserDB()
        self.userdb.add("alice@example.org", "s3cret")
        self.pool = ThreadPool(0, 2, name="test-auth-cache")
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.clock = Clock()
        self.cache = LoginCache(ttl=300, size=100, clock=self.clock)
        self.checker = self.make_checker(self.cache)
        self.verified: list[tuple[str, str]] = []
        real = passwords.verify_password

        def counting(password: str, encoded: str) -> bool:
            self.verified.append((encoded, threading.current_thread().name))
            return real(password, encoded)

        self.patch(passwords, "verify_password", counting)
        self.dummies: list[str] = []
        real_dummy = passwords.verify_dummy

        def counting_dummy(password: str) -> bool:
            self.dummies.append(password)
            return real_dummy(password)

        self.patch(passwords, "verify_dummy", counting_dummy)

    def make_checker(self, cache: LoginCache | None) -> PasswordChecker:
        directory = Directory(["example.org"], self.userdb)
        return PasswordChecker(
            self.userdb, directory, reactor=reactor, threadpool=self.pool, cache=cache
        )

    async def login(self, password: str = "s3cret", checker: PasswordChecker | None = None) -> str:
        credentials = UsernamePassword(b"alice@example.org", password.encode())
        return await (checker or self.checker).requestAvatarId(credentials)  # type: ignore[arg-type]

    async def fails(self, password: str) -> None:
        credentials = UsernamePassword(b"alice@example.org", password.encode())
        d = self.checker.requestAvatarId(credentials)  # type: ignore[arg-type]
        await self.assertFailure(d, UnauthorizedLogin)  # type: ignore[arg-type]

    async def test_hit_skips_scrypt(self) -> None:
        self.assertEqual(await self.login(), "alice@example.org")
        self.assertEqual(len(self.verified), 1)
        self.assertIn("test-auth-cache", self.verified[0][1])
        for _ in range(3):
            self.assertEqual(await self.login(), "alice@example.org")
        self.assertEqual(len(self.verified), 1)

    async def test_expiry_needs_scrypt_again(self) -> None:
        await self.login()
        self.clock.now += 299
        await self.login()
        self.assertEqual(len(self.verified), 1)
        self.clock.now += 1
        await self.login()
        self.assertEqual(len(self.verified), 2)

    async def test_wrong_password_of_cached_user_fails_with_scrypt(self) -> None:
        await self.login()
        await self.fails("wrong")
        self.assertEqual(len(self.verified), 2)
        await self.fails("wrong")
        self.assertEqual(len(self.verified), 3, "failures are never cached")
        await self.login()
        self.assertEqual(len(self.verified), 3, "the good entry survives wrong attempts")

    async def test_password_change_takes_effect_at_once(self) -> None:
        await self.login()
        self.userdb.set_password("alice@example.org", "new")
        await self.fails("s3cret")
        self.assertEqual(len(self.verified), 2)
        self.assertEqual(await self.login("new"), "alice@example.org")
        self.assertEqual(len(self.verified), 3)

    async def test_deletion_takes_effect_at_once(self) -> None:
        await self.login()
        self.userdb.remove("alice@example.org")
        await self.fails("s3cret")
        self.assertEqual(len(self.dummies), 1, "an unknown user still costs the dummy scrypt")

    async def test_ttl_zero_disables(self) -> None:
        checker = self.make_checker(LoginCache(ttl=0, clock=self.clock))
        await self.login(checker=checker)
        await self.login(checker=checker)
        self.assertEqual(len(self.verified), 2)


class ServicePoolTests(unittest.TestCase):
    def make(self, **overrides: object) -> MailStack:
        no_listeners = {f"listeners.{kind.key}": [] for kind in LISTENER_KINDS}
        config = load_config(
            overrides={
                "data_dir": str(Path(self.mktemp())),
                "store.backend": "memory",
                "domains": ["example.org"],
                "users": ["u@example.org:pw"],
                **no_listeners,
                **overrides,
            }
        )
        return MailStack(config)

    async def test_dedicated_pool_used_and_stopped(self) -> None:
        self.patch(passwords, "_LN", 4)
        stack = self.make(**{"auth.hash_threads": 3})
        threads: list[str] = []
        real = passwords.verify_password

        def recording(password: str, encoded: str) -> bool:
            threads.append(threading.current_thread().name)
            return real(password, encoded)

        self.patch(passwords, "verify_password", recording)
        stack.startService()
        try:
            await stack.when_ready()
            pool = stack.hash_pool
            assert pool is not None and stack.portal is not None
            self.assertIsNot(pool, reactor.getThreadPool())
            self.assertEqual(pool.max, 3)
            checker = stack.portal.checkers[IUsernamePassword]
            self.assertEqual(
                await checker.requestAvatarId(UsernamePassword(b"u@example.org", b"pw")),
                "u@example.org",
            )
            self.assertEqual(len(threads), 1)
            self.assertIn("mailstack-auth", threads[0])
            # the cache (default 300 s) answers the second login
            await checker.requestAvatarId(UsernamePassword(b"u@example.org", b"pw"))
            self.assertEqual(len(threads), 1)
        finally:
            await stack.stopService()
        self.assertIsNone(stack.hash_pool)
        self.assertFalse(pool.started)
        self.assertEqual([t for t in pool.threads if t.is_alive()], [])
        alive = [t.name for t in threading.enumerate() if "mailstack-auth" in t.name]
        self.assertEqual(alive, [])

    def test_config_bounds(self) -> None:
        for key, value in (
            ("auth.hash_threads", 0),
            ("auth.cache_ttl", -1),
            ("auth.cache_size", 0),
        ):
            with self.assertRaises(ConfigError, msg=key) as caught:
                self.make(**{key: value})
            self.assertIn(key, str(caught.exception))

    def test_config_defaults(self) -> None:
        auth = self.make().config.auth
        self.assertEqual((auth.hash_threads, auth.cache_ttl, auth.cache_size), (2, 300.0, 10_000))
