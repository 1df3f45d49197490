"""
The conformance suite catches real bugs: each broken variant of the memory backend below fails the
named tests, which pass against the correct backend.

The suites are built inside functions, so pytest never collects a broken backend's suite itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import pytest
from attrs import evolve
from twisted.internet.defer import Deferred, succeed
from twisted.trial import reporter
from twisted.trial import unittest as trial

from twisted_mail_stack import testing
from twisted_mail_stack.backends import memory
from twisted_mail_stack.interfaces import ChangeListener, IMailStore, IMessageSource
from twisted_mail_stack.values import Change, Flag, MessageInfo, StoreMode


class ReusesUids(memory._Folder):
    """Bug: UIDNEXT is recomputed from the messages present, so expunging the highest UID reuses it."""

    def next_uid(self) -> int:
        self.uidnext = max(self.messages, default=0) + 2
        return self.uidnext - 1


class NoModseqBump(memory._Folder):
    """Bug: changes do not get a new modseq."""

    def next_modseq(self) -> int:
        return self.highestmodseq


class LosesKeywordsOnAdd(memory.MemoryMailbox):
    """Bug: set_flags ADD keeps only the system flags already set."""

    def set_flags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: StoreMode,
        unchanged_since: int | None = None,
    ) -> Deferred[Any]:
        uids = list(uids)
        if mode is StoreMode.ADD:
            for message in self._live().held(uids):
                message.info = evolve(message.info, flags=message.info.flags & Flag.SYSTEM)
        return super().set_flags(uids, flags, mode, unchanged_since)


class ClaimsRecentTwice(memory.MemoryMailbox):
    """Bug: \\Recent is tracked per handle, so each handle claims every message once."""

    def __init__(self, account: memory.MemoryAccount, folder: memory._Folder) -> None:
        super().__init__(account, folder)
        self._mark = 0

    def claim_recent(self) -> Deferred[Sequence[int]]:
        uids = [uid for uid in self._live().messages if uid > self._mark]
        self._mark = self._live().uidnext - 1
        return succeed(uids)


_actors: list[object] = []  # the handle whose operation is running, innermost last


def _as_actor(method: Callable[..., Any]) -> Callable[..., Any]:
    def run(self: object, *args: Any, **kwargs: Any) -> Any:
        _actors.append(self)
        try:
            return method(self, *args, **kwargs)
        finally:
            _actors.pop()

    return run


class NotifiesOnlyItself(memory.MemoryMailbox):
    """Bug: a handle's listeners hear only the changes made through that handle."""

    def add_listener(self, listener: ChangeListener) -> Deferred[None]:
        def mine_only(change: Change) -> None:
            if _actors and _actors[-1] is self:
                listener(change)

        return super().add_listener(mine_only)

    append = _as_actor(memory.MemoryMailbox.append)
    set_flags = _as_actor(memory.MemoryMailbox.set_flags)
    expunge = _as_actor(memory.MemoryMailbox.expunge)
    remove = _as_actor(memory.MemoryMailbox.remove)


class TreatsNoUidsAsAll(memory.MemoryMailbox):
    """Bug: the C{if not uids} slip: UID EXPUNGE of an empty set expunges every \\Deleted message."""

    def expunge(self, uids: Iterable[int] | None = None) -> Deferred[Sequence[int]]:
        return super().expunge(uids or None)


class DeliversOneByOne(memory.MemoryMailStore):
    """Bug: delivers to each user in turn, so a missing user leaves the earlier copies behind."""

    def deliver(
        self, users: Sequence[str], source: IMessageSource, internal_date: datetime | None = None
    ) -> Deferred[dict[str, MessageInfo]]:
        deliver = super().deliver

        async def one_by_one() -> dict[str, MessageInfo]:
            infos: dict[str, MessageInfo] = {}
            for user in users:
                infos.update(await deliver([user], source, internal_date))
            return infos

        return Deferred.fromCoroutine(one_by_one())


def broken_store(**hooks: Any) -> Callable[[], IMailStore]:
    """A factory of memory stores with some of their folder or mailbox classes replaced."""
    return type("BrokenStore", (memory.MemoryMailStore,), hooks)


BUGS: dict[str, tuple[Callable[[], IMailStore], list[str]]] = {
    "uid reuse": (
        broken_store(folder_type=ReusesUids),
        ["test_uid_not_reused_after_expunge_of_highest", "test_uid_not_reused_after_removing_all"],
    ),
    "no modseq bump": (
        broken_store(folder_type=NoModseqBump),
        [
            "test_append_modseqs_ascend",
            "test_set_flags_gives_new_modseq",
            "test_each_change_gets_a_greater_modseq",
            "test_highestmodseq_grows_on_expunge",
            "test_copy_gives_new_modseqs",
        ],
    ),
    "keyword lost on ADD": (
        broken_store(mailbox_type=LosesKeywordsOnAdd),
        ["test_add_flags_keeps_others"],
    ),
    "recent claimed twice": (
        broken_store(mailbox_type=ClaimsRecentTwice),
        ["test_claim_recent_once_across_handles"],
    ),
    "empty UID set taken as every UID": (
        broken_store(mailbox_type=TreatsNoUidsAsAll),
        ["test_empty_uid_sets_change_nothing"],
    ),
    "delivery not atomic": (
        DeliversOneByOne,
        ["test_deliver_to_missing_user_delivers_nothing"],
    ),
    "only the changing handle notified": (
        broken_store(mailbox_type=NotifiesOnlyItself),
        [
            "test_append_notifies_both_handles",
            "test_flag_change_notifies_both_handles",
            "test_expunge_notifies_both_handles",
            "test_remove_notifies",
        ],
    ),
}


def run_suite(factory: Callable[[], IMailStore], names: list[str]) -> reporter.TestResult:
    """Run the named conformance tests against stores made by C{factory}."""

    class Suite(testing.MailStoreConformance):
        def make_store(self) -> IMailStore:
            return factory()

    result = reporter.TestResult()
    trial.TestSuite([Suite(name) for name in names]).run(result)
    return result


def outcome(result: reporter.TestResult) -> dict[str, str]:
    """Each test's method name mapped to how it ended."""
    ended: dict[str, list[tuple[Any, Any]]] = {
        "failed": result.failures,
        "error": result.errors,
        "skipped": result.skips,
    }
    return {test._testMethodName: how for how, pairs in ended.items() for test, _ in pairs}


@pytest.mark.parametrize("bug", BUGS)
def test_suite_fails_broken_backend(bug: str) -> None:
    factory, names = BUGS[bug]
    result = run_suite(factory, names)
    assert outcome(result) == dict.fromkeys(names, "failed"), f"the suite missed the bug: {bug}"


@pytest.mark.parametrize("bug", BUGS)
def test_same_tests_pass_on_correct_backend(bug: str) -> None:
    _, names = BUGS[bug]
    result = run_suite(memory.MemoryMailStore, names)
    assert outcome(result) == {}, "the tests that catch the bug fail on the correct backend"
    assert result.successes == len(names)
