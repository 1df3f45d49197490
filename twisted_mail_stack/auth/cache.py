"""
A cache of verified logins, like Dovecot's C{auth_cache}, so a returning client skips scrypt.

Why this is safe:

 - No password is stored, nor anything that can be checked offline without the key: an entry
   holds C{HMAC-SHA256(secret, user NUL password)}, where C{secret} is 32 random bytes made
   per process and never written anywhere. A memory dump does not give a faster guessing
   oracle than the scrypt hashes themselves, since the secret is needed as well and dies with
   the process.
 - Only successes are remembered, and only for C{ttl} seconds. A wrong password never matches
   an entry, so it still costs one full scrypt verification, exactly like an unknown user:
   timing tells an attacker nothing new.
 - Each entry also keeps the stored hash string it was verified against; a hit needs the
   user's I{current} hash to be that same string. Changing the password or deleting the
   user therefore takes effect at the very next login.
 - Comparisons use L{hmac.compare_digest}. The size is bounded (least recently used entries
   go first), one entry per user.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Callable

from .passwords import _password_bytes

__all__ = ["LoginCache"]


class LoginCache:
    """
    Remember successful (user, password) checks for C{ttl} seconds, at most C{size} users.

    C{clock} returns the current time in seconds (default L{time.monotonic}); a C{ttl} of 0
    turns the cache off.
    """

    def __init__(
        self,
        ttl: float = 300.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._secret = os.urandom(32)
        # user -> (mac, stored hash verified against, expiry); order: least recently used first
        self._entries: OrderedDict[str, tuple[bytes, str, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.size > 0

    def __len__(self) -> int:
        return len(self._entries)

    def _mac(self, user: str, password: str) -> bytes:
        message = user.encode("utf-8", "surrogatepass") + b"\0" + _password_bytes(password)
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def verified(self, user: str, password: str, encoded: str) -> bool:
        """True if C{password} of C{user} was verified against C{encoded} within C{ttl}."""
        if not self.enabled:
            return False
        entry = self._entries.get(user)
        if entry is None:
            return False
        mac, stored, expiry = entry
        if self._clock() >= expiry or stored != encoded:
            del self._entries[user]
            return False
        if not hmac.compare_digest(mac, self._mac(user, password)):
            return False
        self._entries.move_to_end(user)
        return True

    def remember(self, user: str, password: str, encoded: str) -> None:
        """Record that C{password} of C{user} matched the stored hash C{encoded}."""
        if not self.enabled:
            return
        self._entries[user] = (self._mac(user, password), encoded, self._clock() + self.ttl)
        self._entries.move_to_end(user)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, user: str) -> None:
        """Drop the entry of C{user}, if any."""
        self._entries.pop(user, None)
