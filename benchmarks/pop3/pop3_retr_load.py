#!/usr/bin/env python3
"""
POP3 retrieval load: C concurrent sessions each log in (USER/PASS), optionally STAT, UIDL, RETR
every message in order, QUIT. Nothing is deleted. Prints one JSON line: messages/s, MB/s,
login+UIDL time and RETR latency. Standard library only; bounded by --max-seconds.

  pop3_retr_load.py --port 2110 --user 'bench{i}@bench.test' --password benchpass --conc 4

C{{i}} in --user is replaced by the session number (1..C), so each session may use its own
maildrop (POP3 locks a maildrop for one session at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time


class PopError(Exception):
    pass


async def reply(
    reader: asyncio.StreamReader, timeout: float, multi: bool = False
) -> tuple[bytes, bytes]:
    # One timer per reply (asyncio.timeout), not a task per read (wait_for): the client's own
    # CPU is taken from the server under test on a small machine.
    async with asyncio.timeout(timeout):
        line = await reader.readline()
        if not line.startswith(b"+OK"):
            raise PopError(line.strip()[:200].decode(errors="replace") or "connection closed")
        if not multi:
            return line, b""
        first = await reader.readline()
        if first == b".\r\n":
            return line, b""
        return line, first + await reader.readuntil(b"\r\n.\r\n")


async def session(a: argparse.Namespace, i: int, st: dict, deadline: float) -> None:
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(a.host, a.port, limit=1 << 26)
    await reply(reader, a.timeout)
    for command in (f"USER {a.user.format(i=i)}\r\n", f"PASS {a.password}\r\n"):
        writer.write(command.encode())
        await reply(reader, a.timeout)
    if a.stat:
        writer.write(b"STAT\r\n")
        await reply(reader, a.timeout)
    writer.write(b"UIDL\r\n")
    _, listing = await reply(reader, a.timeout, multi=True)
    count = listing.count(b"\r\n") - 1 if listing else 0
    st["login_uidl"].append(time.perf_counter() - t0)
    for n in range(1, count + 1):
        if time.perf_counter() > deadline:
            st["cut_short"] = True
            break
        t = time.perf_counter()
        writer.write(b"RETR %d\r\n" % n)
        _, body = await reply(reader, a.timeout, multi=True)
        st["retr"].append(time.perf_counter() - t)
        st["bytes"] += len(body)
    writer.write(b"QUIT\r\n")
    await reply(reader, a.timeout)
    writer.close()


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(1000 * v[min(len(v) - 1, int(p / 100 * len(v)))], 3)


async def main(a: argparse.Namespace) -> None:
    st: dict = {"login_uidl": [], "retr": [], "bytes": 0, "errors": [], "cut_short": False}
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    deadline = t0 + a.max_seconds

    async def run(i: int) -> None:
        try:
            await session(a, i, st, deadline)
        except (TimeoutError, PopError, OSError, asyncio.IncompleteReadError) as e:
            st["errors"].append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(run(i) for i in range(1, a.conc + 1)))
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    print(json.dumps({
        "label": a.label, "conc": a.conc, "retrieved": len(st["retr"]), "errors": st["errors"][:3],
        "cut_short": st["cut_short"], "wall_s": round(wall, 3),
        "msgs_per_s": round(len(st["retr"]) / wall, 1), "MB_per_s": round(st["bytes"] / wall / 1e6, 2),
        "login_uidl_ms_max": pct(st["login_uidl"], 100), "retr_p50_ms": pct(st["retr"], 50),
        "retr_p99_ms": pct(st["retr"], 99), "client_cpu_pct": round(100 * cpu / wall, 1),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=110)
    ap.add_argument("--user", default="bench")
    ap.add_argument("--password", default="benchpass")
    ap.add_argument("--conc", type=int, default=1)
    ap.add_argument("--stat", action="store_true", help="send STAT after login (sizes of all)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--label", default="")
    asyncio.run(main(ap.parse_args()))
