"""SMTP against `twistd mailstack` started as an operator starts it, in a child process."""

from __future__ import annotations

import re
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from .smtp_server import strip_trace

TWISTD = str(Path(sys.executable).with_name("twistd"))


def test_mx_delivery_through_twistd(tmp_path: Path) -> None:
    config = tmp_path / "mailstack.toml"
    config.write_text(
        'domains = ["example.org"]\nusers = ["alice@example.org:pw"]\n'
        "[listeners]\n"
        'smtp = ["tcp:0:interface=127.0.0.1"]\n'
        "submission = []\nsubmissions = []\npop3 = []\npop3s = []\nimap = []\nimaps = []\n"
    )
    log = tmp_path / "twistd.log"
    process = subprocess.Popen(
        [TWISTD, "-n", "--pidfile=", "--logfile", str(log), "mailstack", "--config", str(config)],
        cwd=tmp_path,
    )
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline and process.poll() is None:
            text = log.read_text() if log.exists() else ""
            found = re.search(r"SMTP \(MX\) listening on .*port=(\d+)", text)
            if found and "mailstack ready" in text:
                port = int(found.group(1))
            time.sleep(0.05)
        assert port is not None, log.read_text() if log.exists() else "no log"
        message = b"Subject: via twistd\r\n\r\nhello\r\n"
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("x@remote.example", ["alice@example.org"], message)
        inbox = tmp_path / "mailstack-data" / "mail" / "example.org" / "alice"
        (stored,) = [p.read_bytes() for sub in ("new", "cur") for p in (inbox / sub).iterdir()]
        assert strip_trace(stored) == message
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        assert re.search(r"smtp accepted id=\w+ from=<x@remote.example> to=<alice@example.org> "
                         r"size=\d+ client=127.0.0.1", log.read_text())  # fmt: skip
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
