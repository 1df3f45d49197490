"""
Sequence sets (RFC 3501 9 sequence-set): C{1:5,7,9:*}, ranges in either order, C{*} for the
largest number in use; and their compact form for responses (COPYUID, ESEARCH).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from attrs import frozen

from ._reader import DIGITS, MAX_NUMBER, Reader

__all__ = ["SequenceSet", "STAR", "parse_sequence_set", "read_sequence_set", "compact"]

#: Stands for C{*} in a range bound.
STAR = 0


@frozen
class SequenceSet:
    """Ranges as sent, each C{(first, last)} with L{STAR} for C{*}; C{3:1} is kept as C{(3, 1)}."""

    ranges: tuple[tuple[int, int], ...]

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """
        Ascending, merged, inclusive ranges with C{*} replaced by C{largest} (the highest message
        number or UID in use; RFC 3501 6.4.8: C{*} in a UID range is the highest UID, so C{N:*}
        includes it even when N is larger).
        """
        spans = []
        for first, last in self.ranges:
            a = largest if first == STAR else first
            b = largest if last == STAR else last
            spans.append((min(a, b), max(a, b)))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def contains(self, number: int, largest: int) -> bool:
        return any(lo <= number <= hi for lo, hi in self.resolve(largest))

    def select(self, numbers: Iterable[int], largest: int) -> Iterator[int]:
        """The members of C{numbers} (ascending) that the set names."""
        spans = self.resolve(largest)
        i = 0
        for n in numbers:
            while i < len(spans) and spans[i][1] < n:
                i += 1
            if i == len(spans):
                return
            if spans[i][0] <= n:
                yield n

    def __bytes__(self) -> bytes:
        def bound(n: int) -> bytes:
            return b"*" if n == STAR else b"%d" % n

        return b",".join(bound(a) if a == b else bound(a) + b":" + bound(b) for a, b in self.ranges)


def _bound(reader: Reader) -> int:
    if reader.maybe(b"*"):
        return STAR
    return reader.number(nonzero=True, limit=MAX_NUMBER)


def read_sequence_set(reader: Reader) -> SequenceSet:
    ranges = []
    while True:
        first = _bound(reader)
        last = _bound(reader) if reader.maybe(b":") else first
        ranges.append((first, last))
        if not reader.maybe(b","):
            return SequenceSet(tuple(ranges))


def parse_sequence_set(text: bytes) -> SequenceSet:
    """Parse a whole sequence set; raises L{Syntax}."""
    from ._framer import RawCommand

    reader = Reader(RawCommand((text,)))
    result = read_sequence_set(reader)
    reader.end()
    return result


def looks_like_sequence_set(reader: Reader) -> bool:
    c = reader.peek()
    return c is not None and (c in DIGITS or c == ord("*"))


def compact(numbers: Iterable[int]) -> bytes:
    """
    C{[1, 2, 3, 4, 5, 7, 9, 10]} -> C{b"1:5,7,9:10"}. Order is kept and only ascending runs are
    joined, so that COPYUID's two sets still pair up element by element (RFC 4315 3).
    """
    out: list[bytes] = []
    start = prev = -2
    for n in numbers:
        if n == prev + 1 and prev >= 0:
            prev = n
            continue
        if prev >= 0:
            out.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
        start = prev = n
    if prev >= 0:
        out.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
    if not out:
        raise ValueError("an empty sequence set cannot be sent")
    return b",".join(out)
