"""Ready-made L{IMessageSource} implementations."""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from attrs import field, frozen
from zope.interface import implementer

from .interfaces import IMessageSource


@implementer(IMessageSource)
@frozen
class BytesSource:
    """A message held in memory."""

    data: bytes
    path: None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


@implementer(IMessageSource)
@frozen
class FileSource:
    """A message in a file that nobody changes while it is being stored (e.g. an SMTP spool file)."""

    path: str = field(converter=os.fspath)
    size: int = field()

    @size.default
    def _size(self) -> int:
        return os.stat(self.path).st_size

    def open(self) -> BinaryIO:
        return open(self.path, "rb")
