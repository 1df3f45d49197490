#!/usr/bin/env python3
"""
Dovecot's imaptest in stress mode against our server and Dovecot, one after the other in the
same run, on the same small INBOX: login-to-logout cycles per second and the errors imaptest
reports. Prints figures; asserts nothing about time.

    sudo flock /tmp/bench.lock /tmp/devvenv/bin/python benchmarks/imap/stress.py \\
        --imaptest /path/to/imaptest [--secs 30 --clients 10]

imaptest is built by hand outside the project (github dovecot/imaptest against Debian's
dovecot-dev); it is run with LD_LIBRARY_PATH=/usr/lib/dovecot. Needs root (Dovecot's mail
processes run as uid 5000) and Debian's dovecot-imapd.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import PASSWORD, Dovecot, Ours, chown_tree, fill, message  # noqa: E402


def mbox(path: Path, count: int, size: int) -> None:
    """The messages imaptest APPENDs, as an mbox."""
    with open(path, "wb") as f:
        for i in range(count):
            f.write(b"From bench@bench.test Thu Jan  1 00:00:00 2026\n")
            # Own Message-IDs: imaptest tells messages apart by them and checks they never change.
            data = message(i + 1, size).replace(b"<bench.", b"<append.", 1)
            f.write(data.replace(b"\nFrom ", b"\n>From ") + b"\n")


def stress(a: argparse.Namespace, port: int, user: str, box: Path) -> dict[str, object]:
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    args = [a.imaptest, "host=127.0.0.1", f"port={port}", f"user={user}", f"pass={PASSWORD}",
            f"mbox={box}", f"secs={a.secs}", f"clients={a.clients}"]  # fmt: skip
    done = subprocess.run(
        args, env=env, capture_output=True, timeout=a.secs + 60, stdin=subprocess.DEVNULL
    )
    out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    totals = out.rpartition("Totals:")[2].splitlines()
    header = next((line.split() for line in totals if line.startswith("Logi")), [])
    numbers = next((line.split() for line in totals if re.fullmatch(r"[\s\d/]+", line)), [])
    counts = dict(zip(header, (int(n) for n in numbers if n.isdigit()), strict=False))
    if a.verbose:
        print(out[out.rfind("Totals:") :])
    errors = [line for line in out.splitlines() if re.search(r"error|Error|BAD|panic", line)]
    return {
        "logouts": counts.get("Logo", 0),
        "cycles_per_s": round(counts.get("Logo", 0) / a.secs, 1),
        "errors": len(errors),
        "first_errors": errors[:3],
        "exit": done.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--imaptest", required=True)
    ap.add_argument("--secs", type=int, default=30)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--messages", type=int, default=0, help="INBOX size at the start")
    ap.add_argument("--port", type=int, default=14700)
    ap.add_argument("--work", default="/tmp/imap-stress")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--twistd", default=shutil.which("twistd") or "twistd")
    a = ap.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    box = work / "append.mbox"
    mbox(box, 50, 4096)
    results = {}
    for server in (Ours(work, a.port, a.twistd), Dovecot(work, a.port + 2)):
        fill([server.maildir()], a.messages, 4096)
        if isinstance(server, Dovecot):
            chown_tree(server.dir / "home", (5000, 5000))
        try:
            server.start(30)
            results[server.name] = stress(a, server.port, server.user, box)
        finally:
            server.stop()
        print(server.name, results[server.name], flush=True)
    ours, dovecot = results["ours"], results["dovecot"]
    ratio = float(ours["cycles_per_s"]) / max(float(dovecot["cycles_per_s"]), 1e-9)  # type: ignore[arg-type]
    print(f"\nimaptest stress, {a.clients} clients, {a.secs} s, INBOX of {a.messages}:")
    print(f"ours {ours['cycles_per_s']} cycles/s ({ours['errors']} error lines), "
          f"Dovecot {dovecot['cycles_per_s']} ({dovecot['errors']}): {ratio:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
