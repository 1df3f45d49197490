"""
The modified UTF-7 of IMAP mailbox names (RFC 3501 5.1.3), str to str.

Printable US-ASCII other than C{&} stands for itself, C{&} is C{&-}, and every other run of
characters is C{&}, the UTF-16BE bytes in base64 with C{,} for C{/} and no padding, then C{-}.

C{escape} lets a caller put chosen printable characters into base64 too: the Maildir backend
writes a C{.} inside a folder name as C{&AC4-} because C{.} separates Maildir++ folder levels.
"""

from __future__ import annotations

import binascii

__all__ = ["encode_mutf7", "decode_mutf7"]


def _direct(ch: str) -> bool:
    return "\x20" <= ch <= "\x7e"


def _b64encode(run: str) -> str:
    try:
        data = run.encode("utf-16-be")
    except UnicodeEncodeError:
        raise ValueError(f"unpaired surrogate in {run!r}") from None
    return binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=").replace("/", ",")


def encode_mutf7(text: str, *, escape: str = "") -> str:
    """Encode C{text}; characters in C{escape} are base64-encoded even if printable."""
    out: list[str] = []
    run: list[str] = []
    for ch in text:
        if _direct(ch) and ch not in escape:
            if run:
                out.append("&" + _b64encode("".join(run)) + "-")
                run.clear()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append("&" + _b64encode("".join(run)) + "-")
    return "".join(out)


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _b64decode(chunk: str, escaped: str) -> str:
    if not set(chunk) <= _B64:
        raise ValueError(f"bad base64 in &{chunk}-")
    # Modified base64 has no padding (RFC 3501 5.1.3); a length of 1 mod 4 cannot be valid.
    if len(chunk) % 4 == 1:
        raise ValueError(f"truncated base64 in &{chunk}-")
    raw = binascii.a2b_base64(chunk.replace(",", "/") + "=" * (-len(chunk) % 4))
    if len(raw) % 2:
        raise ValueError(f"odd number of UTF-16 bytes in &{chunk}-")
    # The bits that do not make a whole byte must be zero, else the encoding is not canonical.
    if binascii.b2a_base64(raw, newline=False).decode().rstrip("=").replace("/", ",") != chunk:
        raise ValueError(f"non-canonical base64 in &{chunk}-")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"unpaired surrogate in &{chunk}-") from None
    for ch in text:
        # "MUST NOT be used to represent any printing US-ASCII character which can represent
        # itself" (RFC 3501 5.1.3), unless the caller escapes it on purpose.
        if _direct(ch) and ch not in escaped:
            raise ValueError(f"printable ASCII {ch!r} encoded in &{chunk}-")
    return text


def decode_mutf7(text: str, *, escaped: str = "") -> str:
    """
    Decode C{text}, raising L{ValueError} for anything that C{encode_mutf7} (with the same
    C{escaped} characters) could not have produced, except adjacent base64 runs.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "&":
            end = text.find("-", i + 1)
            if end < 0:
                raise ValueError(f"unterminated & in {text!r}")
            chunk = text[i + 1 : end]
            out.append(_b64decode(chunk, escaped) if chunk else "&")
            i = end + 1
        elif _direct(ch) and ch not in escaped:
            out.append(ch)
            i += 1
        else:
            raise ValueError(f"character {ch!r} must be encoded in {text!r}")
    return "".join(out)
