#!/usr/bin/env python3
"""
IMAP benchmark: twisted-mail-stack beside Dovecot's IMAP server in the same run, on copies of the
same Maildir. Prints figures; asserts nothing (issue 5, "Done when": benchmarks/imap).

For each INBOX size (--sizes, messages of --size bytes written straight into cur/ of both
Maildirs, unseen), both servers are started, each indexes the Maildir on its first SELECT
(timed), then one session per server runs each command --reps times, the servers taking turns
command by command; the figure is the client-side p50 (send -> tagged OK):

  LOGIN (connect + greeting + LOGIN), SELECT INBOX, UID FETCH 1:* (UID FLAGS RFC822.SIZE),
  FETCH 1:* (ENVELOPE BODYSTRUCTURE) (first, cold, and p50 after), FETCH 1:* BODY.PEEK[]
  (msg/s, MB/s), SEARCH UNSEEN, SEARCH SUBJECT, SEARCH BODY, STORE one message (+/-FLAGS),
  STORE 1:* +/-FLAGS.SILENT, IDLE round trips (another session's STORE -> untagged FETCH; a new
  message -> EXISTS: over SMTP for ours, a file renamed into new/ for both).
Then (once) the RSS of our server with --idlers sessions idling on a small INBOX.

  sudo flock /tmp/bench.lock /tmp/devvenv/bin/python benchmarks/imap/run.py --sizes 2000,10000

Needs root (Dovecot runs its mail processes as uid 5000) and Debian's dovecot-imapd.
Everything lives under --work (wiped at start). Every socket read has --timeout; every child
process is stopped (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import smtplib
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import Client, ImapError, login  # noqa: E402
from servers import (  # noqa: E402
    DOMAIN,
    NEEDLE,
    PASSWORD,
    VMAIL,
    Dovecot,
    Ours,
    drop,
    fill,
    message,
    rss_kb,
)  # fmt: skip

Server = Ours | Dovecot
Result = dict[str, float | str | None]


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def p50(values: list[float]) -> float:
    return statistics.median(values)


class Bench:
    def __init__(self, a: argparse.Namespace, server: Server, count: int) -> None:
        self.a, self.s, self.count = a, server, count
        self.c: Client | None = None

    def login(self) -> Client:
        return login("127.0.0.1", self.s.port, self.s.user, PASSWORD, self.a.timeout)

    def index(self) -> float:
        """First LOGIN + SELECT after the Maildir was filled: the server indexes it."""
        t = time.perf_counter()
        self.c = self.login()
        lines, _ = self.c.command("SELECT INBOX")
        took = time.perf_counter() - t
        exists = [int(x.split()[1]) for x in lines if x.endswith(b" EXISTS")]
        if exists != [self.count]:
            raise SystemExit(f"{self.s.name}: SELECT says {exists}, expected {self.count}")
        return took

    def repeat(self, command: str, reps: int | None = None) -> list[float]:
        assert self.c is not None
        return [self.c.timed(command)[0] for _ in range(reps or self.a.reps)]


def m_login(b: Bench) -> Result:
    times = []
    for _ in range(b.a.reps):
        t = time.perf_counter()
        c = b.login()
        times.append(time.perf_counter() - t)
        c.close()
    return {"ms": p50(times) * 1e3}


def simple(command: str, reps_factor: int = 1) -> Callable[[Bench], Result]:
    def run(b: Bench) -> Result:
        return {"ms": p50(b.repeat(command, b.a.reps * reps_factor)) * 1e3}

    return run


def m_envelope(b: Bench) -> Result:
    times = b.repeat("FETCH 1:* (ENVELOPE BODYSTRUCTURE)", b.a.reps + 1)
    return {"ms": p50(times[1:]) * 1e3, "cold_ms": times[0] * 1e3}


def m_bodies(b: Bench) -> Result:
    assert b.c is not None
    runs = []
    for _ in range(b.a.reps):
        took, lines, nbytes = b.c.timed("FETCH 1:* BODY.PEEK[]")
        if len(lines) != b.count:
            raise SystemExit(f"{b.s.name}: {len(lines)} FETCH lines for {b.count} messages")
        runs.append((took, nbytes))
    took, nbytes = sorted(runs)[len(runs) // 2]
    return {"ms": took * 1e3, "msg_s": b.count / took, "MB_s": nbytes / took / 1e6}


def m_search(key: str) -> Callable[[Bench], Result]:
    def run(b: Bench) -> Result:
        assert b.c is not None
        times, hits = [], 0
        for _ in range(b.a.reps):
            took, lines, _ = b.c.timed("SEARCH " + key.format(n=b.count // 2 + 1))
            times.append(took)
            hits = sum(len(x.split()) - 2 for x in lines if x.startswith(b"* SEARCH"))
        # The first run after the start is cold for a server that caches what it searched.
        return {"ms": p50(times) * 1e3, "hits": hits, "cold_ms": times[0] * 1e3}

    return run


def m_store_one(b: Bench) -> Result:
    n = b.count // 2 + 1
    times = []
    for k in range(2 * b.a.reps):
        times += b.repeat(f"STORE {n} {'+-'[k % 2]}FLAGS (\\Flagged)", 1)
    return {"ms": p50(times) * 1e3}


def m_store_all(b: Bench) -> Result:
    times = []
    for k in range(2 * b.a.reps):
        times += b.repeat(f"STORE 1:* {'+-'[k % 2]}FLAGS.SILENT (\\Flagged)", 1)
    return {"ms": p50(times) * 1e3}


def idle_session(b: Bench) -> Client:
    c = b.login()
    c.command("SELECT INBOX")
    c.send(b"idle IDLE\r\n")
    while not c.line().startswith(b"+"):
        pass
    return c


def wait_for(c: Client, pred: Callable[[bytes], bool], timeout: float) -> float | None:
    """Seconds until a line matching C{pred} arrives, None if none within C{timeout}."""
    t = time.perf_counter()
    c.sock.settimeout(timeout)
    try:
        while not pred(c.line()):
            if time.perf_counter() - t > timeout:
                return None
        return time.perf_counter() - t
    except TimeoutError:
        return None
    finally:
        c.sock.settimeout(c.timeout)


def m_idle_flag(b: Bench) -> Result:
    a, other = idle_session(b), b.login()
    other.command("SELECT INBOX")
    times = []
    try:
        for k in range(b.a.idle_reps):
            t = time.perf_counter()
            other.send(
                b"s%d STORE 1 %sFLAGS.SILENT (\\Answered)\r\n" % (k, b"+-"[k % 2 : k % 2 + 1])
            )
            if wait_for(a, lambda x: x.startswith(b"* 1 FETCH"), b.a.idle_wait) is None:
                return {"ms": None, "note": f"no FETCH within {b.a.idle_wait} s"}
            times.append(time.perf_counter() - t)
            while not other.line().startswith(b"s%d " % k):
                pass
    finally:
        a.close()
        other.close()
    return {"ms": p50(times) * 1e3, "max_ms": max(times) * 1e3}


def m_idle_exists(via: str) -> Callable[[Bench], Result]:
    def run(b: Bench) -> Result:
        a = idle_session(b)
        times = []
        owner = (VMAIL, VMAIL) if isinstance(b.s, Dovecot) else None
        try:
            smtp = (
                smtplib.SMTP("127.0.0.1", b.s.smtp_port, timeout=b.a.timeout)
                if via == "smtp" and isinstance(b.s, Ours)
                else None
            )
            for k in range(b.a.idle_reps):
                data = message(b.count + 1 + k, 1024)
                t = time.perf_counter()
                if smtp is not None:
                    smtp.sendmail(f"load@{DOMAIN}", [f"bench@{DOMAIN}"], crlf(data))
                else:
                    drop(b.s.maildir(), data, owner)
                if wait_for(a, lambda x: x.endswith(b" EXISTS"), b.a.idle_wait) is None:
                    return {"ms": None, "note": f"no EXISTS within {b.a.idle_wait} s"}
                times.append(time.perf_counter() - t)
            if smtp is not None:
                smtp.quit()
        finally:
            a.close()
        via_file = smtp is None and via == "smtp"
        return {"ms": p50(times) * 1e3, "max_ms": max(times) * 1e3, "via_file": via_file}

    return run


# (label, function, kind, target): kind "time" compares times (ours / dovecot), "rate" compares
# msg/s (ours / dovecot); target is a max time ratio, a min rate ratio, or an absolute limit in ms.
MEASURES: list[tuple[str, Callable[[Bench], Result], str, str | None]] = [
    ("LOGIN", m_login, "time", None),
    ("SELECT INBOX", simple("SELECT INBOX"), "time", None),
    ("UID FETCH 1:* (UID FLAGS RFC822.SIZE)", simple("UID FETCH 1:* (UID FLAGS RFC822.SIZE)"),
     "time", "ratio<=2"),
    ("FETCH 1:* (ENVELOPE BODYSTRUCTURE)", m_envelope, "time", None),
    ("FETCH 1:* BODY.PEEK[]", m_bodies, "rate", "ratio>=0.5"),
    ("SEARCH UNSEEN", m_search("UNSEEN"), "time", "ratio<=2"),
    ("SEARCH SUBJECT", m_search('SUBJECT "bench message {n}"'), "time", "ratio<=2"),
    ("SEARCH BODY", m_search(f'BODY "{NEEDLE.decode()}"'), "time", "ratio<=2"),
    ("STORE n +/-FLAGS (\\Flagged)", m_store_one, "time", None),
    ("STORE 1:* +/-FLAGS.SILENT (\\Flagged)", m_store_all, "time", None),
    ("IDLE: other session STORE -> FETCH", m_idle_flag, "time", "ms<50"),
    ("IDLE: SMTP delivery -> EXISTS", m_idle_exists("smtp"), "time", "ms<50"),
    ("IDLE: file into new/ -> EXISTS", m_idle_exists("file"), "time", None),
]  # fmt: skip


def run_size(a: argparse.Namespace, count: int) -> None:
    work = a.work / str(count)
    shutil.rmtree(work, ignore_errors=True)
    ours = Ours(work, a.port, a.twistd)
    servers: list[Server] = [ours]
    if not a.no_dovecot:
        servers.append(Dovecot(work, a.port + 2))
    started: list[Server] = []
    try:
        ours.start(a.start_timeout)
        started.append(ours)
        login("127.0.0.1", ours.port, ours.user, PASSWORD, a.timeout).close()  # makes the account
        t = time.perf_counter()
        fill([s.maildir() for s in servers], count, a.size)
        gen = time.perf_counter() - t
        print(f"\n== INBOX of {count:,} x {a.size} B: wrote {len(servers)} Maildir copies in "
              f"{gen:.1f} s", flush=True)  # fmt: skip
        for s in servers[1:]:
            s.start(a.start_timeout)
            started.append(s)
        benches = [Bench(a, s, count) for s in servers]
        for b in benches:
            print(f"{b.s.name}: first LOGIN+SELECT (indexes the Maildir): {b.index():.2f} s",
                  flush=True)  # fmt: skip
        rss0 = rss_kb(ours.pid)
        table: list[tuple[str, str, str | None, Result, Result | None]] = []
        for label, fn, kind, target in MEASURES:
            results = []
            for b in benches:
                try:
                    results.append(fn(b))
                except (ImapError, OSError, smtplib.SMTPException) as e:
                    results.append({"ms": None, "note": f"error: {e}"})
            table.append(
                (label, kind, target, results[0], results[1] if len(results) > 1 else None)
            )
            print(f"  {label}: " + " | ".join(f"{b.s.name} {r}" for b, r in zip(benches, results, strict=True)),
                  flush=True)  # fmt: skip
        print(f"ours: RSS {rss0 / 1024:.1f} MB after indexing, "
              f"{rss_kb(ours.pid) / 1024:.1f} MB after the commands", flush=True)  # fmt: skip
        for b in benches:
            if b.c is not None:
                b.c.close()
        print_table(count, a, table)
    finally:
        for s in reversed(started):
            s.stop(a.start_timeout)


def fmt(r: Result | None, kind: str) -> str:
    if r is None:
        return "-"
    if r.get("ms") is None:
        return str(r.get("note", "-"))
    if kind == "rate":
        return f"{r['msg_s']:,.0f} msg/s, {r['MB_s']:.1f} MB/s"
    text = f"{r['ms']:.1f} ms" if r["ms"] < 100 else f"{r['ms']:,.0f} ms"  # type: ignore[operator]
    if "cold_ms" in r:
        text += f" (first {r['cold_ms']:,.0f} ms)"
    if r.get("via_file"):
        text += " (file into new/: no SMTP)"
    if "max_ms" in r:
        text += f" (max {r['max_ms']:,.0f})"
    if "hits" in r:
        text += f" [{r['hits']} hits]"
    return text


def print_table(
    count: int,
    a: argparse.Namespace,
    table: list[tuple[str, str, str | None, Result, Result | None]],
) -> None:
    print(f"\nIMAP, INBOX of {count:,} x {a.size} B, one session, p50 of {a.reps} "
          f"(IDLE: {a.idle_reps}); ratio = ours/dovecot time, or ours/dovecot msg/s for rates")  # fmt: skip
    print("| command | ours | dovecot | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for label, kind, target, ours, dove in table:
        ratio = None
        key = "msg_s" if kind == "rate" else "ms"
        if dove and ours.get("ms") is not None and dove.get("ms") is not None and dove[key]:
            ratio = ours[key] / dove[key]  # type: ignore[operator]
        met = "-"
        if target and target.startswith("ratio") and ratio is not None:
            bound = float(target[7:])
            met = "yes" if (ratio <= bound if "<=" in target else ratio >= bound) else "NO"
        elif target and target.startswith("ms<") and ours.get("ms") is not None:
            met = "yes" if ours["ms"] < float(target[3:]) else "NO"  # type: ignore[operator]
        elif target:
            met = "n/a"
        shown = {"ratio<=2": "<= 2x Dovecot's time", "ratio>=0.5": ">= 0.5x Dovecot",
                 "ms<50": "< 50 ms"}.get(target or "", "")  # fmt: skip
        print(f"| {label} | {fmt(ours, kind)} | {fmt(dove, kind)} | "
              f"{'-' if ratio is None else f'{ratio:.3g}x'} | {shown} | {met} |")  # fmt: skip
    print("Dovecot has no SMTP listener here: its new-message IDLE row is a file renamed into "
          "new/, as a local delivery agent delivers.")  # fmt: skip


def readline(s: socket.socket, buf: bytearray) -> bytes:
    while (end := buf.find(b"\r\n")) < 0:
        chunk = s.recv(65536)
        if not chunk:
            raise ImapError("connection closed")
        buf += chunk
    line = bytes(buf[:end])
    del buf[: end + 2]
    return line


def idle_memory(a: argparse.Namespace) -> None:
    """RSS of our server with C{a.idlers} sessions idling on a 20-message INBOX."""
    work = a.work / "idlers"
    shutil.rmtree(work, ignore_errors=True)
    ours = Ours(work, a.port, a.twistd)
    socks: list[socket.socket] = []
    try:
        ours.start(a.start_timeout)
        login("127.0.0.1", ours.port, f"idle@{DOMAIN}", PASSWORD, a.timeout).close()
        fill([ours.maildir("idle")], 20, a.size)
        login("127.0.0.1", ours.port, f"idle@{DOMAIN}", PASSWORD, a.timeout).close()
        base = rss_kb(ours.pid)
        t0 = time.perf_counter()
        batch = 50
        for first in range(0, a.idlers, batch):
            group = []
            for _ in range(min(batch, a.idlers - first)):
                s = socket.create_connection(("127.0.0.1", ours.port), timeout=a.timeout)
                s.sendall(f'a LOGIN idle@{DOMAIN} "{PASSWORD}"\r\nb SELECT INBOX\r\nc IDLE\r\n'
                          .encode())  # fmt: skip
                group.append((s, bytearray()))
                socks.append(s)
            for s, buf in group:
                while not readline(s, buf).startswith(b"+"):
                    pass
        setup = time.perf_counter() - t0
        time.sleep(2)
        after = rss_kb(ours.pid)
        t = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", ours.smtp_port, timeout=a.timeout) as smtp:
            smtp.sendmail(f"load@{DOMAIN}", [f"idle@{DOMAIN}"], crlf(message(21, 1024)))
        bufs = [bytearray() for _ in socks]
        while not readline(socks[0], bufs[0]).endswith(b"EXISTS"):
            pass
        first_ms = (time.perf_counter() - t) * 1e3
        for s, buf in zip(socks[1:], bufs[1:], strict=True):
            while not readline(s, buf).endswith(b"EXISTS"):
                pass
        all_ms = (time.perf_counter() - t) * 1e3
        verdict = "yes" if after / 1024 < 200 else "NO"
        print(f"\n{a.idlers} sessions idling on a 20-message INBOX (ours): RSS {after / 1024:.1f} MB "
              f"(before the sessions {base / 1024:.1f} MB, +{(after - base) / a.idlers:.0f} KiB per "
              f"session); target < 200 MB: {verdict}; set-up {setup:.1f} s; an SMTP delivery "
              f"reached the first idler in {first_ms:.0f} ms and all {a.idlers} in {all_ms:.0f} ms")  # fmt: skip
    finally:
        for s in socks:
            s.close()
        ours.stop(a.start_timeout)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"signal {signum}")  # runs the finally blocks that stop the servers


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="2000,10000,100000", help="INBOX sizes, comma-separated")
    ap.add_argument("--size", type=int, default=4096, help="bytes per message")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--idle-reps", type=int, default=10)
    ap.add_argument("--idle-wait", type=float, default=3.0, help="max wait for an IDLE push, s")
    ap.add_argument("--idlers", type=int, default=1000, help="0: skip the idle-memory run")
    ap.add_argument("--port", type=int, default=21430, help="first of four consecutive ports")
    ap.add_argument("--work", type=Path, default=Path("/tmp/imap-bench"))
    ap.add_argument("--timeout", type=float, default=300.0, help="per IMAP reply, s")
    ap.add_argument("--start-timeout", type=float, default=60.0)
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--twistd", default=str(Path(sys.executable).with_name("twistd")))
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    if not a.no_dovecot and shutil.which("dovecot") is None:
        print("dovecot not found (apt-get install dovecot-imapd): measured without it")
        a.no_dovecot = True
    for port in range(a.port, a.port + 4):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"127.0.0.1:{port} is in use; pick other ports with --port")
    a.work.mkdir(parents=True, exist_ok=True)
    for count in [int(x) for x in a.sizes.split(",") if x]:
        run_size(a, count)
    if a.idlers:
        idle_memory(a)


if __name__ == "__main__":
    main()
