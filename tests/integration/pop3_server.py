"""`twistd mailstack` started as an operator starts it, for the POP3 and IMAP integration tests."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

TWISTD = str(Path(sys.executable).with_name("twistd"))
DOMAIN = "example.org"
PASSWORD = "s3cret pass"  # a space: PASS takes the rest of the line, LOGIN must quote it
_LISTENING = re.compile(
    r"\] (.+) listening on IPv4Address\(type='TCP', host='127.0.0.1', port=(\d+)\)"
)


_KINDS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


class Server:
    """One server in a child process, on free loopback ports, with the given local parts as users."""

    #: The listener kinds opened (on free ports); the others are turned off.
    LISTENERS: tuple[str, ...] = ("pop3", "pop3s", "smtp")

    def __init__(self, root: Path, users: list[str], *options: str) -> None:
        self.root = root
        self.data = root / "data"
        self.users = users
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}

    def start(self, timeout: float = 30) -> Server:
        log = self.root / "twistd.log"
        log.unlink(missing_ok=True)
        listen = "tcp:0:interface=127.0.0.1"
        listeners = [
            arg
            for kind in _KINDS
            for arg in (f"--{kind}", listen if kind in self.LISTENERS else "none")
        ]
        args = [TWISTD, "-n", "--pidfile=", f"--logfile={log}", "mailstack", "--data", str(self.data),
                "--domain", DOMAIN, *listeners,
                *(f"--user={u}@{DOMAIN}:{PASSWORD}" for u in self.users), *self.options]  # fmt: skip
        self.process = subprocess.Popen(args, cwd=self.root, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text() if log.exists() else ""
            if "mailstack ready" in text:
                self.ports = {m[1]: int(m[2]) for m in _LISTENING.finditer(text)}
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(
            "server did not start; log:\n" + (log.read_text() if log.exists() else "")
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return (self.root / "twistd.log").read_text()

    @property
    def pop3(self) -> int:
        return self.ports["POP3"]

    @property
    def pop3s(self) -> int:
        return self.ports["POP3, implicit TLS"]

    @property
    def smtp(self) -> int:
        return self.ports["SMTP (MX)"]

    @property
    def cert(self) -> str:
        return str(self.data / "tls" / "cert.pem")

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cert)

    def maildir(self, user: str) -> Path:
        return self.data / "mail" / DOMAIN / user

    def drop(self, user: str, data: bytes) -> None:
        """Put a message into the user's Maildir as another program would (tmp/, then new/)."""
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.test"
        tmp = self.maildir(user) / "tmp" / name
        tmp.write_bytes(data)
        os.rename(tmp, self.maildir(user) / "new" / name)
