"""
How many local deliveries per second the Maildir store makes, each durable before it returns.

    python benchmarks/maildir_deliver.py [--count 2000] [--size 4096] [--dir PATH]

Calls C{MaildirMailStore.deliver()} directly, through the reactor's real thread pool, keeping
1, 16 and 64 deliveries in flight: all into one INBOX, then spread over 16 accounts' INBOXes.
The message (like the SMTP server's) is streamed from a source without a path, so every
delivery writes and fsyncs its own file. Prints deliveries/s; it is never a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet import defer, task  # noqa: E402

from twisted_mail_stack.backends.maildir import MaildirMailStore  # noqa: E402
from twisted_mail_stack.sources import BytesSource  # noqa: E402

CONCURRENCY = (1, 16, 64)
ACCOUNTS = 16


def message(size: int) -> bytes:
    head = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: bench\r\n\r\n"
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


async def run_one(
    store: MaildirMailStore, users: list[str], data: bytes, count: int, conc: int
) -> float:
    """Deliver C{count} messages with C{conc} in flight, round-robin over C{users}; per second."""
    source = BytesSource(data)
    next_n = iter(range(count))

    async def lane() -> None:
        for n in next_n:
            await store.deliver([users[n % len(users)]], source)

    start = time.perf_counter()
    await defer.gatherResults(
        [defer.Deferred.fromCoroutine(lane()) for _ in range(conc)], consumeErrors=True
    )
    return count / (time.perf_counter() - start)


async def main(reactor: Any, args: argparse.Namespace) -> None:
    reactor.suggestThreadPoolSize(args.threads)
    root = tempfile.mkdtemp(prefix="maildir-deliver-", dir=args.dir)
    store = MaildirMailStore(root)
    try:
        users = [f"u{i}@example.com" for i in range(ACCOUNTS)]
        for user in users:
            await store.create_account(user)
        data = message(args.size)
        await run_one(store, users, data, 64, 16)  # warm up: indexes made, connections open
        print(f"{args.count} deliveries of {args.size} bytes, {args.threads} threads, {root}")
        targets: list[tuple[str, Callable[[], list[str]]]] = [
            ("1 INBOX", lambda: users[:1]),
            (f"{ACCOUNTS} INBOXes", lambda: users),
        ]
        for label, pick in targets:
            for conc in CONCURRENCY:
                rate = await run_one(store, pick(), data, args.count, conc)
                print(f"  {label:<11} {conc:>3} in flight: {rate:8.0f} deliveries/s", flush=True)
    finally:
        await store.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="deliveries per measurement")
    parser.add_argument("--size", type=int, default=4096, help="message size in bytes")
    parser.add_argument(
        "--threads", type=int, default=10, help="thread pool size (Twisted's default, the server's)"
    )
    parser.add_argument("--dir", default=None, help="where to make the store (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    arguments = parser.parse_args()
    task.react(lambda reactor: defer.Deferred.fromCoroutine(main(reactor, arguments)))
