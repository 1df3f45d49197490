#!/usr/bin/env python3
"""
SMTP accept benchmark: twisted-mail-stack next to Postfix, aiosmtpd and `twistd mail`, in one run.

For each server, size and concurrency: messages/s with Postfix's C client smtp-source (the load
that keeps the client out of the way), then p50/p99 latency (MAIL FROM sent -> final 250) with
the Python load tool. Then the peak memory of twisted-mail-stack while 64 clients each send a
10 MiB message. Prints a markdown table and the ratios of the 4 KiB x 16 connections run.
Figures only: this is never a test. Needs root (the anchors), postfix (smtp-source) and a venv
with twisted and aiosmtpd for the anchors (/tmp/anchorenv, see the bench README).

  sudo benchmarks/smtp/run.py [--bench /work/shared/bench] [--servers mailstack,postfix,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAILSTACK_DIR = Path("/tmp/bench-mailstack")

#: name -> (start script, env, port, Maildir of bench@bench.test)
SERVERS = {
    "mailstack": (str(HERE / "mailstack.sh"), {"PORT": "2530"}, 2530,
                  MAILSTACK_DIR / "data/mail/bench.test/bench"),
    "postfix": ("anchors/postfix.sh", {"PORT": "2545"}, 2545, Path("/tmp/bench-postfix/mail/bench")),
    "aiosmtpd": ("anchors/aiosmtpd.sh", {"PORT": "2526"}, 2526, Path("/tmp/bench-aiosmtpd/Maildir")),
    "twistd": ("anchors/twistd-mail.sh", {"SMTP_PORT": "2527", "POP3_PORT": "1111"}, 2527,
               Path("/tmp/bench-twistd/bench.test/bench")),
}  # fmt: skip


def control(bench: Path, name: str, action: str) -> None:
    script, env, _, _ = SERVERS[name]
    path = script if script.startswith("/") else str(bench / script)
    subprocess.run([path, action], env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def load(bench: Path, tool: str, port: int, count: int, size: int, conc: int) -> dict:
    argv = [sys.executable, str(bench / "load" / tool), "--port", str(port), "--count", str(count),
            "--size", str(size), "--conc", str(conc), "--max-seconds", "300", "--timeout", "120",
            "--json"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, cwd=bench / "load", timeout=400)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (out.stdout + out.stderr)[-300:]}


def count_maildir(path: Path) -> int:
    return sum(len(os.listdir(path / sub)) for sub in ("new", "cur") if (path / sub).is_dir())


def wait_maildir(path: Path, want: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while count_maildir(path) < want and time.monotonic() < deadline:
        time.sleep(0.1)


def pid_of_mailstack() -> int:
    return int((MAILSTACK_DIR / "twistd.pid").read_text())


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_run(bench: Path, clients: int, size: int) -> dict:
    """Peak RSS of twisted-mail-stack while C{clients} each send one message of C{size}."""
    control(bench, "mailstack", "start")
    try:
        pid = pid_of_mailstack()
        start_rss = rss_mb(pid, "VmRSS")
        peak = [start_rss]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(pid, "VmRSS"))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        result = load(bench, "smtp_load.py", 2530, clients, size, clients)
        done.set()
        sampler.join()
        return {"clients": clients, "size": size, "start_rss_mb": round(start_rss, 1),
                "peak_rss_mb": round(max(peak[0], rss_mb(pid, "VmHWM")), 1),
                "msgs": result.get("count"), "errors": result.get("errors"),
                "msgs_per_s": result.get("msgs_per_s")}  # fmt: skip
    finally:
        control(bench, "mailstack", "stop")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("/work/shared/bench"))
    ap.add_argument("--servers", default="mailstack,postfix,aiosmtpd,twistd")
    ap.add_argument("--sizes", default="4096,1048576")
    ap.add_argument("--concs", default="1,16,64")
    ap.add_argument("--count-small", type=int, default=2000, help="messages per 4 KiB run")
    ap.add_argument("--count-large", type=int, default=200, help="messages per 1 MiB run")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--json", type=Path, help="also append every result here as JSON lines")
    a = ap.parse_args()

    rows = []
    for name in a.servers.split(","):
        _, _, port, maildir = SERVERS[name]
        control(a.bench, name, "start")
        try:
            for size in map(int, a.sizes.split(",")):
                count = a.count_small if size <= 65536 else a.count_large
                for conc in map(int, a.concs.split(",")):
                    have = count_maildir(maildir)
                    source = load(a.bench, "smtp_source.py", port, count, size, conc)
                    wait_maildir(maildir, have + count)
                    have = count_maildir(maildir)
                    latency = load(a.bench, "smtp_load.py", port, max(count // 2, conc), size, conc)
                    wait_maildir(maildir, have + max(count // 2, conc))
                    row = {"server": name, "size": size, "conc": conc,
                           "msgs_per_s": source.get("msgs_per_s"),
                           "busy_pct": source.get("machine_busy_pct"),
                           "p50_ms": latency.get("latency", {}).get("p50_ms"),
                           "p99_ms": latency.get("latency", {}).get("p99_ms"),
                           "errors": source.get("error") or latency.get("errors") or None}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            control(a.bench, name, "stop")

    print("| server | size | conc | msg/s (smtp-source) | p50 ms | p99 ms | machine busy % |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['size']} | {r['conc']} | {r['msgs_per_s']} | {r['p50_ms']} "
              f"| {r['p99_ms']} | {r['busy_pct']} |")  # fmt: skip

    def rate(server: str) -> float | None:
        for r in rows:
            if (r["server"], r["size"], r["conc"]) == (server, 4096, 16):
                return r["msgs_per_s"]  # type: ignore[no-any-return]
        return None

    ours = rate("mailstack")
    for peer in ("postfix", "twistd", "aiosmtpd"):
        theirs = rate(peer)
        if ours and theirs:
            print(f"4 KiB x 16: mailstack / {peer} = {ours / theirs:.2f}")

    if not a.no_memory:
        memory = memory_run(a.bench, 64, 10 * 1024 * 1024)
        print(f"memory, 64 clients x 10 MiB: {json.dumps(memory)}")
        rows.append({"memory": memory})
    if a.json:
        with a.json.open("a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
