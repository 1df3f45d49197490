#!/usr/bin/env python3
"""
POP3 retrieval benchmark: twisted-mail-stack beside Dovecot's POP3 server and stock `twistd mail`
in the same run, on copies of the same Maildir. Prints figures; asserts nothing.

Each server gets N generated messages of SIZE bytes (LF line ends, as fill_maildir.py writes
them) per user; all servers run side by side, and a warm-up session per user lets each index its
Maildir. Then, in each repetition, the load tool logs in, sends UIDL and RETRs every message
over 1 and then 4 sessions (4 users for the servers that lock the maildrop, one user for
`twistd mail`, which has a single one), the servers taking turns run by run so that the runs
compared were measured close together. Finally a client reads a 50 MB message slowly while the
resident memory of the process serving it is sampled.

  sudo python3 benchmarks/pop3/run.py [--count 10000] [--size 4096] [--reps 3]

Needs root (Dovecot), Debian's dovecot-pop3d, the shared bench kit (--bench, for fill_maildir.py
and the twistd-mail anchor) and a virtualenv with this project (--venv, default: this Python's).
Everything lives under --work (default /tmp/pop3-bench) and is wiped at start. Every wait is
bounded: load runs by --max-seconds, server starts and stops by --start-timeout.
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
from types import FrameType

HERE = Path(__file__).resolve().parent
PASSWORD = "benchpass"
USERS = 4
VMAIL = 5000  # Dovecot's mail owner, as in the shared anchor


def sh(*args: str, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a command that must finish (never a daemon: it would hold our pipes open)."""
    return subprocess.run(
        args, check=True, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, env=env,
    ).stdout  # fmt: skip


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_gone(pid: int, timeout: float) -> None:
    """Wait for C{pid} to exit; SIGKILL it after C{timeout}."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def copy_maildir(template: Path | None, maildir: Path) -> None:
    """Make C{maildir} with copies of C{template}'s messages (none if C{template} is None)."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for f in (template / "cur").iterdir() if template else ():
        shutil.copy2(f, maildir / "cur" / f.name)


def chown_tree(top: Path, owner: tuple[int, int]) -> None:
    os.chown(top, *owner)
    for root, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), *owner)


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Ours:
    name = "twisted-mail-stack"
    key = "ours"

    def __init__(self, a: argparse.Namespace) -> None:
        self.a, self.port, self.dir = a, a.port, a.work / "ours"
        self.user = "bench{i}@bench.test"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, template: Path) -> None:
        self.dir.mkdir(parents=True)
        listen = f"tcp:{self.port}:interface=127.0.0.1"
        users = [f"--user=bench{i}@bench.test:{PASSWORD}" for i in range(1, USERS + 2)]
        with open(self.dir / "stdout", "wb") as out:
            self.proc = subprocess.Popen(
                [self.a.twistd, "-n", "--pidfile=", f"--logfile={self.dir / 'twistd.log'}",
                 "mailstack", "--data", str(self.dir / "data"), "--domain", "bench.test",
                 "--pop3", listen, *users,
                 *[f"--{k}=none" for k in ("pop3s", "smtp", "submission", "submissions", "imap", "imaps")]],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_port(self.port, self.a.start_timeout)
        for i in range(1, USERS + 2):
            copy_maildir(template if i <= USERS else None, self.maildir(i))

    def maildir(self, i: int) -> Path:
        return self.dir / "data" / "mail" / "bench.test" / f"bench{i}"

    def session_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.a.start_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Dovecot:
    name = "dovecot"
    key = "dovecot"

    def __init__(self, a: argparse.Namespace) -> None:
        self.a, self.port, self.dir = a, a.port + 1, a.work / "dovecot"
        self.user = "bench{i}"
        self.pid: int | None = None

    def start(self, template: Path) -> None:
        d = self.dir
        for sub in ("run", "state"):
            (d / sub).mkdir(parents=True)
        (d / "users").write_text("".join(
            f"bench{i}:{{PLAIN}}{PASSWORD}:{VMAIL}:{VMAIL}::{d}/home/bench{i}\n"
            for i in range(1, USERS + 2)
        ))  # fmt: skip
        # The shared anchor's settings (anchors/dovecot.sh), POP3 only.
        (d / "dovecot.conf").write_text(f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = pop3-bench-dovecot-{self.port}
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
verbose_proctitle = yes
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
        for i in range(1, USERS + 2):
            copy_maildir(template if i <= USERS else None, self.maildir(i))
        chown_tree(d / "home", (VMAIL, VMAIL))
        # dovecot daemonises and its master keeps the stderr it was given: hand it a file, not
        # a pipe we would wait on for ever (what hung the first version of this script).
        with open(d / "stdout", "wb") as out:
            subprocess.run(
                ["dovecot", "-c", str(d / "dovecot.conf")], check=True, timeout=30,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        # the parent returns before the daemon writes its pid file
        wait_port(self.port, self.a.start_timeout)
        pidfile, deadline = d / "run" / "master.pid", time.monotonic() + self.a.start_timeout
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pidfile.exists():
            raise SystemExit(f"dovecot wrote no {pidfile} in {self.a.start_timeout} s; see {d}")
        self.pid = int(pidfile.read_text())

    def maildir(self, i: int) -> Path:
        return self.dir / "home" / f"bench{i}" / "Maildir"

    def session_pid(self) -> int:
        """The newest pop3 process owned by the mail user (one process per session)."""
        best, newest = 0, -1
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                stat = (p / "stat").read_text()
                comm = stat[stat.index("(") + 1 : stat.rindex(")")]
                started = int(stat[stat.rindex(")") + 2 :].split()[19])
                uid = p.stat().st_uid
            except (OSError, ValueError):
                continue
            if comm == "pop3" and uid == VMAIL and started > newest:
                best, newest = int(p.name), started
        return best

    def stop(self) -> None:
        pidfile = self.dir / "run" / "master.pid"
        if self.pid is None and pidfile.exists():
            self.pid = int(pidfile.read_text())
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            wait_gone(self.pid, self.a.start_timeout)


class TwistdMail:
    name = "twistd mail"
    key = "twistd"

    def __init__(self, a: argparse.Namespace) -> None:
        self.a, self.port, self.dir = a, a.port + 2, a.work / "twistd"
        self.user = "bench"  # one maildrop, no locking: every session reads it
        self.env = {**os.environ, "DIR": str(self.dir), "POP3_PORT": str(self.port),
                    "SMTP_PORT": str(a.port + 3), "VENV": a.venv}  # fmt: skip

    def _anchor(self, verb: str) -> None:
        sh("bash", str(self.a.bench / "anchors" / "twistd-mail.sh"), verb, env=self.env,
           timeout=self.a.start_timeout)  # fmt: skip

    def start(self, template: Path) -> None:
        self._anchor("start")
        wait_port(self.port, self.a.start_timeout)
        copy_maildir(template, self.dir / "bench.test" / "bench")

    def stop(self) -> None:
        self._anchor("stop")


Server = Ours | Dovecot | TwistdMail


def load(a: argparse.Namespace, server: Server, conc: int, max_seconds: float) -> dict:
    out = sh(sys.executable, str(HERE / "pop3_retr_load.py"), "--port", str(server.port),
             "--user", server.user, "--password", PASSWORD, "--conc", str(conc),
             "--max-seconds", str(max_seconds), "--timeout", str(a.reply_timeout),
             "--label", server.name, timeout=max_seconds + 2 * a.reply_timeout + 30)  # fmt: skip
    return json.loads(out)


def slow_big_retr(a: argparse.Namespace, server: Ours | Dovecot) -> dict:
    """One client RETRs a big message reading about --big-rate-mb MB/s; sample the server's RSS."""
    size, rate = a.big_mb << 20, a.big_rate_mb * 1e6
    maildir = server.maildir(USERS + 1)
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n"
    path = maildir / "new" / f"{int(time.time())}.big.bench"
    path.write_bytes(b"Subject: big\n\n" + line * (size // len(line)))
    if isinstance(server, Dovecot):
        chown_tree(maildir.parent, (VMAIL, VMAIL))
    deadline = time.monotonic() + size / rate * 3 + 120
    with socket.create_connection(("127.0.0.1", server.port), timeout=a.reply_timeout) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"USER {server.user.format(i=USERS + 1)}\r\nPASS {PASSWORD}\r\n".encode())
        f.readline(), f.readline()
        pid = server.session_pid()
        before = rss_kb(pid)
        s.sendall(b"RETR 1\r\n")
        got, peak, t0, step, tail = 0, before, time.monotonic(), 64 * 1024, b""
        next_sample = 0
        while time.monotonic() < deadline:
            chunk = f.read1(step)
            if not chunk:
                break
            got += len(chunk)
            if got >= next_sample:
                peak = max(peak, rss_kb(pid))
                next_sample = got + (1 << 20)
            tail = (tail + chunk)[-5:]
            if tail == b"\r\n.\r\n":
                break
            time.sleep(max(0.0, t0 + got / rate - time.monotonic()))
        seconds = time.monotonic() - t0
        s.sendall(b"QUIT\r\n")
    return {"label": server.name, "bytes": got, "seconds": round(seconds, 1), "pid": pid,
            "complete": tail == b"\r\n.\r\n", "rss_before_MB": round(before / 1024, 1),
            "rss_peak_MB": round(peak / 1024, 1)}  # fmt: skip


def warm_up(a: argparse.Namespace, server: Server) -> None:
    """Log in once per maildrop, so that each server indexes its Maildir before it is timed."""
    for i in range(1, (1 if isinstance(server, TwistdMail) else USERS) + 1):
        sh(sys.executable, str(HERE / "pop3_retr_load.py"), "--port", str(server.port),
           "--user", server.user.format(i=i), "--password", PASSWORD, "--max-seconds", "0",
           "--timeout", str(a.reply_timeout), timeout=2 * a.reply_timeout + 30)  # fmt: skip


def run_all(a: argparse.Namespace, servers: list[Server], template: Path) -> list[dict]:
    """
    Start every server once, then take turns run by run (1 session on each, then 4 on each),
    so that the figures compared within a repetition were measured seconds apart: the machine
    may be shared, and its load drifts over minutes.
    """
    results: list[dict] = []
    started: list[Server] = []
    rss_start: dict[str, int] = {}
    try:
        for server in servers:
            shutil.rmtree(server.dir, ignore_errors=True)
            started.append(server)
            server.start(template)
            if isinstance(server, Ours):
                rss_start[server.name] = rss_kb(server.session_pid())
            warm_up(a, server)
        for rep in range(a.reps):
            for conc in (1, 4):
                for server in servers:
                    cap = a.twistd_max_seconds if isinstance(server, TwistdMail) else a.max_seconds
                    r = load(a, server, conc, cap)
                    r["rep"] = rep
                    results.append(r)
                    print(json.dumps(r), flush=True)
        for server in servers:
            if isinstance(server, Ours):
                mem = {"label": server.name, "rep": f"0-{a.reps - 1}",
                       "rss_start_MB": round(rss_start[server.name] / 1024, 1),
                       "rss_after_load_MB": round(rss_kb(server.session_pid()) / 1024, 1)}  # fmt: skip
                print(json.dumps(mem), flush=True)
                results.append(mem)
        for server in servers:
            if isinstance(server, Ours | Dovecot) and a.big_mb > 0:
                big = slow_big_retr(a, server)
                print(json.dumps(big), flush=True)
                results.append(big)
    finally:
        for server in reversed(started):
            server.stop()
    return results


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"signal {signum}")  # run the finally blocks that stop the servers


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
    ap.add_argument("--max-seconds", type=float, default=60.0, help="cap per load run")
    ap.add_argument(
        "--twistd-max-seconds", type=float, default=20.0, help="cap per `twistd mail` load run"
    )
    ap.add_argument("--reply-timeout", type=float, default=60.0, help="per POP3 reply")
    ap.add_argument("--start-timeout", type=float, default=30.0, help="server start/stop")
    ap.add_argument("--big-mb", type=int, default=50, help="0: skip the slow big RETR")
    ap.add_argument("--big-rate-mb", type=float, default=5.0, help="slow reader speed, MB/s")
    ap.add_argument("--only", action="append", choices=["ours", "dovecot", "twistd"])
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    a.twistd = str(Path(a.venv) / "bin" / "twistd")
    for port in range(a.port, a.port + 4):
        if not port_free(port):
            raise SystemExit(f"127.0.0.1:{port} is in use; pick other ports with --port")
    shutil.rmtree(a.work, ignore_errors=True)
    template = a.work / "template"
    sh(sys.executable, str(a.bench / "load" / "fill_maildir.py"), str(template), "--count",
       str(a.count), "--size", str(a.size), timeout=600)  # fmt: skip
    kinds: dict[str, type[Server]] = {"ours": Ours, "dovecot": Dovecot, "twistd": TwistdMail}
    if shutil.which("dovecot") is None and "dovecot" in (a.only or kinds):
        print("dovecot not found (apt-get install dovecot-pop3d): measured without it", flush=True)
        kinds.pop("dovecot")
        a.only = [k for k in a.only or kinds if k in kinds]
    servers = [kinds[key](a) for key in a.only or list(kinds)]
    results = run_all(a, servers, template)
    summarize(results, a)


def median(values: list[float]) -> float | None:
    v = sorted(values)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def summarize(results: list[dict], a: argparse.Namespace) -> None:
    runs = [r for r in results if "msgs_per_s" in r]
    labels = list(dict.fromkeys(r["label"] for r in runs))
    print(f"\nPOP3: log in, UIDL, RETR each of {a.count} x {a.size} B messages (stored with LF), "
          f"{a.reps} rep(s), medians; ratios are medians of per-repetition ratios")  # fmt: skip
    print("| server | sessions | msg/s | MB/s | RETR p50 ms | p99 ms | login+UIDL max ms "
          "| vs dovecot | vs twistd mail | errors |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")

    def pick(label: str, conc: int) -> list[dict]:
        return [r for r in runs if r["label"] == label and r["conc"] == conc]

    def ratio(label: str, other: str, conc: int) -> str:
        per_rep = []
        for r in pick(label, conc):
            o = [x for x in pick(other, conc) if x["rep"] == r["rep"]]
            if o and o[0]["msgs_per_s"]:
                per_rep.append(r["msgs_per_s"] / o[0]["msgs_per_s"])
        m = median(per_rep)
        return "-" if m is None or label == other else f"{m:.2f}x"

    for conc in (1, 4):
        for label in labels:
            rs = pick(label, conc)
            if not rs:
                continue

            def med(key: str, rs: list[dict] = rs) -> str:
                m = median([r[key] for r in rs if r.get(key) is not None])
                return "-" if m is None else f"{m:,.1f}" if m < 100 else f"{m:,.0f}"

            errors = sum(len(r["errors"]) for r in rs)
            capped = " (capped)" if any(r["cut_short"] for r in rs) else ""
            print(f"| {label}{capped} | {conc} | {med('msgs_per_s')} | {med('MB_per_s')} "
                  f"| {med('retr_p50_ms')} | {med('retr_p99_ms')} | {med('login_uidl_ms_max')} "
                  f"| {ratio(label, 'dovecot', conc)} | {ratio(label, 'twistd mail', conc)} "
                  f"| {errors} |")  # fmt: skip
    for r in results:
        if "rss_start_MB" in r:
            print(f"{r['label']} (rep {r['rep']}): RSS {r['rss_start_MB']} MB at start, "
                  f"{r['rss_after_load_MB']} MB after the load runs")  # fmt: skip
    for r in results:
        if "rss_peak_MB" in r:
            done = "" if r["complete"] else " (INCOMPLETE)"
            print(f"{r['label']}: slow RETR of {r['bytes'] / 1e6:.0f} MB at ~{a.big_rate_mb} MB/s "
                  f"took {r['seconds']} s{done}; RSS of the serving process (pid {r['pid']}) "
                  f"{r['rss_before_MB']} MB before, peak {r['rss_peak_MB']} MB")  # fmt: skip


if __name__ == "__main__":
    main()
