"""The two consoles every verb prints through, made so that data is only ever text.

Customer references, file names, legacy cells and error messages come from users and other
systems: read as Rich markup, `[/b]` would crash a command and `[link=…]` would become a terminal
hyperlink. So markup, emoji codes and highlighting are off on both consoles for every string
(table cells and titles included); the few deliberate styles are `styled(...)` Text objects.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

PLAIN = {"markup": False, "emoji": False, "highlight": False}

# A pipe gets wide tables (nothing cut short for scripts and logs); a terminal gets its own width.
out = Console(**PLAIN) if Console().is_terminal else Console(width=240, **PLAIN)
# soft_wrap: an error is one line on stderr, never broken at 80 columns (scripts read it line by line)
err = Console(stderr=True, soft_wrap=True, **PLAIN)


def say(console: Console, text: str) -> None:
    """Print a line of text that may carry data: never read as markup, never highlighted."""
    console.print(text, markup=False, emoji=False, highlight=False)


def styled(text: str, style: str) -> Text:
    """Text shown in a style (bold, red…): the text itself is never read as markup."""
    return Text(text, style=style)
