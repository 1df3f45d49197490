#!/usr/bin/env python3
"""
Outbound SMTP client throughput: messages of --size bytes sent by relay.client.deliver to
Postfix's smtp-sink on 127.0.0.1, over 1 session and over --sessions sessions at once.
Prints figures; asserts nothing. The relay manager's queue-to-sink benchmark (issue 6) is not here.

  flock /tmp/bench.lock python3 benchmarks/relay/client_sink.py [--count 5000] [--size 4096]

Needs Debian's postfix (for /usr/sbin/smtp-sink).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time

from twisted.internet import defer, reactor
from twisted.internet.task import react

from twisted_mail_stack.relay.client import Outgoing, deliver
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import Envelope, EnvelopeRecipient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(size: int) -> bytes:
    head = b"From: a@example.org\r\nTo: b@sink.test\r\nSubject: bench\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head)) // len(line))


async def run(count: int, size: int, sessions: int, port: int) -> None:
    data = message(size)
    envelope = Envelope("a@example.org", (EnvelopeRecipient("b@sink.test"),))
    for label, n_sessions in (("1 session", 1), (f"{sessions} sessions", sessions)):
        per = count // n_sessions
        batches = [[Outgoing(envelope, BytesSource(data))] * per for _ in range(n_sessions)]
        start = time.perf_counter()
        results = await defer.gatherResults(
            [
                deliver(reactor, "127.0.0.1", port, batch, helo_name="bench.example.org")
                for batch in batches
            ]
        )
        elapsed = time.perf_counter() - start
        sent = sum(1 for session in results for m in session if m[0].delivered)
        print(
            f"{label}: {sent} messages of {len(data)} bytes in {elapsed:.2f}s = "
            f"{sent / elapsed:.0f} msg/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sessions", type=int, default=4)
    args = parser.parse_args()
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    port = free_port()
    proc = subprocess.Popen([sink, f"127.0.0.1:{port}", "256"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("smtp-sink did not start")
        react(lambda _: defer.ensureDeferred(run(args.count, args.size, args.sessions, port)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
