#!/usr/bin/env python3
"""
POP3 retrieval benchmark: twisted-mail-stack beside Dovecot's POP3 server and stock `twistd mail`
in the same run, on copies of the same Maildir. Prints figures; asserts nothing.

Each server gets N generated messages of SIZE bytes (LF line ends, as fill_maildir.py writes
them) per user; a warm-up session per user lets each server index its Maildir. Then the load tool
logs in, sends UIDL and RETRs every message over 1 and 4 sessions (4 users for the servers that
lock the maildrop, one user for `twistd mail`, which has a single one). Finally a client reads a
50 MB message slowly while the server's resident memory is sampled.

  sudo python3 benchmarks/pop3/run.py [--count 10000] [--size 4096] [--reps 1]

Needs root (Dovecot), Debian's dovecot-pop3d, the shared bench kit (--bench, for fill_maildir.py
and the twistd-mail anchor) and a virtualenv with this project (--venv, default: this Python's).
Everything lives under --work (default /tmp/pop3-bench) and is wiped at start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORD = "benchpass"
USERS = 4


def sh(*args: str, **kw: object) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout  # type: ignore[call-overload]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def copy_maildir(template: Path, maildir: Path, owner: tuple[int, int] | None = None) -> None:
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for f in (template / "cur").iterdir():
        shutil.copy2(f, maildir / "cur" / f.name)
    if owner:
        for root, dirs, files in os.walk(maildir.parent):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), *owner)
        os.chown(maildir.parent, *owner)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Ours:
    name = "twisted-mail-stack"

    def __init__(self, a: argparse.Namespace) -> None:
        self.a, self.port, self.dir = a, a.port, a.work / "ours"
        self.user = "bench{i}@bench.test"

    def start(self, template: Path) -> None:
        log = self.dir / "twistd.log"
        self.dir.mkdir(parents=True)
        listen = f"tcp:{self.port}:interface=127.0.0.1"
        users = [f"--user=bench{i}@bench.test:{PASSWORD}" for i in range(1, USERS + 2)]
        self.proc = subprocess.Popen(
            [self.a.twistd, "-n", "--pidfile=", f"--logfile={log}", "mailstack", "--data",
             str(self.dir / "data"), "--domain", "bench.test", "--pop3", listen, *users,
             *[f"--{k}=none" for k in ("pop3s", "smtp", "submission", "submissions", "imap", "imaps")]],
            cwd=self.dir,
        )  # fmt: skip
        wait_port(self.port)
        for i in range(1, USERS + 1):
            copy_maildir(template, self.maildir(i))

    def maildir(self, i: int) -> Path:
        return self.dir / "data" / "mail" / "bench.test" / f"bench{i}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class Dovecot:
    name = "dovecot"

    def __init__(self, a: argparse.Namespace) -> None:
        self.a, self.port, self.dir = a, a.port + 1, a.work / "dovecot"
        self.user = "bench{i}"

    def start(self, template: Path) -> None:
        d = self.dir
        for sub in ("run", "state"):
            (d / sub).mkdir(parents=True)
        (d / "users").write_text("".join(
            f"bench{i}:{{PLAIN}}{PASSWORD}:5000:5000::{d}/home/bench{i}\n" for i in range(1, USERS + 2)
        ))  # fmt: skip
        # The shared anchor's settings, POP3 only (the anchor also starts IMAP).
        (d / "dovecot.conf").write_text(f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = pop3-bench-dovecot
log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""")
        for i in range(1, USERS + 1):
            copy_maildir(template, self.maildir(i), (5000, 5000))
        sh("dovecot", "-c", str(d / "dovecot.conf"))
        wait_port(self.port)

    def maildir(self, i: int) -> Path:
        return self.dir / "home" / f"bench{i}" / "Maildir"

    @property
    def pid(self) -> int:
        return int((self.dir / "run" / "master.pid").read_text())

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        time.sleep(1)


class TwistdMail:
    name = "twistd mail (stock)"

    def __init__(self, a: argparse.Namespace) -> None:
        self.a, self.port, self.dir = a, a.port + 2, a.work / "twistd"
        self.user = "bench"  # one maildrop, no locking: every session reads it
        self.env = {**os.environ, "DIR": str(self.dir), "POP3_PORT": str(self.port),
                    "SMTP_PORT": str(a.port + 3), "VENV": a.venv}  # fmt: skip

    def start(self, template: Path) -> None:
        sh("bash", str(self.a.bench / "anchors" / "twistd-mail.sh"), "start", env=self.env)
        wait_port(self.port)
        copy_maildir(template, self.dir / "bench.test" / "bench")

    def stop(self) -> None:
        sh("bash", str(self.a.bench / "anchors" / "twistd-mail.sh"), "stop", env=self.env)


def load(
    a: argparse.Namespace, server: Ours | Dovecot | TwistdMail, conc: int, *extra: str
) -> dict:
    users = server.user
    out = sh(sys.executable, str(HERE / "pop3_retr_load.py"), "--port", str(server.port),
             "--user", users, "--password", PASSWORD, "--conc", str(conc), "--max-seconds",
             str(a.max_seconds), "--label", server.name, *extra)  # fmt: skip
    return json.loads(out)


def slow_big_retr(server: Ours | Dovecot, size: int, rate: float) -> dict:
    """One client RETRs a SIZE-byte message reading about RATE bytes/s; sample the server's RSS."""
    maildir = server.maildir(USERS + 1)
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n"
    body = line * (size // len(line))
    path = maildir / "new" / f"{int(time.time())}.big.bench"
    path.write_bytes(b"Subject: big\n\n" + body)
    if isinstance(server, Dovecot):
        for root, dirs, files in os.walk(maildir.parent):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), 5000, 5000)
    pid = server.pid
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"USER {server.user.format(i=USERS + 1)}\r\nPASS {PASSWORD}\r\n".encode())
        f.readline(), f.readline()
        before = rss_kb(pid)
        s.sendall(b"RETR 1\r\n")
        got, peak, t0, step = 0, before, time.monotonic(), 64 * 1024
        while True:
            chunk = s.recv(step)
            if not chunk:
                break
            got += len(chunk)
            if got % (1 << 20) < step:
                peak = max(peak, rss_kb(pid))
            if chunk.endswith(b"\r\n.\r\n"):
                break
            time.sleep(max(0.0, t0 + got / rate - time.monotonic()))
        s.sendall(b"QUIT\r\n")
    return {"server": server.name, "bytes": got, "seconds": round(time.monotonic() - t0, 1),
            "rss_before_MB": round(before / 1024, 1), "rss_peak_MB": round(peak / 1024, 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--port", type=int, default=21110, help="first of four consecutive ports")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pop3-bench"))
    ap.add_argument("--bench", type=Path, default=Path("/work/shared/bench"))
    ap.add_argument("--venv", default=str(Path(sys.executable).parent.parent))
    ap.add_argument(
        "--max-seconds", type=float, default=30.0, help="cap per load run (twistd mail is slow)"
    )
    ap.add_argument("--big-mb", type=int, default=50)
    ap.add_argument("--big-rate-mb", type=float, default=10.0, help="slow reader speed, MB/s")
    ap.add_argument("--only", action="append", help="ours, dovecot, twistd (repeatable)")
    a = ap.parse_args()
    a.twistd = str(Path(a.venv) / "bin" / "twistd")
    shutil.rmtree(a.work, ignore_errors=True)
    template = a.work / "template"
    sh(sys.executable, str(a.bench / "load" / "fill_maildir.py"), str(template), "--count",
       str(a.count), "--size", str(a.size))  # fmt: skip
    kinds = {"ours": Ours, "dovecot": Dovecot, "twistd": TwistdMail}
    results: list[dict] = []
    for rep in range(a.reps):
        for key in a.only or list(kinds):
            server = kinds[key](a)
            shutil.rmtree(server.dir, ignore_errors=True)
            server.start(template)
            try:
                if not isinstance(server, TwistdMail):
                    for i in range(1, USERS + 1):  # warm-up: let the server index each Maildir
                        sh(sys.executable, str(HERE / "pop3_retr_load.py"), "--port", str(server.port),
                           "--user", server.user.format(i=i), "--password", PASSWORD, "--max-seconds", "0")  # fmt: skip
                for conc in (1, 4):
                    r = load(a, server, conc)
                    r["rep"] = rep
                    results.append(r)
                    print(json.dumps(r), flush=True)
                if isinstance(server, Ours | Dovecot) and rep == 0:
                    big = slow_big_retr(server, a.big_mb << 20, a.big_rate_mb * 1e6)
                    print(json.dumps(big), flush=True)
                    results.append(big)
            finally:
                server.stop()
    summarize(results, a)


def summarize(results: list[dict], a: argparse.Namespace) -> None:
    print(f"\nPOP3: log in, UIDL, RETR each of {a.count} x {a.size} B messages (LF-stored), "
          f"{a.reps} rep(s), median msg/s")  # fmt: skip
    print("| server | sessions | msg/s | MB/s | RETR p50 ms | p99 ms | vs dovecot | errors |")
    print("|---|---|---|---|---|---|---|---|")
    runs = [r for r in results if "msgs_per_s" in r]

    def median(label: str, conc: int, key: str) -> float | None:
        vals = sorted(
            r[key] for r in runs if r["label"] == label and r["conc"] == conc and r[key] is not None
        )
        return vals[len(vals) // 2] if vals else None

    for conc in (1, 4):

        def med(label: str, key: str, conc: int = conc) -> float | None:
            return median(label, conc, key)

        dove = med("dovecot", "msgs_per_s")
        for label in dict.fromkeys(r["label"] for r in runs):
            mps = med(label, "msgs_per_s")
            if mps is None:
                continue
            ratio = f"{mps / dove:.2f}x" if dove else "-"
            errors = sum(
                len(r["errors"]) for r in runs if r["label"] == label and r["conc"] == conc
            )
            cut = (
                " (capped)"
                if any(r["cut_short"] for r in runs if r["label"] == label and r["conc"] == conc)
                else ""
            )
            print(f"| {label}{cut} | {conc} | {mps} | {med(label, 'MB_per_s')} | {med(label, 'retr_p50_ms')} "
                  f"| {med(label, 'retr_p99_ms')} | {ratio} | {errors} |")  # fmt: skip
    for r in results:
        if "rss_peak_MB" in r:
            print(f"{r['server']}: RETR of {r['bytes'] / 1e6:.0f} MB at ~{a.big_rate_mb} MB/s took {r['seconds']} s; "
                  f"server RSS {r['rss_before_MB']} MB before, peak {r['rss_peak_MB']} MB")  # fmt: skip


if __name__ == "__main__":
    main()
