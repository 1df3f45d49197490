"""
Relay throughput and memory: from the durable queue to Postfix's C{smtp-sink} on loopback.

    flock /tmp/bench.lock python benchmarks/relay/run.py [--messages 2000] [--idle 100000]

  1. throughput, one destination: N messages of 4 KiB queued (C{DeliveryQueue.enqueue}, fsynced),
     then a L{RelayManager} with the real SMTP client, session reuse, connection limits and state
     saves delivers them all to one C{smtp-sink}; messages per second from the manager's start
     to an empty queue; with the connection cache (2 s, the default) and without it;
  2. the same with 20 destinations (20 sinks on 20 ports, a recipient domain each);
  3. memory with C{--idle} entries queued and not yet due (written straight to disk, each with a
     saved state whose next attempt is an hour away): the process's RSS growth once the manager's
     start-up scan has scheduled them all.

Routing is a static resolver (no DNS), so the figures are the relay's own cost. Prints figures;
asserts nothing about time. Needs C{smtp-sink} (Debian package postfix).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import evolve
from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred
from twisted.logger import globalLogBeginner

from twisted_mail_stack.relay.limits import ConnectionLimits
from twisted_mail_stack.relay.manager import RelayManager
from twisted_mail_stack.relay.queue import DeliveryQueue, envelope_to_json
from twisted_mail_stack.relay.sessions import SessionPool
from twisted_mail_stack.relay.state import EntryState
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import Envelope, EnvelopeRecipient, MXHost

BODY_SIZE = 4096


def message(i: int) -> bytes:
    head = f"From: alice@example.org\r\nTo: bob@d0.test\r\nSubject: bench {i}\r\n\r\n".encode()
    line = b"x" * 76 + b"\r\n"
    body = line * ((BODY_SIZE - len(head)) // len(line))
    return head + body + b"y" * (BODY_SIZE - len(head) - len(body) - 2) + b"\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sinks:
    """C{count} smtp-sink processes, one per port."""

    def __init__(self, count: int) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.processes = [
            subprocess.Popen(
                ["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "256"],
                stdout=subprocess.DEVNULL,
            )
            for port in self.ports
        ]
        for port in self.ports:  # wait until each listens
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def stop(self) -> None:
        for p in self.processes:
            p.terminate()
            p.wait()


class StaticResolver:
    """Domain C{d<i>.test} goes to sink C{i} (named C{sink<i>}: a destination of its own)."""

    def __init__(self, ports: Sequence[int]) -> None:
        self.ports = ports

    def resolve(self, domain: str) -> Deferred[Sequence[MXHost]]:
        i = int(domain.split(".")[0][1:])
        return defer.succeed([MXHost(f"sink{i}", ("127.0.0.1",), self.ports[i])])


def manager(
    queue: DeliveryQueue, ports: Sequence[int], pool: SessionPool, **kw: Any
) -> RelayManager:
    """As the service builds it (L{wiring.Relay}), with the default limits."""

    def send(host: MXHost, address: str, messages: Any) -> Deferred[Any]:
        return pool.deliver(address, host.port, messages)

    limits = ConnectionLimits(total=20, per_destination=5)
    return RelayManager(
        queue,
        StaticResolver(ports),  # type: ignore[arg-type]
        limits.wrap(send),
        clock=reactor,
        hostname="bench.example.org",
        max_parallel=20,
        in_thread=queue._in_thread,
        **kw,
    )


async def throughput(work: str, count: int, destinations: int, cache: float) -> None:
    path = tempfile.mkdtemp(dir=work)
    queue = DeliveryQueue(path, reactor)
    sinks = Sinks(destinations)
    try:
        start = time.perf_counter()
        batch = []
        for i in range(count):
            env = Envelope(
                "alice@example.org", (EnvelopeRecipient(f"bob@d{i % destinations}.test"),)
            )
            batch.append(queue.enqueue(f"M{i:08d}", env, BytesSource(message(i))))
            if len(batch) == 50:  # as 50 SMTP sessions at once would
                await defer.gatherResults(batch)
                batch = []
        await defer.gatherResults(batch)
        queued = time.perf_counter() - start
        pool = SessionPool(reactor, helo_name="bench.example.org", idle_timeout=cache)
        m = manager(queue, sinks.ports, pool)
        start = time.perf_counter()
        m.startService()
        while list(await queue.list_ids()):
            await m.wait_idle()
            await deferLater(0.05)
        elapsed = time.perf_counter() - start
        await m.stopService()
        await pool.close()
        print(
            f"throughput to {destinations} destination(s), connection cache {cache:g} s: "
            f"{count} x {BODY_SIZE} B in {elapsed:.2f} s = {count / elapsed:.0f} msg/s; "
            f"{pool.opened} sessions opened, {pool.reused} reused "
            f"(enqueue beforehand: {count / queued:.0f} msg/s)",
            flush=True,
        )
    finally:
        sinks.stop()
        shutil.rmtree(path, ignore_errors=True)


def deferLater(seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    reactor.callLater(seconds, d.callback, None)  # type: ignore[attr-defined]
    return d


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def memory(work: str, count: int) -> None:
    path = tempfile.mkdtemp(dir=work)
    os.makedirs(os.path.join(path, "tmp"))
    later = time.time() + 3600
    arrival = datetime.now(UTC)
    start = time.perf_counter()
    for i in range(count):
        env = Envelope("alice@example.org", (EnvelopeRecipient(f"bob@d{i % 20}.test"),))
        base = os.path.join(path, f"I{i:08d}")
        with open(base + ".msg", "wb") as f:
            f.write(message(i)[:512])
        with open(base + ".state", "w") as f:
            state = evolve(EntryState.initial(env), failures=1, next_attempt=later)
            json.dump(state.to_json(), f)
        with open(base + ".json", "w") as f:
            json.dump(envelope_to_json(env, arrival), f)
    written = time.perf_counter() - start
    queue = DeliveryQueue(path, reactor)
    before = rss_kib()
    m = manager(queue, [0] * 20, SessionPool(reactor, helo_name="x"), scan_interval=1e9)
    start = time.perf_counter()
    m.startService()
    await m.wait_idle()
    scanned = time.perf_counter() - start
    after = rss_kib()
    timers = len(m._timers)
    await m.stopService()
    print(
        f"memory: {timers} queued entries scheduled by the start-up scan in {scanned:.1f} s; "
        f"RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB "
        f"(+{(after - before) / count * 1024:.0f} B per entry); writing them took {written:.1f} s",
        flush=True,
    )
    shutil.rmtree(path, ignore_errors=True)


async def main(args: argparse.Namespace) -> None:
    work = tempfile.mkdtemp(prefix="relay-bench-", dir=args.work)
    try:
        if args.messages:
            for cache in (2.0, 0.0):
                await throughput(work, args.messages, 1, cache)
                await throughput(work, args.messages, 20, cache)
        if args.idle:
            await memory(work, args.idle)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--idle", type=int, default=100_000)
    parser.add_argument("--work", default=None, help="directory for the queues (default: /tmp)")
    args = parser.parse_args()
    globalLogBeginner.beginLoggingTo([], redirectStandardIO=False)  # no per-attempt log lines
    outcome: list[Any] = []

    def run() -> None:
        d = Deferred.fromCoroutine(main(args))
        d.addBoth(outcome.append).addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]

    reactor.callWhenRunning(run)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if outcome and hasattr(outcome[0], "raiseException"):
        outcome[0].raiseException()
