"""
The folder tree of one account directory: folders, subscriptions, SPECIAL-USE roles.
Blocking; run in a thread. Changes are made under the account's C{flock}, so processes sharing
the tree do not lose each other's updates.

A directory is a folder once it has C{cur/}; it is made last when creating, so a folder (or an
account) interrupted half-way is not seen and may simply be created again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import (
    AccountExists,
    InvalidMailboxName,
    MailboxExists,
    NoSuchAccount,
    NoSuchMailbox,
)
from ...mutf7 import decode_mutf7, encode_mutf7
from ...names import canonical_name, is_inside
from ...values import DEFAULT_FOLDERS, INBOX, SpecialUse
from .files import fsync_dir
from .layout import (
    ACCOUNT_LOCK_FILE,
    FOLDER_MARKER,
    SCRATCH_DIR,
    SPECIAL_USE_FILE,
    SUBSCRIPTIONS_FILE,
    folder_dirname,
    folder_name,
    folder_path,
)

#: Trees being deleted. In an account root this is not a dot-name, so no Maildir++ reader
#: takes it for a folder; accounts go to the store's scratch directory, which is no domain.
_DELETING = "mailstack-deleting-"


def is_maildir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "cur"))


def _make_maildir(path: str, marker: bool) -> bool:
    """Make the Maildir at C{path}; False if it already existed."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    for sub in ("tmp", "new"):
        os.makedirs(os.path.join(path, sub), mode=0o700, exist_ok=True)
    if marker:
        # Maildir++: an empty "maildirfolder" file marks a folder (read by Dovecot's LDA).
        with open(os.path.join(path, FOLDER_MARKER), "ab"):
            pass
    try:
        os.mkdir(os.path.join(path, "cur"), 0o700)  # last: this makes it a folder
    except FileExistsError:
        return False
    fsync_dir(path)
    return True


@contextmanager
def locked(account: str) -> Iterator[None]:
    """Hold the account's lock (blocking); L{NoSuchAccount} if the account is gone."""
    try:
        fd = os.open(os.path.join(account, ACCOUNT_LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        raise NoSuchAccount(account) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- accounts ------------------------------------------------------------------------


def create_account(account: str) -> None:
    """Make the account's INBOX and default folders; L{AccountExists} if it is there."""
    if is_maildir(account):
        raise AccountExists(account)
    os.makedirs(account, mode=0o700, exist_ok=True)
    with locked(account):
        for name, _ in DEFAULT_FOLDERS:
            _make_maildir(folder_path(account, name), marker=True)
        _update_special_use(account, dict(DEFAULT_FOLDERS))
        _update_subscriptions(account, add={INBOX, *(name for name, _ in DEFAULT_FOLDERS)})
        if not _make_maildir(account, marker=False):
            raise AccountExists(account)


def delete_tree(path: str, scratch: str) -> None:
    """Remove a directory tree: first out of sight by a rename into C{scratch}, then from disk."""
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    gone = os.path.join(scratch, _DELETING + uuid.uuid4().hex)
    os.rename(path, gone)
    shutil.rmtree(gone, ignore_errors=True)


def delete_account(root: str, account: str) -> None:
    if not is_maildir(account):
        raise NoSuchAccount(account)
    delete_tree(account, os.path.join(root, SCRATCH_DIR))
    try:
        os.rmdir(os.path.dirname(account))  # the domain, if that was its last account
    except OSError:
        pass


def list_accounts(root: str) -> list[str]:
    users = []
    for domain in _entries(root):
        for local in _entries(os.path.join(root, domain)):
            if is_maildir(os.path.join(root, domain, local)):
                users.append(f"{local}@{domain}")
    return sorted(users)


def _entries(path: str) -> list[str]:
    try:
        return [e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith(".")]
    except FileNotFoundError:
        return []


# -- folders ----------------------------------------------------------------------------


def list_folders(account: str) -> list[str]:
    """The names of the account's folders other than INBOX, unsorted."""
    try:
        entries = list(os.scandir(account))
    except FileNotFoundError:
        raise NoSuchAccount(account) from None
    names = []
    for entry in entries:
        name = folder_name(entry.name)
        if name is not None and is_maildir(entry.path):
            names.append(name)
    return names


def create_folder(account: str, name: str, role: SpecialUse | None) -> None:
    with locked(account):
        if not _make_maildir(folder_path(account, name), marker=True):
            raise MailboxExists(name)
        _update_special_use(account, {name: role})


def delete_folder(account: str, name: str) -> None:
    """Delete one folder (not its children) with its messages."""
    path = folder_path(account, name)
    with locked(account):
        if not is_maildir(path):
            raise NoSuchMailbox(name)
        delete_tree(path, account)
        _update_special_use(account, {name: None})
        # The subscription stays: RFC 3501 6.3.6 (listed as \NonExistent by LIST-EXTENDED).


def rename_plan(account: str, old: str, new: str) -> list[tuple[str, str]]:
    """
    The (old, new) names that renaming C{old} to C{new} moves: C{old} and its children.
    Checks everything first: L{NoSuchMailbox}, L{MailboxExists}, L{InvalidMailboxName}.
    """
    if is_inside(new, old):
        raise InvalidMailboxName(f"cannot rename {old!r} into itself")
    existing = set(list_folders(account))
    if old not in existing:
        raise NoSuchMailbox(old)
    plan = [(n, new + n[len(old) :]) for n in sorted(existing) if is_inside(n, old)]
    for _, target in plan:
        folder_dirname(target)  # too long?
        if target in existing:
            raise MailboxExists(target)
    return plan


def rename_folders(account: str, old: str, new: str) -> list[tuple[str, str]]:
    """Rename C{old} and its children (their indexes move along: UIDs are kept)."""
    with locked(account):
        plan = rename_plan(account, old, new)
        for src, dst in plan:
            os.rename(folder_path(account, src), folder_path(account, dst))
        fsync_dir(account)
        roles = read_special_use(account)
        changes: dict[str, SpecialUse | None] = {s: None for s, _ in plan}
        changes.update({d: roles.get(s) for s, d in plan})
        _update_special_use(account, changes)
        subscribed = read_subscriptions(account)
        moved = {s for s, _ in plan} & subscribed
        _update_subscriptions(account, add={d for s, d in plan if s in moved}, remove=moved)
        return plan


# -- SPECIAL-USE roles and subscriptions -----------------------------------------------


def read_special_use(account: str) -> dict[str, SpecialUse]:
    try:
        with open(os.path.join(account, SPECIAL_USE_FILE), encoding="utf-8") as f:
            raw = json.load(f)
    except (FileNotFoundError, ValueError):
        return {}
    roles = {}
    for name, role in raw.items() if isinstance(raw, dict) else ():
        try:
            roles[canonical_name(name)] = SpecialUse(role)
        except (ValueError, InvalidMailboxName):
            pass  # not ours to understand; dropped at the next write
    return roles


def _update_special_use(account: str, changes: dict[str, SpecialUse | None]) -> None:
    roles = read_special_use(account)
    for name, role in changes.items():
        if role is None:
            roles.pop(name, None)
        else:
            roles[name] = role
    data = json.dumps({n: r.value for n, r in sorted(roles.items())}, indent=1, ensure_ascii=False)
    _replace_file(account, SPECIAL_USE_FILE, data + "\n")


def read_subscriptions(account: str) -> set[str]:
    """Subscribed names, stored one per line in modified UTF-7 with "/" between levels."""
    try:
        with open(
            os.path.join(account, SUBSCRIPTIONS_FILE), encoding="ascii", errors="replace"
        ) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return set()
    names = set()
    for line in lines:
        try:
            names.add(canonical_name(decode_mutf7(line)))
        except (ValueError, InvalidMailboxName):
            pass  # a foreign header or a name we cannot use
    return names


def set_subscribed(account: str, name: str, subscribed: bool) -> None:
    with locked(account):
        if subscribed:
            _update_subscriptions(account, add={name})
        else:
            _update_subscriptions(account, remove={name})


def _update_subscriptions(account: str, add: set[str] = set(), remove: set[str] = set()) -> None:  # noqa: B006
    names = (read_subscriptions(account) - remove) | add
    _replace_file(
        account, SUBSCRIPTIONS_FILE, "".join(encode_mutf7(n) + "\n" for n in sorted(names))
    )


def _replace_file(account: str, filename: str, text: str) -> None:
    """Replace a small file atomically (write aside, fsync, rename)."""
    path = os.path.join(account, filename)
    scratch = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(scratch, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(scratch, path)
