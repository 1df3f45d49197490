"""The SQLite example backend (examples/sqlite_backend.py) passes the conformance suite."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial import unittest

from twisted_mail_stack import testing
from twisted_mail_stack.errors import MailboxInUse
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import MessageAdded

_PATH = Path(__file__).resolve().parents[1] / "examples" / "sqlite_backend.py"


def _load_example():
    """Import the example by file path: examples/ is not a package."""
    name = "mailstack_example_sqlite_backend"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_example = _load_example()
SQLiteMailStore = _example.SQLiteMailStore
POLL_INTERVAL = _example.POLL_INTERVAL


class SQLiteExampleConformance(testing.MailStoreConformance):
    def make_store(self):
        return SQLiteMailStore(self.mktemp() + ".db")

    def restart_store(self, store):
        return store.close().addCallback(lambda _: SQLiteMailStore(store.path))

    def make_peer_store(self, store):
        return SQLiteMailStore(store.path)


class SQLiteExampleSpecifics(unittest.TestCase):
    """What the conformance suite cannot see: the poller, and locks held by a dying process."""

    async def _inbox(self, store):
        self.addCleanup(store.close)
        if "alice@example.com" not in await store.list_accounts():
            await store.create_account("alice@example.com")
        inbox = await (await store.open_account("alice@example.com")).open_mailbox("INBOX")
        self.addCleanup(inbox.close)
        return inbox

    async def test_poller_reports_peer_changes_without_refresh(self) -> None:
        clock = Clock()
        path = self.mktemp()
        mine = await self._inbox(SQLiteMailStore(path, clock=clock))
        theirs = await self._inbox(SQLiteMailStore(path, clock=clock))
        log: list[object] = []
        await mine.add_listener(log.append)
        info = await theirs.append(BytesSource(b"Subject: hi\r\n\r\n"))
        self.assertEqual(log, [])
        clock.advance(POLL_INTERVAL)
        self.assertEqual(log, [MessageAdded("INBOX", info)])
        await mine.remove_listener(log.append)
        self.assertEqual(clock.getDelayedCalls(), [], "the poller runs only while someone listens")

    async def test_lock_dies_with_its_process(self) -> None:
        path = self.mktemp()
        inbox = await self._inbox(SQLiteMailStore(path))
        child = subprocess.Popen(
            [sys.executable, "-c", _LOCK_AND_WAIT, str(_PATH), path],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        assert child.stdout is not None
        self.assertEqual(child.stdout.readline().strip(), "locked")
        with self.assertRaises(MailboxInUse):
            await inbox.lock()
        child.kill()
        child.wait()
        await (await inbox.lock()).release()


#: A child process that takes alice's INBOX lock and holds it until killed.
_LOCK_AND_WAIT = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("example", sys.argv[1])
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)
store = example.SQLiteMailStore(sys.argv[2])
results = []
store.open_account("alice@example.com").addCallback(lambda a: a.open_mailbox("INBOX")).addCallback(
    lambda inbox: inbox.lock()
).addCallback(results.append)
print("locked" if results else "failed", flush=True)
time.sleep(60)
"""
