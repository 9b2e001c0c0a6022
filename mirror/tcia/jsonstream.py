"""Incremental parser for a JSON array of objects fed in byte chunks (huge getSeries listings).

Memory stays at about one chunk plus one object: each complete object is decoded with the
C JSON decoder (``raw_decode``) as soon as its closing brace has arrived, then dropped.
A :class:`Checkpoint` (how much text was parsed, and its digest) lets a scanner of the
same body re-requested after a cut-off skip what was parsed, checking it is unchanged.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: An object larger than this without completing is not a TCIA row: stop buffering.
MAX_OBJECT_CHARS = 16 * 1024 * 1024

_WHITESPACE = " \t\r\n"


class JsonArrayError(ValueError):
    """The body is not a JSON array of objects."""


class ListingChanged(Exception):
    """A body re-read after a :class:`Checkpoint` does not start with the text parsed
    before (``shorter``: it ended before that much text)."""

    def __init__(self, *, shorter: bool) -> None:
        super().__init__("shorter" if shorter else "changed")
        self.shorter = shorter


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a scanner stood: the text it parsed (length, digest) and the state after it."""

    chars: int
    digest: bytes
    state: str
    count: int


class ArrayScanner:
    """Feed bytes with :meth:`feed`, collect finished objects, call :meth:`close` at the end.

    An empty (or all-whitespace) body counts as an empty array, as NBIA sends it. A scanner
    made *after* a checkpoint of the same body skips the text parsed up to it (raising
    :class:`ListingChanged` when that text differs) and goes on from there.
    """

    def __init__(self, after: Checkpoint | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._json = json.JSONDecoder()
        self._buf = ""
        self._state = "start"  # start -> item -> sep -> ... -> done
        self.count = 0
        self._digest = hashlib.sha1(usedforsecurity=False)  # of the text parsed so far
        self._chars = 0
        self._after = after
        self._skip = after.chars if after else 0

    def checkpoint(self) -> Checkpoint:
        """What a scanner of a re-read of this body needs to go on after the objects
        returned so far."""
        if self._skip:
            assert self._after is not None
            return self._after
        return Checkpoint(self._chars, self._digest.digest(), self._state, self.count)

    def feed(self, data: bytes) -> list[Any]:
        """Add *data*; return the objects completed by it."""
        try:
            self._buf += self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise JsonArrayError(f"body is not UTF-8: {exc}") from exc
        if self._skip and not self._skipped():
            return []
        return list(self._drain(final=False))

    def close(self) -> list[Any]:
        """Signal end of body; return the last objects or raise if the array is unfinished."""
        try:
            self._buf += self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise JsonArrayError(f"body is not UTF-8: {exc}") from exc
        if self._skip and not self._skipped():
            raise ListingChanged(shorter=True)
        out = list(self._drain(final=True))
        if self._state not in ("start", "done"):
            raise JsonArrayError(f"body ends inside the array after {self.count} objects")
        return out

    def _skipped(self) -> bool:
        """Skip (and digest) the text of the checkpoint; True once all of it is skipped."""
        text, self._buf = self._buf[:self._skip], self._buf[self._skip:]
        self._consumed(text)
        self._skip -= len(text)
        if self._skip:
            return False
        after = self._after
        assert after is not None
        if self._digest.digest() != after.digest:
            raise ListingChanged(shorter=False)
        self._state, self.count = after.state, after.count
        return True

    def _consumed(self, text: str) -> None:
        self._chars += len(text)
        self._digest.update(text.encode("utf-8", "surrogatepass"))

    def _drain(self, *, final: bool) -> Iterator[Any]:
        pos, buf = 0, self._buf
        try:
            while True:
                pos = _skip_ws(buf, pos)
                if pos >= len(buf):
                    break
                if self._state in ("first", "item"):
                    item, end = self._item(buf, pos, final=final)
                    if end == pos:
                        break  # the object is not complete yet
                    pos = end
                    if item is not _NOTHING:
                        yield item
                else:
                    pos = self._punctuation(buf, pos)
        finally:
            self._consumed(buf[:pos])
            self._buf = buf[pos:]

    def _punctuation(self, buf: str, pos: int) -> int:
        """Handle the characters between objects: '[' at the start, ',' or ']' after one."""
        char, state = buf[pos], self._state
        if state == "start" and char == "[":
            self._state = "first"
        elif state == "sep" and char in ",]":
            self._state = "item" if char == "," else "done"
        elif state == "done":
            raise JsonArrayError(f"unexpected data after the array: {buf[pos:pos + 40]!r}")
        elif state == "start":
            raise JsonArrayError(f"expected a JSON array, got {buf[pos:pos + 40]!r}")
        else:
            raise JsonArrayError(f"expected ',' or ']' after object {self.count}, "
                                 f"got {buf[pos:pos + 40]!r}")
        return pos + 1

    def _item(self, buf: str, pos: int, *, final: bool) -> tuple[Any, int]:
        """Decode one object at *pos*; (anything, pos) means wait for more data."""
        if buf[pos] == "]" and self._state == "first":
            self._state = "done"
            return _NOTHING, pos + 1
        if buf[pos] != "{":
            raise JsonArrayError(f"expected an object in the array, got {buf[pos:pos + 40]!r}")
        try:
            item, end = self._json.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if final or len(buf) - pos > MAX_OBJECT_CHARS:
                raise JsonArrayError(f"object {self.count + 1} is malformed: {exc.msg}") from exc
            return _NOTHING, pos
        self.count += 1
        self._state = "sep"
        return item, end


_NOTHING = object()


def _skip_ws(buf: str, pos: int) -> int:
    while pos < len(buf) and buf[pos] in _WHITESPACE:
        pos += 1
    return pos


def parse_array(body: bytes) -> list[Any]:
    """Parse a whole body (for small responses) with the same rules as the scanner."""
    scanner = ArrayScanner()
    return [*scanner.feed(body), *scanner.close()]
