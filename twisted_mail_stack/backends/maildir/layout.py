"""
Where things live in a Maildir++ tree, and what file names mean. Pure functions; no I/O.

  - Account C{local@domain}: C{<root>/<domain>/<local>/}, whose C{cur new tmp} are INBOX.
  - Folder C{a/b}: directory C{.a.b} in the account root (Maildir++), each component in modified
    UTF-7 (as Dovecot and Courier store them) with a literal C{.} written C{&AC4-}.
  - Message: C{<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,I=<uidvalidity>.<uid>:2,<flags>}
    (Dovecot's form, plus the UID it was delivered under, see L{tagged}), in C{new/} without
    the C{:2,} part or in C{cur/} with it. Any foreign name is accepted.
"""

from __future__ import annotations

import os
import re
import socket
import time
from itertools import count

from attrs import frozen

from ...errors import InvalidMailboxName
from ...mutf7 import decode_mutf7, encode_mutf7
from ...names import canonical_name, is_inbox
from ...values import DELIMITER, Flag

#: Our own files. The index and its locks are in every folder directory (INBOX: account root).
INDEX_FILE = "mailstack-index.sqlite"
INDEX_LOCK_FILE = "mailstack-index.lock"
POP3_LOCK_FILE = "mailstack-pop3.lock"
#: In the account root: RFC 6154 roles, as JSON {name: role}.
SPECIAL_USE_FILE = "mailstack-special-use"
#: In the account root: subscribed names, one per line (Courier/Dovecot), modified UTF-7.
SUBSCRIPTIONS_FILE = "subscriptions"
#: In the account root: the last UIDVALIDITY given to a folder of the account.
UIDVALIDITY_FILE = "mailstack-uidvalidity"
#: In the account root: serialises folder creation, deletion, renames and the two files above.
ACCOUNT_LOCK_FILE = "mailstack-account.lock"
#: Marks a Maildir++ folder directory (Courier's maildirmake writes it; Dovecot's LDA reads it).
FOLDER_MARKER = "maildirfolder"
#: In the store root: scratch space for building and deleting whole accounts atomically.
SCRATCH_DIR = ".mailstack-tmp"

_NAME_MAX = 255  # bytes in one directory entry on every common filesystem


# -- accounts -------------------------------------------------------------------


def _bad_part(part: str) -> bool:
    return (
        not part
        or part.startswith(".")
        or "/" in part
        or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in part)
        or len(part.encode("utf-8")) > _NAME_MAX
    )


def account_dir(root: str, user: str) -> str:
    """
    Return C{<root>/<domain>/<local>} for C{user}.

    Raises L{ValueError} if either part is empty, starts with C{.} (so never C{.} or C{..}), or
    holds C{/}, NUL or a control character: no account name can reach outside C{root}.
    """
    local, at, domain = user.rpartition("@")
    if not at or _bad_part(local) or _bad_part(domain):
        raise ValueError(f"invalid account name {user!r}")
    return os.path.join(root, domain, local)


# -- folders ----------------------------------------------------------------------


def folder_dirname(name: str) -> str:
    """
    The directory of folder C{name} relative to the account root: C{""} for INBOX.

    Raises L{InvalidMailboxName} for an invalid or too long name.
    """
    name = canonical_name(name)
    if is_inbox(name):
        return ""
    encoded = "." + ".".join(encode_mutf7(p, escape=".") for p in name.split(DELIMITER))
    if len(encoded) > _NAME_MAX:
        raise InvalidMailboxName(f"mailbox name too long: {name!r}")
    return encoded


def folder_path(account: str, name: str) -> str:
    """The directory of folder C{name} in account directory C{account} (INBOX: C{account})."""
    dirname = folder_dirname(name)
    return os.path.join(account, dirname) if dirname else account


def folder_name(dirname: str) -> str | None:
    """
    The folder that directory C{dirname} holds, or None if it is not one of ours.

    Only names that L{folder_dirname} maps back to C{dirname} count, so a foreign directory
    such as C{.INBOX} or C{.a..b} is ignored rather than aliased.
    """
    if not dirname.startswith(".") or dirname in (".", ".."):
        return None
    try:
        name = DELIMITER.join(decode_mutf7(p, escaped=".") for p in dirname[1:].split("."))
        if folder_dirname(name) != dirname:
            return None
    except (ValueError, InvalidMailboxName):
        return None
    return name


# -- message files ------------------------------------------------------------------

#: Maildir info letters (cr.yp.to/proto/maildir.html) for the IMAP system flags. "P" (passed)
#: has no IMAP flag; it and any other letter (Dovecot keywords a-z) are kept as found.
LETTERS = {
    "D": Flag.DRAFT,
    "F": Flag.FLAGGED,
    "R": Flag.ANSWERED,
    "S": Flag.SEEN,
    "T": Flag.DELETED,
}
_FLAG_LETTER = {flag: letter for letter, flag in LETTERS.items()}

_INFO = ":2,"
# mbsync (isync) without AltMap renames files to add ",U=<uid>"; leaving it out of the key
# makes that rename look like what it is, not an expunge plus a new message.
_MBSYNC_UID = re.compile(r",U=\d+")
_SIZE = re.compile(r",S=(\d+)")
# Our own field (no other Maildir program uses "I"): the UIDVALIDITY and UID of a delivery.
_UID_TAG = re.compile(r",I=(\d{1,10})\.(\d{1,10})(?=[,:]|$)")


@frozen
class MessageName:
    """What a message file name says."""

    #: Stable identity: the name before ":" (Maildir), used to find a file renamed by others.
    key: str
    #: From Dovecot's ",S=<size>" field, or None.
    size: int | None
    #: The info letters after ":2,", or "" (files in new/ have none).
    letters: str
    #: From our ",I=<uidvalidity>.<uid>" field (see L{tagged}), or None.
    uid_tag: tuple[int, int] | None = None


def key_of(filename: str) -> str:
    """The stable part of a message file name (see L{MessageName.key})."""
    base = filename.partition(":")[0]
    return _MBSYNC_UID.sub("", base) if ",U=" in base else base


def parse_name(filename: str) -> MessageName:
    base, sep, info = filename.partition(":")
    size = _SIZE.search(base)
    letters = info[2:] if sep and info.startswith("2,") else ""
    tag = _UID_TAG.search(base) if ",I=" in base else None
    return MessageName(
        key_of(base),
        int(size.group(1)) if size else None,
        letters,
        (int(tag.group(1)), int(tag.group(2))) if tag else None,
    )


def flags_of(letters: str) -> frozenset[str]:
    """The system flags that info letters stand for."""
    return frozenset(LETTERS[c] for c in letters if c in LETTERS)


def with_flags(subpath: str, flags: frozenset[str]) -> str:
    """
    The path (C{cur/...} or C{new/...}) of the same message with C{flags}' system letters.

    Letters we do not map are kept; the letters are sorted (Maildir requires ASCII order). A
    message that has no letters stays where it is; one that gets letters moves to C{cur/}.
    """
    directory, filename = subpath.split("/", 1)
    base, sep, info = filename.partition(":")
    kept = info[2:] if sep and info.startswith("2,") else ""
    letters = {c for c in kept if c not in LETTERS} | {
        _FLAG_LETTER[f] for f in flags if f in _FLAG_LETTER
    }
    if not letters and directory == "new":
        return subpath
    return f"cur/{base}{_INFO}{''.join(sorted(letters))}"


_counter = count(1)
_host = socket.gethostname().replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


def unique_name() -> str:
    """A name no other delivery uses (Maildir uniqueness rule, in Dovecot's layout)."""
    now = time.time_ns() // 1000
    return f"{now // 1_000_000}.M{now % 1_000_000}P{os.getpid()}Q{next(_counter)}.{_host}"


def sized(name: str, size: int) -> str:
    """Add Dovecot's ",S=<size>" so that listing a folder needs no stat for sizes."""
    return f"{name},S={size}"


def tagged(name: str, uidvalidity: int, uid: int) -> str:
    """
    Add ",I=<uidvalidity>.<uid>": the UID a delivery was given before its index row was
    committed, so that a file whose row did not survive a crash keeps it (see L{scan}).
    """
    return f"{name},I={uidvalidity}.{uid}"
