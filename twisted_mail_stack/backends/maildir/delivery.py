"""Local delivery of one message to several INBOXes, all or nothing. Blocking; run in a thread."""

from __future__ import annotations

from collections.abc import Sequence

from ...interfaces import IMessageSource
from ...values import MessageInfo
from .files import link_tmp, unlink_quietly, write_tmp
from .folder import Folder, Outcome, View


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
