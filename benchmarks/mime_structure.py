"""
How fast message structure is computed for FETCH (ENVELOPE, BODYSTRUCTURE, sections) and SEARCH.

    python benchmarks/mime_structure.py [--seconds 2]

Prints, per message shape, operations per second (best of three runs) of:

  - analyse: ENVELOPE + BODY + BODYSTRUCTURE + section offsets in one parse;
  - envelope_only: ENVELOPE from the header bytes alone (FETCH ENVELOPE);
  - to_bytes / from_bytes: the cache form written and read back;
  - section: BODY[1] (or BODY[TEXT]) from the cached offsets;
  - search BODY: matches_text over decoded text parts (a needle that is absent: worst case).

Shapes: a 4 KiB single-part text message, and a 1 MiB multipart/mixed (text, HTML, base64
attachment). Never run as a test; figures depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import os
import time
from collections.abc import Callable
from functools import partial

from twisted_mail_stack.mime import (
    MessageStructure,
    SectionSpec,
    analyse,
    envelope_only,
    matches_text,
    section_bytes,
)

HEADER = (
    b"Return-Path: <alice@example.org>\r\n"
    b"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
    b"\tby mail.example.net with ESMTPS id 4Xyz; Mon, 3 Jun 2024 09:15:01 +0200\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from:to:subject:date;\r\n"
    b"\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGhpcyBpcyBub3QgYSByZWFsIHNpZw==\r\n"
    b"From: =?utf-8?q?Alice_M=C3=BCller?= <alice@example.org>\r\n"
    b'To: "Bob B." <bob@example.net>, carol@example.net\r\n'
    b"Cc: team: dave@example.net, erin@example.net;\r\n"
    b"Subject: =?utf-8?b?UXVhcnRhbHNiZXJpY2h0IMO8YmVyYXJiZWl0ZXQ=?=\r\n"
    b"Date: Mon, 3 Jun 2024 09:15:00 +0200\r\n"
    b"Message-ID: <20240603091500.12345@example.org>\r\n"
    b"In-Reply-To: <20240602080000.999@example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
)


def small_message() -> bytes:
    line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
    body = line * ((4096 - len(HEADER)) // len(line))
    return HEADER + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body


def large_multipart() -> bytes:
    line = b"Quarterly figures attached; see the summary below for details.\r\n"
    text = line * 200
    html = b"<p>" + line.replace(b"\r\n", b"</p>\r\n") * 200
    attachment = base64.encodebytes(os.urandom(740_000)).replace(b"\n", b"\r\n")
    return (
        HEADER
        + b'Content-Type: multipart/mixed; boundary="=_outer"\r\n\r\n'
        + b"--=_outer\r\n"
        + b'Content-Type: multipart/alternative; boundary="=_alt"\r\n\r\n'
        + b"--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + text
        + b"\r\n--=_alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + html
        + b"\r\n--=_alt--\r\n"
        + b"\r\n--=_outer\r\n"
        + b'Content-Type: application/pdf; name="report.pdf"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="report.pdf"\r\n\r\n'
        + attachment
        + b"\r\n--=_outer--\r\n"
    )


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second: best of three runs of about C{seconds / 3} each."""
    best = 0.0
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            fn()
            n += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per figure")
    args = parser.parse_args()
    shapes = {
        "4 KiB text": (small_message(), SectionSpec((), "TEXT")),
        "1 MiB multipart": (large_multipart(), SectionSpec((1, 1))),
    }
    print(f"{'message':16} {'size':>9} {'operation':14} {'ops/s':>12}")
    for name, (raw, spec) in shapes.items():
        header = raw[: raw.index(b"\r\n\r\n") + 4]
        cached = analyse(raw)
        blob = cached.to_bytes()
        ops: dict[str, Callable[[], object]] = {
            "analyse": partial(analyse, raw),
            "envelope_only": partial(envelope_only, header),
            "to_bytes": cached.to_bytes,
            "from_bytes": partial(MessageStructure.from_bytes, blob),
            "section": partial(section_bytes, raw, spec, cached.spans),
            "search BODY": partial(matches_text, raw, "absent needle", "BODY"),
        }
        for op, fn in ops.items():
            print(f"{name:16} {len(raw):9d} {op:14} {rate(fn, args.seconds):12,.0f}")
        print(f"{name:16} cache form: {len(blob)} bytes")


if __name__ == "__main__":
    main()
