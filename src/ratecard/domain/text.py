"""The one rule for words ratecard prints (names, descriptions, footers): the catalog check and the
Solvimon-compatible API both ask it, so a name refused in a catalog file is refused over HTTP too.

Such words reach PDFs, e-invoices, CSV exports and terminals. A control character harms each of them:
NUL cuts text in C libraries and is not allowed in XML, ESC recolours or rewrites a terminal, the C1
controls (U+0080-U+009F) include a one-byte escape (CSI, U+009B) some terminals obey. The two bidi
override characters (U+202D LEFT-TO-RIGHT OVERRIDE, U+202E RIGHT-TO-LEFT OVERRIDE) reverse the letters
that follow them, so "invoice\u202egnp.exe" prints as "invoiceexe.png": the console isolates them, the
PDF does not, and no billing name needs them. Ordinary right-to-left text (Arabic, Hebrew), the marks
(U+200E, U+200F), embeddings and isolates (U+2066-U+2069) stay allowed: they only order text the way
its own script does."""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, LF and CR stay
_BIDI_OVERRIDE = re.compile("[\u202d\u202e]")


def printed_text_problem(value: str, *, lines: bool = False) -> str | None:
    """Why `value` may not be printed, or None. With `lines`, tabs and line breaks are allowed
    (a multi-line footer)."""
    if (_CONTROL_BUT_LINE_BREAKS if lines else _CONTROL).search(value):
        allowed = "other than tabs and line breaks " if lines else ""
        return (f"must not contain control characters {allowed}(NUL, escape sequences, "
                f"{'...' if lines else 'tabs, newlines, ...'}): it is printed on documents, exports and terminals")
    if _BIDI_OVERRIDE.search(value):
        return ("must not contain the bidi override characters U+202D or U+202E: they reverse the letters "
                "that follow and disguise the text on documents (right-to-left text itself is fine)")
    return None
