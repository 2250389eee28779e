"""Writing a file a user asked for (an export, a report, rejected rows) without harming anything.

Three rules, kept here so that every writer follows them (docs/security/outputs.md):

- an output is never one of the command's inputs nor the database (or its -wal/-shm/-journal):
  `check_output` refuses it before anything is read or written;
- an output is written to a temporary file in the same folder and renamed over the old one only
  once complete (`replace_atomically`): a command that fails halfway leaves the previous file as it was;
- a CSV text cell that a spreadsheet would run as a formula is neutralised (`csv_text`), while
  numbers, negative ones included, are written as they are;
- a control character in data (ESC, BEL, CR, C1 codes) is written as a visible `\\xNN` (`visible`),
  in CSV cells as on the terminal: a file printed with `cat`, or an export on stdout, never
  recolours, retitles or clears the terminal.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any


class OutputError(Exception):
    """An output file that is refused or cannot be written; the message names the file and why."""


# Leading characters a spreadsheet reads as the start of a formula (OWASP "CSV injection"), with
# their full-width forms, which some spreadsheets also accept.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# A plain decimal number (what ratecard writes for money and quantities): never a formula, never changed.
PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
# What a file name offered for download keeps; anything else (quotes, slashes, letters beyond
# ASCII, which an HTTP header cannot carry) becomes "_".
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")
# Files SQLite keeps next to the database: writing over any of them corrupts it.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


# Control characters in data (ESC starts a terminal escape sequence that could recolour, retitle
# or hide output; CR moves back over what was printed) are shown as visible escapes; newlines and
# tabs stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Data as printable text: every control character but newline and tab written as \\xNN."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def csv_cell(value: Any) -> Any:
    """The cell as a spreadsheet must see it: a text beginning like a formula gets a leading `'`
    (shown as text, never evaluated), control characters are written as visible \\xNN; numbers
    and every other text are left alone."""
    if value is None or isinstance(value, (int, Decimal)):
        return value
    text = visible(str(value))
    if text.startswith(FORMULA_STARTS) and not PLAIN_DECIMAL.fullmatch(text):
        return "'" + text
    return text


def csv_cell_read(text: str) -> str:
    """A text cell of a CSV that csv_cell wrote, as it was before: the `'` put in front of a
    formula-like text is taken off again (any other text is returned unchanged)."""
    if text.startswith("'") and csv_cell(text[1:]) == text:
        return text[1:]
    return text


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A CSV document (header, then rows; "\\n" line ends), every cell through `csv_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(name) for name in header])
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def download_name(stem: str, extension: str) -> str:
    """STEM.EXTENSION for a Content-Disposition header: only ASCII letters, digits, `.`, `_`, `-`."""
    return f"{_UNSAFE_FILE_CHARACTERS.sub('_', stem)}.{extension}"


def sqlite_files(database: Path) -> list[Path]:
    """The database file and the files SQLite keeps next to it."""
    return [database.with_name(database.name + suffix) for suffix in SQLITE_COMPANIONS]


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links and other names of one file
    except OSError:  # either does not exist: then they cannot be one file
        return False


def check_output(option: str, path: Path, inputs: Iterable[Path] = (), database: Path | None = None) -> None:
    """Refuse an output that is one of the command's inputs or the database (or a file beside it)."""
    for candidate in inputs:
        if _same_file(path, candidate):
            raise OutputError(f"{option} {path}: is also the input {candidate}; writing it would destroy the "
                              "input: choose another file")
    for candidate in sqlite_files(database) if database is not None else ():
        if _same_file(path, candidate):
            raise OutputError(f"{option} {path}: is the database {database} (or a file SQLite keeps beside it); "
                              "writing it would destroy the database: choose another file")
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory, not a file")


def _new_file_mode(target: Path) -> int:
    """The permissions the output gets: the old file's, else what open() would have given a new one."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextmanager
def replace_atomically(option: str, path: Path, *, binary: bool = False) -> Iterator[Any]:
    """A text handle (UTF-8; bytes with `binary`) whose content replaces `path` when the block ends
    without an exception; otherwise the temporary file is removed and `path` is left as it was."""
    target = path.resolve()  # a symbolic link keeps pointing at the file it named
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot be written: {exc.strerror}") from None
    handle = (open(fd, "wb") if binary  # noqa: SIM115 - closed below on every path
              else open(fd, "w", encoding="utf-8", newline=""))
    try:
        yield handle
    except BaseException:
        handle.close()
        _remove(temporary)
        raise
    try:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.chmod(temporary, _new_file_mode(target))
        os.replace(temporary, target)
    except OSError as exc:
        handle.close()
        _remove(temporary)
        raise OutputError(f"{option} {path}: cannot be written: {exc.strerror}") from None


def write_output(option: str, path: Path, text: str) -> None:
    """Replace `path` with `text` as one step (see replace_atomically)."""
    with replace_atomically(option, path) as handle:
        handle.write(text)


def write_output_bytes(option: str, path: Path, content: bytes) -> None:
    """Replace `path` with `content` (a PDF, an XML document) as one step."""
    with replace_atomically(option, path, binary=True) as handle:
        handle.write(content)


def _remove(temporary: str) -> None:
    try:
        os.unlink(temporary)
    except OSError:
        pass
