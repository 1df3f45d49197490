"""
Durable file work for Maildir delivery (cr.yp.to/proto/maildir.html): write into C{tmp/},
fsync, then rename into C{new/} or C{cur/} and fsync the directory. Blocking; run in a thread.
"""

from __future__ import annotations

import os
import shutil
import time

from ...errors import StorageError
from ...interfaces import IMessageSource
from ...sources import BytesSource
from .layout import unique_name

_CHUNK = 1 << 16
#: Maildir: files in tmp/ untouched for 36 hours are debris of interrupted deliveries.
TMP_MAX_AGE = 36 * 3600


def fsync_dir(path: str) -> None:
    """Make the entries of directory C{path} (a rename or unlink in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(*paths: str) -> None:
    """Remove files, ignoring those already gone (cleanup after a failure)."""
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def fsync_file(path: str) -> int:
    """Make file C{path}'s data durable; return its size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _write_stream(source: IMessageSource, path: str, mtime_us: int) -> int:
    """Write the message of C{source} to new file C{path} and fsync it; return its size."""
    # O_EXCL: never overwrite; a unique name that exists means something is badly wrong.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    try:
        if isinstance(source, BytesSource):  # in memory: no reading through a file object
            size = len(source.data)
            view = memoryview(source.data)
            while view:
                view = view[os.write(fd, view) :]
        else:
            with source.open() as src:
                while chunk := src.read(_CHUNK):
                    size += len(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
        # Dovecot's convention: a message file's mtime is its INTERNALDATE, so a lost index
        # is rebuilt with the right dates.
        os.utime(fd, ns=(mtime_us * 1000, mtime_us * 1000))
        os.fsync(fd)
        return size  # a new file (O_EXCL) holds exactly what was written: no fstat needed
    finally:
        os.close(fd)


def link_tmp(folder: str, origin: str) -> tuple[str, int]:
    """
    Put a copy of file C{origin} into C{folder/tmp/} durably; return its path and size.

    Hard-linked where possible (no space, same inode, same mtime); copied where the
    filesystem refuses. Messages are never modified in place, so sharing an inode is safe.
    """
    path = os.path.join(folder, "tmp", unique_name())
    try:
        try:
            os.link(origin, path)
        except OSError:
            shutil.copy2(origin, path)
        # The origin may be a spool file nobody fsynced; fsync of a clean file is cheap.
        return path, fsync_file(path)
    except BaseException:
        unlink_quietly(path)
        raise


def write_tmp(folder: str, source: IMessageSource, mtime_us: int) -> tuple[str, int]:
    """
    Put the message of C{source} into C{folder/tmp/} durably; return its path and size.

    A source with a C{path} is linked (see L{link_tmp}); its file keeps its own mtime. A source
    whose bytes do not number C{source.size} fails with L{StorageError}.
    """
    if source.path is not None:
        path, size = link_tmp(folder, source.path)
    else:
        path = os.path.join(folder, "tmp", unique_name())
        try:
            size = _write_stream(source, path, mtime_us)
        except BaseException:
            unlink_quietly(path)
            raise
    if size != source.size:
        unlink_quietly(path)
        raise StorageError(f"message source gave {size} bytes, not the {source.size} it promised")
    return path, size


def clean_tmp(folder: str, now: float | None = None) -> None:
    """
    Remove files in C{folder/tmp/} older than 36 hours (Maildir convention). Age is the later
    of the file's mtime and the time its name starts with (L{layout.unique_name}): a COPY or
    MOVE hard-links an old message into C{tmp/} with its old mtime, and must not lose it here.
    """
    limit = (time.time() if now is None else now) - TMP_MAX_AGE
    try:
        entries = list(os.scandir(os.path.join(folder, "tmp")))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            if _named_time(entry.name) >= limit:
                continue
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
        except OSError:
            pass


def _named_time(name: str) -> float:
    """The seconds a Maildir name starts with (C{<sec>.M...}), or 0."""
    head = name.partition(".")[0]
    return float(head) if head.isdigit() and len(head) <= 12 else 0.0
