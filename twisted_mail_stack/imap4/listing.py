"""
LIST and LSUB over an account's folder tree (RFC 3501 6.3.8, 6.3.9; RFC 5258 LIST-EXTENDED;
RFC 3348 CHILDREN; RFC 6154 SPECIAL-USE). Pure functions from L{MailboxInfo}s to response bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..values import DELIMITER, INBOX, MailboxInfo
from . import _format as fmt
from ._commands import List

__all__ = ["list_responses", "lsub_responses", "pattern_matcher"]


def pattern_matcher(reference: str, pattern: str) -> re.Pattern[str]:
    """
    A regex for C{reference + pattern}: C{*} matches anything, C{%} anything but the
    delimiter (RFC 3501 6.3.8). A leading C{INBOX} matches in any case, as the name does.
    """
    full = reference + pattern
    if full[:5].upper() == INBOX and (len(full) == 5 or full[5] in DELIMITER + "%*"):
        full = INBOX + full[5:]
    parts = []
    for char in full:
        if char == "*":
            parts.append(".*")
        elif char == "%":
            parts.append("[^" + re.escape(DELIMITER) + "]*")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _parents(names: Sequence[str]) -> set[str]:
    out = set()
    for name in names:
        parts = name.split(DELIMITER)
        for i in range(1, len(parts)):
            out.add(DELIMITER.join(parts[:i]))
    return out


def _root(reference: str) -> bytes:
    # RFC 3501 6.3.8: LIST "" "" gives the delimiter and the root of the reference.
    root = reference.split(DELIMITER, 1)[0] + DELIMITER if DELIMITER in reference else ""
    return fmt.list_response(b"LIST", ["\\Noselect"], DELIMITER, root)


def list_responses(infos: Sequence[MailboxInfo], command: List) -> list[bytes]:
    """The untagged LIST responses for C{command}."""
    if not command.extended and command.patterns == ("",):
        return [_root(command.reference)]
    matchers = [pattern_matcher(command.reference, p) for p in command.patterns if p]
    selection, returns = command.selection, command.returns
    parents = _parents([i.name for i in infos])
    # RFC 5258 3.5 (CHILDINFO): a parent is reported for a subscribed descendant that the
    # patterns do not match themselves; a matching one is listed on its own instead.
    subscribed_parents = _parents(
        [i.name for i in infos if i.subscribed and not any(m.fullmatch(i.name) for m in matchers)]
    )
    want_subscribed = "SUBSCRIBED" in selection or "SUBSCRIBED" in returns
    out = []
    for info in infos:
        if not any(m.fullmatch(info.name) for m in matchers):
            continue
        childinfo = "RECURSIVEMATCH" in selection and info.name in subscribed_parents
        if "SUBSCRIBED" in selection and not (info.subscribed or childinfo):
            continue
        if "SPECIAL-USE" in selection and info.special_use is None:
            continue
        ghost = not info.selectable and info.name not in parents
        if ghost and "SUBSCRIBED" not in selection:
            continue  # a subscription kept for a folder that is gone: not a mailbox
        attributes = []
        if ghost:
            attributes.append("\\NonExistent")  # RFC 5258 3.4
        elif not info.selectable:
            attributes.append("\\Noselect")
        attributes.append("\\HasChildren" if info.name in parents else "\\HasNoChildren")
        if info.special_use is not None:
            attributes.append(info.special_use.value)
        if want_subscribed and info.subscribed:
            attributes.append("\\Subscribed")
        line = fmt.list_response(b"LIST", attributes, DELIMITER, info.name)
        if childinfo:
            line = line[:-2] + b' ("CHILDINFO" ("SUBSCRIBED"))\r\n'  # RFC 5258 3.5
        out.append(line)
    return out


def lsub_responses(infos: Sequence[MailboxInfo], reference: str, pattern: str) -> list[bytes]:
    """
    The untagged LSUB responses: subscribed names that match, plus, for a C{%} that stops at
    a parent of a subscribed name, that parent with C{\\Noselect} (RFC 3501 6.3.9).
    """
    if not pattern:
        return []
    matcher = pattern_matcher(reference, pattern)
    subscribed = [i.name for i in infos if i.subscribed]
    chosen = set(subscribed)
    out: list[tuple[str, list[str]]] = []
    seen = set()
    for name in subscribed:
        if matcher.fullmatch(name):
            out.append((name, []))
            seen.add(name)
    unmatched = [n for n in subscribed if n not in seen]
    for parent in sorted(_parents(unmatched) - chosen):
        if parent not in seen and matcher.fullmatch(parent):
            out.append((parent, ["\\Noselect"]))
            seen.add(parent)
    return [fmt.list_response(b"LSUB", attrs, DELIMITER, name) for name, attrs in out]
