"""
The password file, C{<data>/passwd}: one C{address:hash} line per user.

Blank lines and C{#} lines are comments and survive rewrites. The file is owner-only (0600)
and replaced atomically. A running server notices when another process (the C{mailstack user}
command) rewrote it and re-reads it, so changes need no restart.
"""

from __future__ import annotations

import unicodedata

from ..errors import NoSuchUser, UserExists
from ..values import Address
from ._files import EntryFile
from .passwords import hash_password

__all__ = ["UserDB", "canonical_user", "check_name_text"]


def check_name_text(text: str, what: str) -> None:
    """Raise L{ValueError} if C{text} is empty or holds a colon, whitespace or control character."""
    if not text:
        raise ValueError(f"empty {what}")
    for ch in text:
        if ch == ":":
            raise ValueError(f"{what} {text!r} contains ':'")
        if ch.isspace():
            raise ValueError(f"{what} {text!r} contains whitespace")
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            raise ValueError(f"{what} {text!r} contains a control character")


def canonical_user(name: str) -> str:
    """
    Return the account name for C{name}: its L{Address.key}, local part lower-cased and domain
    normalised (C{Alice@Example.ORG.} -> C{alice@example.org}).

    Raises L{ValueError} naming the problem: an empty local part or domain, no C{@}, a colon,
    whitespace or control characters, a path separator, or a local part C{.} or C{..}
    (account names may become directory names in a backend).
    """
    check_name_text(name, "user name")
    local, at, domain = name.rpartition("@")
    if not at:
        raise ValueError(f"user name {name!r} has no '@domain'")
    if not local:
        raise ValueError(f"user name {name!r} has an empty local part")
    if "@" in local:
        raise ValueError(f"user name {name!r} has more than one '@'")
    if "/" in name or "\\" in name or local in (".", ".."):
        raise ValueError(f"user name {name!r} has a path separator or dot name")
    try:
        return Address(local, domain).key
    except ValueError as e:
        raise ValueError(f"user name {name!r}: {e}") from None


class UserDB(EntryFile[str]):
    """
    The users and their password hashes, backed by a file, or only in memory when C{path}
    is None. Call L{save} after changes.
    """

    mode = 0o600
    header = "# mailstack users, address:scrypt-hash. Edit with `mailstack user`."

    def _parse_entry(self, line: str) -> tuple[str, str]:
        user, colon, hashed = line.partition(":")
        if not colon:
            raise ValueError("expected 'address:hash'")
        return canonical_user(user.strip()), hashed.strip()

    def _format_entry(self, key: str, value: str) -> str:
        return f"{key}:{value}"

    def users(self) -> list[str]:
        """Every account name, in file order."""
        return list(self._current())

    def get_hash(self, user: str) -> str | None:
        """The stored hash of C{user} (any spelling of its address), or None if unknown."""
        try:
            return self._current().get(canonical_user(user))
        except ValueError:
            return None

    def __contains__(self, user: str) -> bool:
        return self.get_hash(user) is not None

    def add(self, user: str, password: str) -> str:
        """
        Add a user and return its account name. Raises L{UserExists}, or L{ValueError} for a
        bad name or an empty password.
        """
        name = canonical_user(user)
        if name in self._current():
            raise UserExists(f"user {name} exists")
        self._set(name, _hash(password))
        return name

    def set_password(self, user: str, password: str) -> None:
        """Change a user's password. Raises L{NoSuchUser}, or L{ValueError} for an empty one."""
        self._set(self._existing(user), _hash(password))

    def remove(self, user: str) -> None:
        """Remove a user (not their mail). Raises L{NoSuchUser}."""
        self._delete(self._existing(user))

    def _existing(self, user: str) -> str:
        try:
            name = canonical_user(user)
        except ValueError as e:
            raise NoSuchUser(str(e)) from None
        if name not in self._current():
            raise NoSuchUser(f"no user {name}")
        return name


def _hash(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return hash_password(password)
