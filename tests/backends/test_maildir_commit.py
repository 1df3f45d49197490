"""
Group commit of Maildir deliveries (backends/maildir/commit.py), with a thread pool the test
runs by hand: who waits for whom, what is placed together, and that one failure stays alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial import unittest

from twisted_mail_stack.backends.maildir import commit
from twisted_mail_stack.backends.maildir.commit import GroupCommit
from twisted_mail_stack.backends.maildir.hub import Hubs
from twisted_mail_stack.backends.maildir.layout import account_dir
from twisted_mail_stack.backends.maildir.tree import create_account
from twisted_mail_stack.backends.maildir.worker import Worker
from twisted_mail_stack.errors import StorageError
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import INBOX, MessageInfo


class HandPool:
    """A thread pool whose jobs wait until the test runs them (in the test's thread)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], Callable[..., Any], tuple[Any, ...]]] = []

    def callInThreadWithCallback(self, on_result: Callable[..., Any], f: Any, *args: Any) -> None:
        self.jobs.append((on_result, f, args))

    def names(self) -> list[str]:
        return [getattr(f, "__name__", "") for _, f, _ in self.jobs]

    def run(self, index: int = 0) -> None:
        on_result, f, args = self.jobs.pop(index)
        try:
            result = f(*args)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)


class InlineReactor:
    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)


class WrongSize(BytesSource):
    """A source that promises more bytes than it has (the store must refuse it)."""

    @property
    def size(self) -> int:
        return len(self.data) + 1


class GroupCommitTests(unittest.TestCase):
    def setUp(self) -> None:
        root = os.path.abspath(self.mktemp())
        self.path = account_dir(root, "alice@example.com")
        create_account(self.path)
        self.pool = HandPool()
        worker = Worker(InlineReactor(), self.pool, 1.0)  # type: ignore[arg-type]
        self.hubs = Hubs(worker)
        self.commit = GroupCommit(self.hubs.acquire(self.path, INBOX), worker)
        self.addCleanup(lambda: self.commit.hub.folder.close())
        self.results: dict[int, MessageInfo | Failure] = {}

    def deliver(self, n: int, source: BytesSource | None = None) -> Deferred[MessageInfo]:
        d = self.commit.deliver(source or BytesSource(b"message %d\r\n" % n), 1_000_000)
        d.addBoth(lambda r: self.results.__setitem__(n, r))
        return d

    def test_ready_files_wait_and_go_together(self) -> None:
        for n in range(3):
            self.deliver(n)
        self.assertEqual(self.pool.names(), ["prepare"] * 3)
        self.pool.run()  # the first file is ready: placed alone, at once
        self.assertEqual(self.pool.names(), ["prepare", "prepare", "add_group"])
        self.pool.run()
        self.pool.run()  # two more ready while the first group is being placed: they wait
        self.assertEqual(self.pool.names(), ["add_group"])
        self.assertEqual(self.results, {})
        self.assertFalse(self.commit.idle)

        self.pool.run()
        self.assertEqual(self.pool.names(), ["add_group"])  # the next group, under way
        self.assertIsInstance(self.results[0], MessageInfo)
        self.assertNotIn(1, self.results)

        self.pool.run()  # one transaction for both
        self.assertEqual(self.pool.jobs, [])
        uids = [self.results[n].uid for n in range(3)]  # type: ignore[union-attr]
        self.assertEqual(uids, sorted(uids))
        self.assertEqual(len(set(uids)), 3)
        new = os.listdir(os.path.join(self.path, "new"))
        self.assertEqual(len(new), 3)
        self.assertEqual(os.listdir(os.path.join(self.path, "tmp")), [])
        self.assertTrue(self.commit.idle)

    def test_next_group_queued_before_callbacks(self) -> None:
        order: list[str] = []
        d0 = self.deliver(0)
        d0.addCallback(lambda _: order.append("fired 0: " + ",".join(self.pool.names())))
        self.deliver(1)
        self.pool.run()  # prepare 0 -> group [0]
        self.pool.run(0)  # prepare 1: waits for group [0]
        self.pool.run()  # place group [0]
        self.assertEqual(order, ["fired 0: add_group"])

    def test_failed_preparation_fails_alone(self) -> None:
        self.deliver(0)
        self.deliver(1, WrongSize(b"short\r\n"))
        self.deliver(2)
        while self.pool.jobs:
            self.pool.run()
        bad = self.results[1]
        assert isinstance(bad, Failure)
        self.assertIsInstance(bad.value, StorageError)
        self.assertIsInstance(self.results[0], MessageInfo)
        self.assertIsInstance(self.results[2], MessageInfo)
        self.assertEqual(len(os.listdir(os.path.join(self.path, "new"))), 2)
        self.assertEqual(os.listdir(os.path.join(self.path, "tmp")), [])
        self.assertTrue(self.commit.idle)

    def test_failed_placing_fails_the_group_and_removes_its_files(self) -> None:
        def broken(*args: Any) -> Any:
            raise OSError(28, "No space left on device")

        self.patch(commit, "add_group", broken)
        self.deliver(0)
        self.deliver(1)
        while self.pool.jobs:
            self.pool.run()
        for n in (0, 1):
            failure = self.results[n]
            assert isinstance(failure, Failure)
            self.assertIsInstance(failure.value, StorageError)
        self.assertEqual(os.listdir(os.path.join(self.path, "tmp")), [])
        self.assertEqual(os.listdir(os.path.join(self.path, "new")), [])
        self.assertTrue(self.commit.idle)

    def test_a_failing_report_does_not_fail_durable_messages(self) -> None:
        def report(*args: object) -> None:
            raise RuntimeError("report bug")

        self.patch(self.commit.hub, "report", report)
        self.deliver(0)
        while self.pool.jobs:
            self.pool.run()
        self.assertIsInstance(self.results[0], MessageInfo)
        self.assertEqual(len(os.listdir(os.path.join(self.path, "new"))), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(self.commit.idle)
