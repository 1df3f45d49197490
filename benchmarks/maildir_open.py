"""
How long it takes, and how much memory, to open a big Maildir folder and list its UIDs and flags.

    python benchmarks/maildir_open.py [--messages 100000] [--dir PATH] [--keep]

Makes one account whose INBOX holds N small messages, written straight into cur/ (with a mix of
flags) as another MDA would, then measures, each in a fresh Python process:

  - cold: no index yet; opening the folder builds it (one stat per file, no file opened);
  - warm: the index exists; opening and listing reads only the index.

Each process reports wall time of open + list_messages, its peak RSS (and the part above the
interpreter's baseline), the peak of Python allocations (tracemalloc, measured in a separate run
as it slows Python down), and how many message files it opened, which must be 0.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

USER = "bench@example.com"
LETTERS = ["", "S", "FS", "RS", "S", "S", "", "DS", "ST"]


def populate(root: str, count: int) -> str:
    """An account whose INBOX has C{count} messages in cur/; returns its directory."""
    from twisted_mail_stack.backends.maildir.layout import account_dir
    from twisted_mail_stack.backends.maildir.tree import create_account

    account = account_dir(root, USER)
    create_account(account)
    cur = os.path.join(account, "cur")
    now = int(time.time())
    for n in range(count):
        data = b"From: a@example.com\nSubject: message %d\n\nHello %d.\n" % (n, n)
        name = f"{now - count + n}.M{n % 1_000_000}P1Q{n}.bench,S={len(data)}:2,{LETTERS[n % 9]}"
        fd = os.open(os.path.join(cur, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)
    # A folder at rest: directory mtimes this recent are never trusted to skip a listing.
    for sub in ("new", "cur"):
        os.utime(os.path.join(account, sub), (now - 60, now - 60))
    return account


def measure(root: str, memory: bool) -> dict[str, Any]:
    """In this (fresh) process: open the INBOX, list it; the figures as a dict."""
    from twisted.internet import defer, task

    from twisted_mail_stack.backends.maildir import MaildirMailStore

    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    builtins.open = spy_open  # type: ignore[assignment]
    os.open = spy_os_open  # type: ignore[assignment]
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result: dict[str, Any] = {}

    async def run(reactor: Any) -> None:
        store = MaildirMailStore(root, reactor=reactor)
        if memory:
            tracemalloc.start()
        start = time.perf_counter()
        inbox = await (await store.open_account(USER)).open_mailbox("INBOX")
        infos = await inbox.list_messages()
        listed = [(i.uid, i.flags) for i in infos]
        result["seconds"] = time.perf_counter() - start
        if memory:
            result["traced_peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        result["messages"] = len(listed)
        await inbox.close()
        await store.close()

    try:
        task.react(lambda reactor: defer.Deferred.fromCoroutine(run(reactor)))
    except SystemExit:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["rss_peak_kib"] = peak
    result["rss_above_baseline_kib"] = peak - baseline
    sep = os.sep
    result["message_files_opened"] = sum(
        1 for p in opened if f"{sep}cur{sep}" in p or f"{sep}new{sep}" in p
    )
    return result


def in_subprocess(root: str, memory: bool) -> dict[str, Any]:
    args = [sys.executable, __file__, "--measure", root] + (["--memory"] if memory else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def drop_index(account: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(os.path.join(account, "mailstack-index.sqlite" + suffix))
        except FileNotFoundError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--dir", help="where to build the store (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.memory)))
        return

    base = args.dir or tempfile.mkdtemp(prefix="maildir-bench-")
    root = os.path.join(base, "mail")
    try:
        start = time.perf_counter()
        account = populate(root, args.messages)
        print(f"wrote {args.messages} messages in {time.perf_counter() - start:.1f} s")
        print(f"{'case':6} {'time':>9} {'RSS peak':>10} {'RSS +':>9} {'py peak':>9} {'opened':>7}")
        for case in ("cold", "warm"):
            if case == "cold":
                drop_index(account)
            timing = in_subprocess(root, memory=False)
            if case == "cold":
                drop_index(account)
            traced = in_subprocess(root, memory=True)
            assert timing["messages"] == args.messages, timing
            print(
                f"{case:6} {timing['seconds']:8.2f}s {timing['rss_peak_kib'] / 1024:8.1f}MB"
                f" {timing['rss_above_baseline_kib'] / 1024:7.1f}MB"
                f" {traced['traced_peak'] / 2**20:7.1f}MB"
                f" {timing['message_files_opened'] + traced['message_files_opened']:7d}"
            )
        size = os.path.getsize(os.path.join(account, "mailstack-index.sqlite"))
        print(f"index: {size / 2**20:.1f} MB ({size / args.messages:.0f} bytes per message)")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
