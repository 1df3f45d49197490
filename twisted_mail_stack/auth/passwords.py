"""
Salted, memory-hard password hashes (scrypt, RFC 7914) in a self-describing string.

The format follows the PHC string format: C{$scrypt$ln=14,r=8,p=1$<salt>$<key>}, salt and key
in unpadded standard base64. The cost parameters travel with each hash, so they can be raised
later while older hashes still verify (see L{needs_rehash}).

Hashing is slow on purpose (tens of milliseconds): call these functions in a thread pool, never
in the reactor thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata

__all__ = ["DUMMY_HASH", "hash_password", "verify_password", "verify_dummy", "needs_rehash"]

_SCHEME = "scrypt"
_LN, _R, _P = 14, 8, 1  # n = 2**14: about 16 MiB and 50 ms per hash
_SALT_BYTES = 16
_KEY_BYTES = 32

# Bounds on parameters read from a hash, so a tampered file cannot make a login allocate
# gigabytes or spin for minutes.
_MAX_LN, _MAX_R, _MAX_P = 20, 32, 16
_MAX_KEY_BYTES = 128

#: A valid hash of a random password nobody knows; verifying against it costs what a real
#: verification costs (used for unknown users so that they take as long as known ones).
DUMMY_HASH = (
    "$scrypt$ln=14,r=8,p=1$bTG30ef9Y6512uBFu0RQJg$6GDjPEA3o658cvJjOyEpxeOslwP9OXGlfAv5HDv/hNo"
)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    """Decode unpadded base64; raise L{ValueError} for anything else."""
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"bad base64: {e}") from None


def _password_bytes(password: str) -> bytes:
    # RFC 8265 4.2 (OpaqueString): NFC, so the same password typed on systems that compose
    # characters differently still matches. Lone surrogates are kept rather than rejected.
    return unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int, length: int) -> bytes:
    n = 2**ln
    return hashlib.scrypt(
        _password_bytes(password),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=132 * n * r * p + 2**20,  # 128*n*r*p is scrypt's need; the rest is headroom
        dklen=length,
    )


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """Split a hash into (ln, r, p, salt, key); raise L{ValueError} if it is malformed."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != _SCHEME:
        raise ValueError("not a $scrypt$ hash")
    params: dict[str, int] = {}
    for item in parts[2].split(","):
        name, eq, value = item.partition("=")
        if not eq or name in params or not value.isascii() or not value.isdigit():
            raise ValueError(f"bad parameter {item!r}")
        params[name] = int(value)
    if set(params) != {"ln", "r", "p"}:
        raise ValueError("parameters must be ln, r and p")
    ln, r, p = params["ln"], params["r"], params["p"]
    if not (1 <= ln <= _MAX_LN and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise ValueError("parameters out of range")
    salt, key = _b64decode(parts[3]), _b64decode(parts[4])
    if not salt or not 16 <= len(key) <= _MAX_KEY_BYTES:
        raise ValueError("bad salt or key length")
    return ln, r, p, salt, key


def hash_password(password: str) -> str:
    """Hash C{password} with a fresh random salt and the current cost parameters."""
    salt = os.urandom(_SALT_BYTES)
    key = _scrypt(password, salt, _LN, _R, _P, _KEY_BYTES)
    return f"${_SCHEME}$ln={_LN},r={_R},p={_P}${_b64encode(salt)}${_b64encode(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """
    True if C{password} matches the hash C{encoded}.

    The comparison runs in constant time. A malformed hash gives C{False}, never an exception.
    """
    try:
        ln, r, p, salt, key = _parse(encoded)
        candidate = _scrypt(password, salt, ln, r, p, len(key))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, key)


def verify_dummy(password: str) -> bool:
    """Do the work of one verification and return C{False}: the path for an unknown user."""
    verify_password(password, DUMMY_HASH)
    return False


def needs_rehash(encoded: str) -> bool:
    """True if C{encoded} is malformed or uses other parameters than L{hash_password} would."""
    try:
        ln, r, p, salt, key = _parse(encoded)
    except ValueError:
        return True
    return (ln, r, p, len(salt), len(key)) != (_LN, _R, _P, _SALT_BYTES, _KEY_BYTES)
