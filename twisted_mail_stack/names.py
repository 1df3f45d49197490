"""
Mailbox-name rules shared by every backend (see the rules in L{twisted_mail_stack.interfaces}).

Pure functions; no I/O.
"""

from __future__ import annotations

from .errors import InvalidMailboxName
from .values import DELIMITER, INBOX


def canonical_name(name: str) -> str:
    """
    Validate a mailbox name and return it with INBOX spelled C{"INBOX"}.

    Raises L{InvalidMailboxName} for an empty name or component, a C{.} or C{..} component,
    NUL, control characters (C0, DEL, C1) or unpaired surrogates.
    """
    if not isinstance(name, str) or not name:
        raise InvalidMailboxName("empty mailbox name")
    parts = name.split(DELIMITER)
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidMailboxName(f"bad component {part!r} in mailbox name {name!r}")
        for ch in part:
            code = ord(ch)
            if code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
                raise InvalidMailboxName(f"control character in mailbox name {name!r}")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return DELIMITER.join(parts)


def is_inbox(name: str) -> bool:
    """True if C{name} (already canonical) is the INBOX itself."""
    return name == INBOX


def parents(name: str) -> list[str]:
    """The names above C{name}, outermost first: C{parents("a/b/c") == ["a", "a/b"]}."""
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def is_inside(name: str, ancestor: str) -> bool:
    """True if C{name} is C{ancestor} or one of its descendants."""
    return name == ancestor or name.startswith(ancestor + DELIMITER)
