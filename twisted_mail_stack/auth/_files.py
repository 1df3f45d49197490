"""
The admin-edited files of the data directory (C{passwd}, C{aliases}): one entry per line,
comments kept, atomic replacement, and re-reading when another process rewrote the file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import ClassVar, Generic, Self, TypeVar

from twisted.logger import Logger

_log = Logger()
V = TypeVar("V")

#: What identifies one version of a file on disk: (device, inode, size, mtime in ns).
#: None when the file does not exist.
FileStamp = tuple[int, int, int, int] | None


def _stamp_of(st: os.stat_result) -> FileStamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def stamp(path: str) -> FileStamp:
    """Return the current L{FileStamp} of C{path}."""
    try:
        return _stamp_of(os.stat(path))
    except FileNotFoundError:
        return None


def atomic_write(path: str, text: str, mode: int) -> FileStamp:
    """
    Replace C{path} with C{text} so that readers see the old or the new file, never a mix,
    even after a crash: write a temporary file in the same directory, fsync it, rename it
    over C{path}, fsync the directory. Returns the stamp of the new file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        os.fchmod(fd, mode)  # before any data is written
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return stamp(path)


class EntryFile(Generic[V]):
    """
    A file of C{key<sep>value} lines; blank lines and C{#} lines are comments.

    Subclasses parse and format one entry. Entries keep file order; new ones go at the end,
    and comments survive L{save}. Reads go through L{_current}, which re-reads the file when
    another process replaced it, unless this object holds unsaved changes.
    """

    #: Permission bits of the saved file.
    mode: ClassVar[int] = 0o600
    #: First line of a file created from nothing.
    header: ClassVar[str] = ""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._entries: dict[str, V] = {}
        # Each line: (None, text) for a comment, (key, "") for an entry.
        self._layout: list[tuple[str | None, str]] = []
        self._stamp: FileStamp = None
        self._dirty = False

    @classmethod
    def load(cls, path: str) -> Self:
        """
        Read the file at C{path}; a missing file gives no entries.

        Raises L{ValueError} naming the file and line of a malformed entry, L{OSError} if the
        file cannot be read.
        """
        db = cls(path)
        db._read()
        return db

    def _parse_entry(self, line: str) -> tuple[str, V]:
        """Parse one entry line (stripped); raise L{ValueError} saying what is wrong."""
        raise NotImplementedError

    def _format_entry(self, key: str, value: V) -> str:
        """Format one entry as a line, without the newline."""
        raise NotImplementedError

    def _read(self) -> None:
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8") as f:
                text, new_stamp = f.read(), _stamp_of(os.fstat(f.fileno()))
        except FileNotFoundError:
            text, new_stamp = "", None
        entries: dict[str, V] = {}
        layout: list[tuple[str | None, str]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                layout.append((None, line))
                continue
            try:
                key, value = self._parse_entry(stripped)
                if key in entries:
                    raise ValueError(f"{key!r} appears twice")
            except ValueError as e:
                raise ValueError(f"{self.path}:{lineno}: {e}") from None
            entries[key] = value
            layout.append((key, ""))
        self._entries, self._layout, self._stamp, self._dirty = entries, layout, new_stamp, False
        if new_stamp is not None and stat.S_IMODE(os.stat(self.path).st_mode) & ~self.mode:
            _log.warn(
                "{path} has looser permissions than {mode:o}; please chmod it",
                path=self.path,
                mode=self.mode,
            )

    def _current(self) -> dict[str, V]:
        """The entries, re-read first if the file changed on disk and nothing is unsaved."""
        if self.path is not None and not self._dirty:
            now = stamp(self.path)
            if now != self._stamp:
                try:
                    self._read()
                except (OSError, ValueError) as e:
                    _log.error(
                        "cannot re-read {path} ({error}); keeping what was read before",
                        path=self.path,
                        error=e,
                    )
                    self._stamp = now  # retry only once it changes again
        return self._entries

    def _set(self, key: str, value: V) -> None:
        self._current()[key] = value
        self._dirty = True

    def _delete(self, key: str) -> None:
        del self._current()[key]
        self._dirty = True

    def save(self) -> None:
        """Write the file atomically with L{mode}, keeping its comments and entry order."""
        if self.path is None:
            raise ValueError(f"this {type(self).__name__} has no file")
        layout: list[tuple[str | None, str]] = []
        if not self._layout and self.header:
            layout.append((None, self.header))
        layout += [(k, t) for k, t in self._layout if k is None or k in self._entries]
        known = {k for k, _ in layout}
        layout += [(k, "") for k in self._entries if k not in known]
        lines = [t if k is None else self._format_entry(k, self._entries[k]) for k, t in layout]
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
        self._stamp = atomic_write(self.path, "".join(line + "\n" for line in lines), self.mode)
        self._layout, self._dirty = layout, False
