"""A file holding one JSON array of events, streamed element by element in bounded memory.

A small scanner finds each element's byte span (it follows strings, escapes and nesting, nothing
more) and msgspec decodes that element alone. The file is scanned twice: first to check that it
is JSON, so that a malformed file is refused whole with the line at fault and none of it is
imported, then to read it. An element longer than MAX_RECORD_BYTES is skipped without being held
and rejected on its own; the rest of the array is read. Elements are numbered from 1 and that
number is their `line`, as in every rejection of this format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import msgspec

from ...textfile import utf8_error_offset
from ..records import RawEvent, Rejection
from .common import BOM, MAX_RECORD_BYTES, ReaderError, open_binary, too_long
from .jsonl import from_mapping, nested_too_deeply

CHUNK_BYTES = 1 << 20
# nesting the scanner keeps track of; deeper elements are rejected (msgspec refuses far less)
MAX_DEPTH = 10_000

_generic = msgspec.json.Decoder(float_hook=Decimal)
_raw = msgspec.json.Decoder(msgspec.Raw)

_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_PLAIN = rb'[^"\[\]{}]++'


def _nested(inner: bytes) -> bytes:
    body = b"(?:" + b"|".join((_PLAIN, _STRING, *((inner,) if inner else ()))) + b")*+"
    return rb"(?:\{" + body + rb"\}|\[" + body + rb"\])"


# the fast path: a whole element nested at most 3 deep (an event, its properties, a list in them)
# in one match; possessive quantifiers, so a failed match never backtracks
_SHALLOW_ELEMENT = re.compile(_nested(_nested(_nested(b""))), re.S)
# ... and the comma after it, when another element follows: the common case in one regex call
_SHALLOW_ELEMENT_THEN_COMMA = re.compile(b"(" + _nested(_nested(_nested(b""))) + rb")[ \t\r\n]*+,[ \t\r\n]*+(?=[^\]])",
                                         re.S)
_STRUCTURAL = re.compile(rb'["\[\]{}]')
_STRING_REST = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.S)  # up to the closing quote or a lone "\"
_SCALAR_REST = re.compile(rb'[^ \t\r\n,\[\]{}"]*+')
_WHITESPACE = re.compile(rb"[ \t\r\n]*+")
_CLOSES = {ord("]"): ord("["), ord("}"): ord("{")}


class _Malformed(Exception):
    """The array's structure is broken at `line` (not one element: the file as a whole)."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line, self.what = line, what


class _Oversized:
    """An element skipped unread: longer than MAX_RECORD_BYTES, or nested deeper than MAX_DEPTH."""

    def __init__(self, why: str) -> None:
        self.why = why


class _Scanner:
    """The file's bytes in a window of about CHUNK_BYTES (plus the element being read)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.buf = b""
        self.pos = 0  # the next byte of buf to look at
        self.line = 1  # the line of buf[pos]
        self.eof = False

    def fill(self) -> bool:
        """Read on, keeping buf[pos:]. False at the end of the file."""
        if self.eof:
            return False
        chunk = self.handle.read(CHUNK_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def advance(self, to: int) -> None:
        self.line += self.buf.count(b"\n", self.pos, to)
        self.pos = to

    def peek(self) -> int | None:
        """The next byte that is not whitespace (not consumed), or None at the end of the file."""
        while True:
            self.advance(_WHITESPACE.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return None

    def element_then_comma(self) -> bytes | None:
        """The bytes of a small element starting at pos when a comma and another element follow
        (pos is moved to that next element); else None, and nothing moves."""
        if len(self.buf) - self.pos < CHUNK_BYTES // 4:
            self.fill()
        match = _SHALLOW_ELEMENT_THEN_COMMA.match(self.buf, self.pos)
        if match is None or match.end(1) - self.pos > MAX_RECORD_BYTES:
            return None
        self.advance(match.end())
        return match.group(1)

    def element(self) -> bytes | _Oversized:
        """The bytes of the element starting at pos (pos is moved past it)."""
        if len(self.buf) - self.pos < CHUNK_BYTES // 4:
            self.fill()
        match = _SHALLOW_ELEMENT.match(self.buf, self.pos)
        if match is None:
            return self._walk()
        self.advance(match.end())
        return match.group() if match.end() - match.start() <= MAX_RECORD_BYTES else _too_big()

    def _walk(self) -> bytes | _Oversized:
        """Any element: follow strings and nesting across refills; past MAX_RECORD_BYTES, stop
        holding it (the window moves on) and only find where it ends."""
        if self.buf[self.pos] not in b'[{"':
            return self._scalar()
        kept = True
        stack = bytearray()
        deeper = 0  # levels beyond MAX_DEPTH, counted only
        too_deep = False
        in_string = False
        i = self.pos
        while True:
            if i >= len(self.buf):
                kept = kept and i - self.pos <= MAX_RECORD_BYTES
                i = self._read_on(i, kept)
                continue
            if in_string:
                i = _STRING_REST.match(self.buf, i).end()  # type: ignore[union-attr]
                if i >= len(self.buf) or self.buf[i] != ord('"'):
                    # the window ends inside the string (perhaps right after a backslash)
                    kept = kept and i - self.pos <= MAX_RECORD_BYTES
                    i = self._read_on(i, kept)
                    continue
                in_string, i = False, i + 1
                if stack or deeper:
                    continue
            else:
                found = _STRUCTURAL.search(self.buf, i)
                if found is None:
                    i = len(self.buf)
                    continue
                char, i = self.buf[found.start()], found.end()
                if char == ord('"'):
                    in_string = True
                    continue
                if char in b"[{":
                    if len(stack) < MAX_DEPTH:
                        stack.append(char)
                    else:
                        deeper += 1
                        too_deep = True
                    continue
                if deeper:
                    deeper -= 1
                    continue
                if not stack or stack[-1] != _CLOSES[char]:
                    self.advance(found.start())
                    raise _Malformed(self.line, f"unexpected {chr(char)!r}")
                stack.pop()
                if stack:
                    continue
            kept = kept and i - self.pos <= MAX_RECORD_BYTES
            span = self.buf[self.pos:i] if kept and not too_deep else b""
            self.advance(i)
            if not kept:
                return _too_big()
            return _too_deep() if too_deep else span

    def _read_on(self, i: int, kept: bool) -> int:
        """Read more of the file for an element begun at pos and scanned up to i; where i is now.
        An element too long to keep is let go: the window starts at i."""
        if not kept:
            self.advance(i)
        offset = i - self.pos
        if not self.fill():
            raise _Malformed(self.line + self.buf.count(b"\n", self.pos), "the file ends inside an element")
        return self.pos + offset

    def _scalar(self) -> bytes | _Oversized:
        """A number, true, false or null (not an event: decoding says why, or that it is not JSON)."""
        while True:
            end = _SCALAR_REST.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if end < len(self.buf) or self.eof:
                break
            if end - self.pos > MAX_RECORD_BYTES:
                self.advance(end)  # forget it, and find its end
                while self.fill():
                    end = _SCALAR_REST.match(self.buf, self.pos).end()  # type: ignore[union-attr]
                    self.advance(end)
                    if end < len(self.buf):
                        break
                return _too_big()
            if not self.fill():
                break
        span = self.buf[self.pos:end]
        self.advance(end)
        if not span:
            raise _Malformed(self.line, "expected an element")
        return span


def _too_big() -> _Oversized:
    return _Oversized("too_long")


def _too_deep() -> _Oversized:
    return _Oversized("too_deep")


def _elements(handle: BinaryIO) -> Iterator[tuple[int, int, bytes | _Oversized]]:
    """(element number, line it starts on, its bytes or why it was skipped), in order; the
    structure around them (brackets, commas, the end of the file) is checked as it goes."""
    scanner = _Scanner(handle)
    scanner.fill()
    if scanner.buf.startswith(BOM):
        scanner.pos = len(BOM)
    if scanner.peek() != ord("["):
        raise _Malformed(scanner.line, "expected a JSON array")
    scanner.advance(scanner.pos + 1)
    number = 0
    if scanner.peek() == ord("]"):
        scanner.advance(scanner.pos + 1)
    else:
        while True:
            if scanner.peek() is None:
                raise _Malformed(scanner.line, "the file ends inside the array")
            number += 1
            line = scanner.line
            span = scanner.element_then_comma()
            if span is not None:
                yield number, line, span
                continue
            yield number, line, scanner.element()
            after = scanner.peek()
            if after == ord(","):
                scanner.advance(scanner.pos + 1)
                if scanner.peek() == ord("]"):
                    raise _Malformed(scanner.line, "a comma before ']'")
                continue
            if after == ord("]"):
                scanner.advance(scanner.pos + 1)
                break
            if after is None:
                raise _Malformed(scanner.line, "the file ends inside the array")
            raise _Malformed(scanner.line, "expected ',' or ']' after an element")
    if scanner.peek() is not None:
        raise _Malformed(scanner.line, "text after the array")


def read_json_array(path: Path) -> Iterator[RawEvent | Rejection]:
    """A file holding one JSON array of events (the export shape of some systems)."""
    _check(path)
    return _read(path)


def _check(path: Path) -> None:
    """Refuse a file that is not a JSON array, naming the line, before anything is read from it."""
    with open_binary(path) as handle:
        try:
            for _, line, span in _elements(handle):
                if not isinstance(span, _Oversized):
                    _check_element(path, line, span)
        except _Malformed as exc:
            raise ReaderError(f"{path}: line {exc.line}: not valid JSON: {exc.what}") from None


def _check_element(path: Path, line: int, span: bytes) -> None:
    bad_byte = utf8_error_offset(span)
    if bad_byte is not None:
        raise ReaderError(f"{path}: line {_line_in(span, line, bad_byte)}: not UTF-8 text")
    try:
        _raw.decode(span)
    except msgspec.DecodeError as exc:
        offset = _byte_offset(str(exc))
        where = _line_in(span, line, offset) if offset is not None else line
        raise ReaderError(f"{path}: line {where}: not valid JSON: {_without_byte(str(exc))}") from None
    except RecursionError:
        pass  # well-formed as far as anyone can tell: rejected on its own when read


def _read(path: Path) -> Iterator[RawEvent | Rejection]:
    with open_binary(path) as handle:
        try:
            for number, _, span in _elements(handle):
                yield _decoded(number, span)
        except _Malformed as exc:  # the file changed since it was checked
            raise ReaderError(f"{path}: line {exc.line}: not valid JSON: {exc.what}") from None


def _decoded(number: int, span: bytes | _Oversized) -> RawEvent | Rejection:
    if isinstance(span, _Oversized):
        return too_long(number, "element") if span.why == "too_long" else nested_too_deeply(number, b"")
    try:
        return from_mapping(number, _generic.decode(span))
    except RecursionError:
        return nested_too_deeply(number, span)
    except (msgspec.DecodeError, UnicodeDecodeError):  # the file changed since it was checked
        return Rejection(number, "invalid_json", f"line {number}: not valid JSON")


def _line_in(span: bytes, first_line: int, offset: int) -> int:
    return first_line + span.count(b"\n", 0, offset)


def _byte_offset(message: str) -> int | None:
    """msgspec names a byte offset in its message; people want the line. (Only where the line is
    found: the message shown is ratecard's own wording around it.)"""
    match = re.search(r"\(byte (\d+)\)", message)
    return int(match.group(1)) if match else None


def _without_byte(message: str) -> str:
    return re.sub(r"\s*\(byte \d+\)", "", message)
