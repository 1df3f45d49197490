"""
Local delivery into INBOXes: one message to several INBOXes, all or nothing; or one message
prepared in an INBOX's C{tmp/}, then placed together with others (group commit, see
L{commit}). Blocking; run in a thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import NoSuchAccount
from ...interfaces import IMessageSource
from ...values import Change, MessageInfo
from .files import link_tmp, unlink_quietly, write_tmp
from .folder import Folder, Outcome, View
from .tree import is_maildir


def deliver(
    folders: Sequence[Folder], views: Sequence[View], source: IMessageSource, date_us: int
) -> list[Outcome[list[MessageInfo]]]:
    """
    Put the message into every folder, each copy durable before its index row is committed.

    Every copy is first written and fsynced into its folder's C{tmp/} (one written, the others
    hard-linked to it), so the likely failures (disk full, I/O errors) come before any copy is
    visible; if placing one then fails, the copies already placed are removed again.
    """
    tmps: list[str] = []
    placed: list[tuple[Folder, list[int]]] = []
    try:
        first, size = write_tmp(folders[0].path, source, date_us)
        tmps.append(first)
        for folder in folders[1:]:
            tmps.append(link_tmp(folder.path, first)[0])
        outcomes = []
        for folder, view, tmp in zip(folders, views, tmps, strict=True):
            outcome = folder.add(view, [(tmp, size, frozenset(), date_us)])
            placed.append((folder, [info.uid for info in outcome.result]))
            outcomes.append(outcome)
        return outcomes
    except BaseException:
        for folder, uids in placed:
            try:
                # Nobody was told of these yet; other processes never report a message that
                # arrived and left between two of their looks.
                folder.remove(View(), None, uids, False)
            except Exception:
                pass  # the failure being raised matters more
        raise
    finally:
        unlink_quietly(*tmps)


def prepare(folder: str, source: IMessageSource, date_us: int) -> tuple[str, int]:
    """
    Write (or link) the message into C{tmp/} of the INBOX at C{folder} and fsync it: its
    path and size (see L{write_tmp}). L{NoSuchAccount} (with no name) if the account is gone.
    """
    try:
        return write_tmp(folder, source, date_us)
    except FileNotFoundError:
        if not is_maildir(folder):
            raise NoSuchAccount("") from None
        raise


def add_group(
    folder: Folder, view: View, files: Sequence[tuple[str, int, int]]
) -> Outcome[list[MessageInfo | Exception]]:
    """
    Move several files prepared in C{tmp/} (path, size, internal date in µs) into the folder
    with one index transaction and one fsync of C{new/}: each file's L{MessageInfo}, in order
    (ascending UIDs), or the error that kept it out (its file is then removed).

    If placing them together fails, each is tried again on its own, so that one bad file
    cannot take the others down, and none is placed twice.
    """
    results: list[MessageInfo | Exception | None] = [None] * len(files)
    changes: list[Change] = []
    groups = [list(range(len(files)))]
    try:
        while groups:
            group = groups.pop(0)
            try:
                outcome = folder.add(
                    view, [(files[n][0], files[n][1], frozenset[str](), files[n][2]) for n in group]
                )
            except Exception as e:
                if len(group) == 1:
                    results[group[0]] = e
                    unlink_quietly(files[group[0]][0])
                else:  # the files are back in tmp/: one by one
                    groups[:0] = [[n] for n in group]
                continue
            changes.extend(outcome.changes)
            view = outcome.view
            for n, info in zip(group, outcome.result, strict=True):
                results[n] = info
    except BaseException:
        unlink_quietly(*(files[n][0] for n, r in enumerate(results) if r is None))
        raise
    done = [r for r in results if r is not None]
    assert len(done) == len(files)
    return Outcome(done, changes, view)
