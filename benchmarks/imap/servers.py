"""Start and stop the servers the IMAP benchmark compares, and fill their Maildirs.

Our server runs as `twistd -n mailstack` and Dovecot as `dovecot -F` (foreground, not a daemon),
each as a child process on fixed loopback ports with its own files under the work directory.
Every wait is bounded; `stop` ends only the process that `start` made.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

PASSWORD = "benchpass"
DOMAIN = "bench.test"
VMAIL = 5000  # Dovecot's mail owner, as in the shared anchor (../shared/bench/anchors/dovecot.sh)
NEEDLE = b"xyzzyneedle"  # body word of every 100th message, for SEARCH BODY


def message(i: int, size: int) -> bytes:
    """Message number C{i} of exactly C{size} bytes on disk, LF line ends as Maildirs store them."""
    head = (
        f"From: <load@{DOMAIN}>\nTo: <bench@{DOMAIN}>\nSubject: bench message {i}\n"
        f"Message-ID: <bench.{i}@{DOMAIN}>\nDate: Thu, 01 Jan 2026 00:00:00 +0000\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
    ).encode()
    parts = [head, NEEDLE + b"\n"] if i % 100 == 0 else [head]
    n = sum(map(len, parts))
    line = (f"word{i % 997} lorem ipsum dolor sit amet consectetur adipiscing " * 2)[:72] + "\n"
    count, rest = divmod(size - n, len(line))
    parts.append(line.encode() * count)
    if rest:
        parts.append(b"x" * (rest - 1) + b"\n")
    return b"".join(parts)


def fill(maildirs: list[Path], count: int, size: int) -> None:
    """Write C{count} identical messages into cur/ of every Maildir (same names, unseen)."""
    for m in maildirs:
        for sub in ("cur", "new", "tmp"):
            (m / sub).mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        data = message(i, size)
        name = f"1767225600.M{i}P1.bench:2,"
        for m in maildirs:
            with open(m / "cur" / name, "wb") as f:
                f.write(data)


def drop(maildir: Path, data: bytes, owner: tuple[int, int] | None = None) -> None:
    """Deliver C{data} as a local delivery agent would: write in tmp/, rename into new/."""
    name = f"{time.time_ns()}.M1P{os.getpid()}.bench"
    tmp = maildir / "tmp" / name
    tmp.write_bytes(data)
    if owner:
        os.chown(tmp, *owner)
    os.rename(tmp, maildir / "new" / name)


def chown_tree(top: Path, owner: tuple[int, int]) -> None:
    os.chown(top, *owner)
    for root, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), *owner)


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout} s; see {log}")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Child:
    """A server child process; C{stop} sends SIGTERM, then SIGKILL after C{timeout}."""

    proc: subprocess.Popen[bytes] | None = None

    def stop(self, timeout: float = 20) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class Ours(Child):
    name = "ours"

    def __init__(self, work: Path, port: int, twistd: str) -> None:
        self.dir, self.port, self.smtp_port, self.twistd = work / "ours", port, port + 1, twistd
        self.user = f"bench@{DOMAIN}"

    def maildir(self, local: str = "bench") -> Path:
        return self.dir / "data" / "mail" / DOMAIN / local

    def start(self, timeout: float) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # 1,000 idling sessions come from one address; failed logins are not what is measured.
        (self.dir / "bench.toml").write_text(
            "[imap]\nmax_connections_per_client = 2000\nlogin_failure_delay = 0.0\n"
        )
        log = self.dir / "twistd.log"
        imap = f"tcp:{self.port}:interface=127.0.0.1"
        smtp = f"tcp:{self.smtp_port}:interface=127.0.0.1"
        off = ("pop3", "pop3s", "submission", "submissions", "imaps")
        with open(self.dir / "stdout", "wb") as out:
            self.proc = subprocess.Popen(
                [self.twistd, "-n", "--pidfile=", f"--logfile={log}", "mailstack",
                 "--config", str(self.dir / "bench.toml"), "--data", str(self.dir / "data"),
                 "--domain", DOMAIN, "--imap", imap, "--smtp", smtp,
                 *[f"--{k}=none" for k in off],
                 f"--user=bench@{DOMAIN}:{PASSWORD}", f"--user=idle@{DOMAIN}:{PASSWORD}"],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_port(self.port, timeout, self.proc, log)
        wait_port(self.smtp_port, timeout, self.proc, log)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Dovecot(Child):
    name = "dovecot"

    def __init__(self, work: Path, port: int) -> None:
        self.dir, self.port, self.user = work / "dovecot", port, "bench"

    def maildir(self, local: str = "bench") -> Path:
        return self.dir / "home" / local / "Maildir"

    def start(self, timeout: float) -> None:
        d = self.dir
        for sub in ("run", "state"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "users").write_text(f"bench:{{PLAIN}}{PASSWORD}:{VMAIL}:{VMAIL}::{d}/home/bench\n")
        chown_tree(d / "home", (VMAIL, VMAIL))
        # The shared anchor's settings (anchors/dovecot.sh), IMAP only, in the foreground.
        (d / "dovecot.conf").write_text(f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = imap-bench-dovecot-{self.port}
log_path = {d}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
        with open(d / "stdout", "wb") as out:
            self.proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(d / "dovecot.conf")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_port(self.port, timeout, self.proc, d / "dovecot.log")
