"""The two consoles every verb prints through, made so that data is only ever text.

Customer references, file names, legacy cells and error messages come from users and other
systems: read as Rich markup, `[/b]` would crash a command and `[link=…]` would become a terminal
hyperlink. So markup, emoji codes and highlighting are off on both consoles for every string
(table cells and titles included); the few deliberate styles are `styled(...)` Text objects.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from ..outputs import visible  # the one rule for control characters in data (CSV cells too)

PLAIN = {"markup": False, "emoji": False, "highlight": False}

# A pipe gets wide tables (nothing cut short for scripts and logs); a terminal gets its own width.
out = Console(**PLAIN) if Console().is_terminal else Console(width=240, **PLAIN)
# soft_wrap: an error is one line on stderr, never broken at 80 columns (scripts read it line by line)
err = Console(stderr=True, soft_wrap=True, **PLAIN)



def say(console: Console, text: str) -> None:
    """Print a line of text that may carry data: never read as markup, never highlighted."""
    console.print(visible(text), markup=False, emoji=False, highlight=False)


class Table(RichTable):
    """A Rich table whose text cells and titles are data: control characters made visible."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for key in ("title", "caption"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = visible(kwargs[key])
        if args and isinstance(args[0], str):
            args = tuple(visible(arg) if isinstance(arg, str) else arg for arg in args)
        super().__init__(*args, **kwargs)

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(visible(cell) if isinstance(cell, str) else cell for cell in renderables), **kwargs)


def styled(text: str, style: str) -> Text:
    """Text shown in a style (bold, red…): the text itself is never read as markup."""
    return Text(text, style=style)
