"""Incremental parser for a JSON array of objects fed in byte chunks (huge getSeries listings).

Memory stays at about one chunk plus one object: each complete object is decoded with the
C JSON decoder (``raw_decode``) as soon as its closing brace has arrived, then dropped.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any

#: An object larger than this without completing is not a TCIA row: stop buffering.
MAX_OBJECT_CHARS = 16 * 1024 * 1024

_WHITESPACE = " \t\r\n"


class JsonArrayError(ValueError):
    """The body is not a JSON array of objects."""


class ArrayScanner:
    """Feed bytes with :meth:`feed`, collect finished objects, call :meth:`close` at the end.

    An empty (or all-whitespace) body counts as an empty array, as NBIA sends it.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._json = json.JSONDecoder()
        self._buf = ""
        self._state = "start"  # start -> item -> sep -> ... -> done
        self.count = 0

    def feed(self, data: bytes) -> list[Any]:
        """Add *data*; return the objects completed by it."""
        try:
            self._buf += self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise JsonArrayError(f"body is not UTF-8: {exc}") from exc
        return list(self._drain(final=False))

    def close(self) -> list[Any]:
        """Signal end of body; return the last objects or raise if the array is unfinished."""
        try:
            self._buf += self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise JsonArrayError(f"body is not UTF-8: {exc}") from exc
        out = list(self._drain(final=True))
        if self._state not in ("start", "done"):
            raise JsonArrayError(f"body ends inside the array after {self.count} objects")
        return out

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
