"""PasswordChecker: good logins, bad ones that all look alike, work done off the reactor thread."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool
from twisted.trial import unittest

from twisted_mail_stack.auth import passwords
from twisted_mail_stack.auth.checker import PasswordChecker
from twisted_mail_stack.auth.directory import Directory
from twisted_mail_stack.auth.userdb import UserDB


class PasswordCheckerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.patch(passwords, "_LN", 4)
        self.userdb = UserDB()
        self.userdb.add("alice@example.org", "s3cret")
        self.pool = ThreadPool(minthreads=1, maxthreads=2, name="test-auth")
        self.pool.start()
        self.addCleanup(self.pool.stop)
        directory = Directory(["example.org", "example.net"], self.userdb)
        self.checker = PasswordChecker(
            self.userdb, directory, reactor=reactor, threadpool=self.pool
        )
        # Record every scrypt verification: which hash, and in which thread.
        self.verified: list[tuple[str, str | None]] = []
        real = passwords.verify_password

        def counting(password: str, encoded: str) -> bool:
            self.verified.append((encoded, threading.current_thread().name))
            return real(password, encoded)

        self.patch(passwords, "verify_password", counting)

    async def login(self, username: bytes | str, password: bytes | str) -> str:
        return await self.checker.requestAvatarId(UsernamePassword(username, password))  # type: ignore[arg-type]

    async def failure_of(self, username: bytes | str, password: bytes | str) -> UnauthorizedLogin:
        deferred = self.checker.requestAvatarId(UsernamePassword(username, password))  # type: ignore[arg-type]
        return await self.assertFailure(deferred, UnauthorizedLogin)  # type: ignore[arg-type]

    async def test_success_gives_the_account_name(self) -> None:
        for name in (b"alice@example.org", b"ALICE@Example.ORG.", b"Alice", "alice@example.org"):
            self.assertEqual(await self.login(name, b"s3cret"), "alice@example.org")
        self.assertEqual(await self.login(b"alice", "s3cret"), "alice@example.org")

    async def test_scrypt_runs_in_the_pool(self) -> None:
        await self.login(b"alice@example.org", b"s3cret")
        [(_, thread)] = self.verified
        self.assertNotEqual(thread, threading.current_thread().name)
        self.assertIn("test-auth", thread or "")

    async def test_all_failures_look_alike_and_cost_one_verification(self) -> None:
        attempts: list[tuple[bytes | str, bytes | str]] = [
            (b"alice@example.org", b"wrong"),  # wrong password
            (b"nobody@example.org", b"s3cret"),  # unknown user
            (b"alice@example.com", b"s3cret"),  # the same name in a foreign domain
            (b"not an address", b"s3cret"),  # cannot be a user at all
            (b"al\xffice@example.org", b"s3cret"),  # not UTF-8
            (b"alice@example.org", b"s3\xffcret"),  # password not UTF-8
            (b"", b""),
        ]
        messages = set()
        for username, password in attempts:
            self.verified.clear()
            failure = await self.failure_of(username, password)
            messages.add((type(failure), str(failure)))
            self.assertEqual(len(self.verified), 1, f"{username!r}: {self.verified}")
        self.assertEqual(messages, {(UnauthorizedLogin, "invalid user name or password")})

    async def test_unknown_user_verifies_against_the_dummy_hash(self) -> None:
        await self.failure_of(b"nobody@example.org", b"pw")
        [(encoded, _)] = self.verified
        self.assertEqual(encoded, passwords.DUMMY_HASH)

    async def test_bare_name_without_directory_fails(self) -> None:
        checker = PasswordChecker(self.userdb, reactor=reactor, threadpool=self.pool)
        d = checker.requestAvatarId(UsernamePassword(b"alice", b"s3cret"))
        await self.assertFailure(d, UnauthorizedLogin)  # type: ignore[arg-type]
        self.assertEqual(
            await checker.requestAvatarId(UsernamePassword(b"alice@example.org", b"s3cret")),
            "alice@example.org",
        )

    async def test_user_added_while_running(self) -> None:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "passwd")
        live = UserDB.load(path)
        checker = PasswordChecker(live, reactor=reactor, threadpool=self.pool)

        def login() -> Deferred[str]:
            return checker.requestAvatarId(UsernamePassword(b"new@example.org", b"pw"))

        await self.assertFailure(login(), UnauthorizedLogin)  # type: ignore[arg-type]
        admin = UserDB.load(path)
        admin.add("new@example.org", "pw")
        admin.save()
        self.assertEqual(await login(), "new@example.org")

    async def test_default_reactor_thread_pool(self) -> None:
        checker = PasswordChecker(self.userdb)
        self.assertEqual(
            await checker.requestAvatarId(UsernamePassword(b"alice@example.org", b"s3cret")),
            "alice@example.org",
        )
