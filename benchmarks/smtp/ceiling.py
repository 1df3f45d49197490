#!/usr/bin/env python3
"""
How fast can a Python SMTP server that fsyncs go on this machine? Minimal sinks next to Postfix,
`twistd mail` and twisted-mail-stack, under the same load (smtp-source, 4 KiB, 16 connections),
in one run, in alternating rounds so that the machine's drift hits every server alike.

Each sink speaks just enough SMTP for smtp-source and stores each message the way
twisted-mail-stack does before its 250: written into tmp/ and fsynced, renamed into new/, new/
fsynced. No index, no checks, no trace headers, no log: an upper bound, not a server.

  threads        a thread per connection, blocking sockets (no reactor)
  twisted        one reactor; one thread-pool call per message does all of the storing
  twisted-group  one reactor; the file is written in the pool, then placed with the others
                 ready at that moment (rename, one fsync of new/), as the Maildir store does
  +N             the same with N µs of work added per message in the reactor thread

Figures only: this is never a test. Needs root (the anchors), postfix (smtp-source) and a
Python with Twisted to run it (the sinks run under the same one). The sinks' Maildirs stay
under --dir (deleting many files just before a run slows file creation here; see round 4).

  sudo /tmp/devvenv/bin/python benchmarks/smtp/ceiling.py [--rounds 3] [--count 3000] [--servers ...]
  benchmarks/smtp/ceiling.py serve DESIGN PORT DIR [DELAY_US]    # one sink, in the foreground
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from run import SERVERS, control, load

DESIGNS = ("threads", "twisted", "twisted-group")
DEFAULT = ("postfix", "twistd", "mailstack", *DESIGNS, "twisted-group+100", "twisted-group+400")


class Store:
    """Maildir delivery as the sinks do it: tmp/ + fsync, rename into new/, fsync new/."""

    def __init__(self, root: str) -> None:
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        self.root = root
        self.new = os.open(os.path.join(root, "new"), os.O_RDONLY)
        self.names = itertools.count()

    def prepare(self, data: bytes) -> str:
        name = f"{time.time_ns()}.{next(self.names)}.sink"
        fd = os.open(os.path.join(self.root, "tmp", name), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return name

    def place(self, names: list[str]) -> None:
        for name in names:
            os.rename(os.path.join(self.root, "tmp", name), os.path.join(self.root, "new", name))
        os.fsync(self.new)

    def store(self, data: bytes) -> None:
        self.place([self.prepare(data)])


def reply_to(line: bytes) -> bytes:
    verb = line[:4].upper()
    if verb in (b"EHLO", b"HELO"):
        return b"250-sink\r\n250 8BITMIME\r\n"
    if verb == b"DATA":
        return b"354 go on\r\n"
    if verb == b"QUIT":
        return b"221 bye\r\n"
    return b"250 OK\r\n"


def serve_threads(port: int, store: Store) -> None:
    def session(conn: socket.socket) -> None:
        lines = conn.makefile("rb")
        conn.sendall(b"220 sink\r\n")
        while line := lines.readline(1002):
            conn.sendall(reply_to(line))
            if line[:4].upper() == b"QUIT":
                break
            if line[:4].upper() == b"DATA":
                body = []
                while (part := lines.readline(1002)) not in (b".\r\n", b""):
                    body.append(part)
                store.store(b"".join(body))
                conn.sendall(b"250 OK\r\n")
        conn.close()

    listener = socket.create_server(("127.0.0.1", port), backlog=128)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=session, args=(conn,), daemon=True).start()


def serve_twisted(port: int, store: Store, grouped: bool, delay_us: int) -> None:
    from twisted.internet import protocol, reactor, threads
    from twisted.internet.defer import Deferred
    from twisted.protocols.basic import LineReceiver

    ready: list[tuple[str, Deferred[None]]] = []
    placing = False

    def place_ready() -> None:
        nonlocal placing
        placing = True
        group = ready[:]
        del ready[:]

        def placed(_: object) -> None:
            nonlocal placing
            placing = False
            if ready:
                place_ready()
            for _, done in group:
                done.callback(None)

        threads.deferToThread(store.place, [name for name, _ in group]).addCallback(placed)

    def store_grouped(data: bytes) -> Deferred[None]:
        done: Deferred[None] = Deferred()

        def prepared(name: str) -> None:
            ready.append((name, done))
            if not placing:
                place_ready()

        threads.deferToThread(store.prepare, data).addCallback(prepared)
        return done

    class Sink(LineReceiver):
        MAX_LENGTH = 1000
        body: list[bytes] | None = None

        def connectionMade(self) -> None:
            self.transport.write(b"220 sink\r\n")

        def lineReceived(self, line: bytes) -> None:
            if self.body is None:
                self.transport.write(reply_to(line))
                if line[:4].upper() == b"DATA":
                    self.body = []
                elif line[:4].upper() == b"QUIT":
                    self.transport.loseConnection()
                return
            if line != b".":
                self.body.append(line + b"\r\n")
                return
            data, self.body = b"".join(self.body), None
            end = time.perf_counter() + delay_us / 1e6
            while time.perf_counter() < end:  # stands for a real server's per-message work
                pass
            done = store_grouped(data) if grouped else threads.deferToThread(store.store, data)
            done.addCallback(lambda _: self.transport.write(b"250 OK\r\n"))

    reactor.listenTCP(port, protocol.Factory.forProtocol(Sink), interface="127.0.0.1")
    reactor.run()


def serve(design: str, port: int, root: str, delay_us: int) -> None:
    store = Store(root)
    if design == "threads":
        serve_threads(port, store)
    else:
        serve_twisted(port, store, design.startswith("twisted-group"), delay_us)


def start_sink(name: str, port: int, root: Path) -> subprocess.Popen[bytes]:
    design, _, delay = name.partition("+")
    if design not in DESIGNS:
        raise SystemExit(f"no server or sink called {name}")
    argv = [sys.executable, __file__, "serve", design, str(port), str(root / name)]
    sink = subprocess.Popen([*argv, delay or "0"])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"sink {name} did not start")


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        design, port, root, *delay = sys.argv[2:]
        serve(design, int(port), root, int(delay[0]) if delay else 0)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("/work/shared/bench"))
    ap.add_argument("--servers", default=",".join(DEFAULT))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench-ceiling"))
    a = ap.parse_args()

    names = a.servers.split(",")
    ports = {n: SERVERS[n][2] if n in SERVERS else 2590 + i for i, n in enumerate(names)}
    sinks: list[subprocess.Popen[bytes]] = []
    peers = [n for n in names if n in SERVERS]
    rates: dict[str, list[float]] = {n: [] for n in names}
    try:
        for name in names:
            if name in SERVERS:
                control(a.bench, name, "start")
            else:
                sinks.append(start_sink(name, ports[name], a.dir / str(os.getpid())))
        for _ in range(a.rounds):
            for name in names:
                result = load(a.bench, "smtp_source.py", ports[name], a.count, 4096, a.conc)
                rates[name].append(result.get("msgs_per_s") or 0.0)
                print(name, rates[name][-1], result.get("error") or "", file=sys.stderr, flush=True)
    finally:
        for sink in sinks:
            sink.kill()
        for name in peers:
            control(a.bench, name, "stop")

    medians = {n: statistics.median(r) for n, r in rates.items()}
    print(f"| server | msg/s, 4 KiB x {a.conc}, each round | median | / postfix | / twistd |")
    print("|---|---|---|---|---|")
    for name in names:
        ratios = [f"{medians[name] / medians[p]:.2f}" if medians.get(p) else "-"
                  for p in ("postfix", "twistd")]  # fmt: skip
        print(f"| {name} | {' / '.join(f'{r:.0f}' for r in rates[name])} "
              f"| {medians[name]:.0f} | {ratios[0]} | {ratios[1]} |")  # fmt: skip


if __name__ == "__main__":
    main()
