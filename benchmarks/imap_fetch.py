"""
The IMAP FETCH and SEARCH engines over a big mailbox, without the network: what the session
spends in C{imap4.fetch} and C{imap4.search} per command.

    flock /tmp/bench.lock python benchmarks/imap_fetch.py [--messages 10000] [--backend maildir]

Fills an INBOX with N messages of about 4 KiB (multipart/alternative, a third of them \\Seen;
Maildir: written straight into cur/ as another MDA would, then indexed once), then times:

  - FETCH 1:* (FLAGS UID RFC822.SIZE)  (from the index: no message is opened)
  - FETCH 1:* BODYSTRUCTURE            cold (empty cache: every message read and analysed) and
                                        warm (the session's cache holds them all)
  - FETCH 1:* BODY.PEEK[]
  - SEARCH UNSEEN                      (from the index)
  - SEARCH BODY "x" and SEARCH BODY "zebra" (every message read and decoded)

Each figure is the best of --repeat runs; responses go to an output that is always writable
and only counts bytes. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred, succeed

from twisted_mail_stack.imap4._commands import Fetch
from twisted_mail_stack.imap4._fetch import Attribute, BodySection, FetchItem, Section
from twisted_mail_stack.imap4._search import FlagKey, Not, SearchKey, TextKey
from twisted_mail_stack.imap4._sequence import STAR, SequenceSet
from twisted_mail_stack.imap4.cache import MessageCache
from twisted_mail_stack.imap4.fetch import fetch
from twisted_mail_stack.imap4.search import search
from twisted_mail_stack.interfaces import IMailbox
from twisted_mail_stack.values import MessageInfo

USER = "bench@example.com"
WORDS = (
    "meeting budget report quarterly the a of and to in project release notes review team "
    "schedule update server mail client performance figures agenda minutes draft final inbox"
).split()


def message(n: int) -> bytes:
    rng = random.Random(n)
    text = "\r\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(22)).encode()
    html = b"<html><body><p>" + text.replace(b"\r\n", b"</p>\r\n<p>") + b"</p></body></html>"
    header = (
        b"Return-Path: <sender%d@example.org>\r\n"
        b"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
        b"\tby mail.example.com with ESMTPS id %d; Tue, 5 Mar 2024 06:07:08 +0000\r\n"
        b"Date: Tue, 5 Mar 2024 06:07:08 +0000\r\n"
        b"From: Sender %d <sender%d@example.org>\r\n"
        b"To: Bench User <bench@example.com>\r\n"
        b"Subject: =?utf-8?q?Message_n=C2=B0_%d?= about the %s\r\n"
        b"Message-ID: <%d.bench@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b%d"\r\n\r\n'
    ) % (n, n, n, n, n, rng.choice(WORDS).encode(), n, n)
    return (
        header
        + b"--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" % n
        + text
        + b"\r\n--b%d\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" % n + html + b"\r\n--b%d--\r\n" % n
    )


class NullOutput:
    """An output that is always writable and only counts bytes."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def drained(self) -> Deferred[None]:
        return succeed(None)


def fetch_command(*items: FetchItem) -> Fetch:
    return Fetch(SequenceSet(((1, STAR),)), tuple(items))


async def timed(
    label: str, count: int, repeat: int, action: Callable[[], Awaitable[Any]]
) -> tuple[float, Any]:
    best, outcome = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = await action()
        best = min(best, time.perf_counter() - start)
    print(f"  {label:44} {best * 1000:9.1f} ms {count / best:11,.0f} msg/s")
    return best, outcome


async def measure(mailbox: IMailbox, repeat: int) -> None:
    infos = await mailbox.list_messages()
    targets: list[tuple[int, MessageInfo]] = list(enumerate(infos, 1))
    count = len(targets)
    A = Attribute

    async def do_fetch(command: Fetch, cache: MessageCache) -> int:
        out = NullOutput()
        await fetch(mailbox, targets, command, out, cache, read_only=True, condstore=False)
        return out.written

    async def do_search(key: SearchKey) -> int:
        return len(await search(mailbox, targets, key, MessageCache()))

    flags = fetch_command(A.FLAGS, A.UID, A.RFC822_SIZE)
    await timed(
        "FETCH 1:* (FLAGS UID RFC822.SIZE)", count, repeat, lambda: do_fetch(flags, MessageCache())
    )

    structure = fetch_command(A.BODYSTRUCTURE)
    warm_cache = MessageCache(max_entries=count)
    await timed(
        "FETCH 1:* BODYSTRUCTURE, cold cache",
        count,
        repeat,
        lambda: do_fetch(structure, MessageCache(max_entries=count)),
    )
    await do_fetch(structure, warm_cache)
    await timed(
        "FETCH 1:* BODYSTRUCTURE, warm cache",
        count,
        repeat,
        lambda: do_fetch(structure, warm_cache),
    )

    envelope = fetch_command(A.ENVELOPE, A.BODYSTRUCTURE)
    await timed(
        "FETCH 1:* (ENVELOPE BODYSTRUCTURE), cold cache",
        count,
        repeat,
        lambda: do_fetch(envelope, MessageCache(max_entries=count)),
    )
    body = fetch_command(BodySection(Section(), peek=True))
    _, written = await timed(
        "FETCH 1:* BODY.PEEK[]", count, repeat, lambda: do_fetch(body, MessageCache())
    )
    print(f"  {'':44} ({written / 2**20:.1f} MiB written)")

    _, found = await timed(
        "SEARCH UNSEEN", count, repeat, lambda: do_search(Not(FlagKey("\\Seen")))
    )
    print(f"  {'':44} ({found} found)")
    _, found = await timed('SEARCH BODY "x"', count, repeat, lambda: do_search(TextKey("x", True)))
    print(f"  {'':44} ({found} found)")
    _, found = await timed(
        'SEARCH BODY "zebra"', count, repeat, lambda: do_search(TextKey("zebra", True))
    )
    print(f"  {'':44} ({found} found)")


def flag_set(n: int) -> list[str]:
    return ["\\Seen"] if n % 3 == 0 else []


def run_memory(count: int, repeat: int) -> None:
    from twisted_mail_stack.backends.memory import MemoryMailStore
    from twisted_mail_stack.sources import BytesSource

    async def main() -> None:
        store = MemoryMailStore()
        await store.create_account(USER)
        inbox = await (await store.open_account(USER)).open_mailbox("INBOX")
        when = datetime(2024, 3, 5, tzinfo=UTC)
        for n in range(count):
            await inbox.append(BytesSource(message(n)), flag_set(n), when)
        print(f"memory backend, {count} messages:")
        await measure(inbox, repeat)

    done: list[object] = []
    Deferred.fromCoroutine(main()).addBoth(done.append)
    assert done and done[0] is None, done  # the memory backend answers at once


def populate_maildir(root: str, count: int) -> None:
    from twisted_mail_stack.backends.maildir.layout import account_dir
    from twisted_mail_stack.backends.maildir.tree import create_account

    account = account_dir(root, USER)
    create_account(account)
    cur = os.path.join(account, "cur")
    now = int(time.time())
    for n in range(count):
        data = message(n)
        info = "S" if flag_set(n) else ""
        name = f"{now - count + n}.M{n}P1Q{n}.bench,S={len(data)}:2,{info}"
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)
    for sub in ("new", "cur"):
        os.utime(os.path.join(account, sub), (now - 60, now - 60))


def run_maildir(count: int, repeat: int) -> None:
    from twisted.internet import task

    from twisted_mail_stack.backends.maildir import MaildirMailStore

    base = tempfile.mkdtemp(prefix="imap-fetch-bench-")
    try:
        root = os.path.join(base, "mail")
        populate_maildir(root, count)

        async def main(reactor: Any) -> None:
            store = MaildirMailStore(root, reactor=reactor)
            inbox = await (await store.open_account(USER)).open_mailbox("INBOX")
            print(f"maildir backend, {count} messages:")
            await measure(inbox, repeat)
            await inbox.close()
            await store.close()

        try:
            task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
        except SystemExit as e:
            if e.code:
                raise
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=["memory", "maildir", "both"], default="both")
    args = parser.parse_args()
    print(f"message size: about {len(message(1))} bytes")
    if args.backend in ("memory", "both"):
        run_memory(args.messages, args.repeat)
    if args.backend in ("maildir", "both"):
        run_maildir(args.messages, args.repeat)


if __name__ == "__main__":
    main()
