"""Read a catalog file into plain Python data, keeping every number exact.

YAML floats and JSON numbers become Decimal straight from their text, so `49.00`
written unquoted is exactly 49.00 and never passes through a float; a number written outside
the one syntax of numbers (domain.money.to_decimal) stays the text written, for the schema to
refuse where a number belongs.

Catalogs come from users (the CLI) and from API callers, so one loader serves both and
bounds what a document may cost before anything walks it: its size in bytes, its nesting
depth, and its YAML aliases. PyYAML shares the node an alias points to, so loading a
"billion laughs" document is cheap; it is every later walk (validation, rendering) that
expands it. Aliases are therefore allowed (catalogs reuse a charge block) but counted, and
the nodes they would add when expanded are bounded; an alias inside its own anchor is refused.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ..domain.money import MoneyError, to_decimal
from ..textfile import read_text


class CatalogFileError(ValueError):
    """The file cannot be read or parsed; the message names the file and line."""


MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64  # nested mappings/lists; a real catalog needs about 6
MAX_ALIASES = 100
MAX_ALIAS_EXPANSION = 10_000  # nodes that aliases may add to the document once expanded


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader whose floats are Decimals and whose timestamps stay strings, and whose
    composer enforces the depth and alias limits as it builds the node graph."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._expansion = 0
        self._open_anchors: list[str] = []
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self._count_alias(self.peek_event())
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LimitError(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
        anchor = getattr(self.peek_event(), "anchor", None)
        self._open_anchors.append(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open_anchors.pop()
            self._depth -= 1

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise _LimitError(f"more than {MAX_ALIASES} aliases", event.start_mark)
        if event.anchor in self._open_anchors:
            raise _LimitError(f"the alias *{event.anchor} is inside its own anchor", event.start_mark)
        target = self.anchors.get(event.anchor)
        if target is not None:  # else PyYAML reports the undefined alias
            self._expansion += self._size(target)
            if self._expansion > MAX_ALIAS_EXPANSION:
                raise _LimitError(f"aliases expand to more than {MAX_ALIAS_EXPANSION} nodes", event.start_mark)

    def _size(self, node: yaml.Node) -> int:
        """Nodes in the expanded tree under a complete node (memoised: aliases share nodes)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._size(key) + self._size(value) for key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._size(item) for item in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size


class _LimitError(yaml.YAMLError):
    """A document beyond the loader's limits (raised while composing, reported like a syntax error)."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def _exact_number(text: str) -> Any:
    """A number of the file (a YAML float, a JSON number with a fraction or exponent) as a Decimal
    when written in the one syntax of a number (domain.money.to_decimal); else the text written
    (YAML's 1_000.5, .5, +1.5, .inf; an exponent too large to read), which the schema refuses with
    its reason where a number belongs. The range is the catalog check's (domain.numbers)."""
    try:
        return to_decimal(text, bound=None)
    except MoneyError:
        return text


def _exact_int(text: str) -> Any:
    """A whole number of the file the same way, as an int; else the text written: YAML 1.1 reads
    010 as 8, 0x10 as 16, 1_000 as 1000, +5 as 5 and 1:30 as 90, which nobody billing means, and
    a JSON integer of thousands of digits is refused before Python's int() is asked to read it."""
    number = _exact_number(text)
    return int(number) if isinstance(number, Decimal) else number


def _decimal_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return _exact_number(str(loader.construct_scalar(node)))


def _decimal_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return _exact_int(str(loader.construct_scalar(node)))


def _plain_string(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return loader.construct_scalar(node)


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _decimal_float)
_ExactLoader.add_constructor("tag:yaml.org,2002:int", _decimal_int)
# dates are parsed by the schema so that "2026-01-15" and RFC 3339 datetimes share one rule
_ExactLoader.add_constructor("tag:yaml.org,2002:timestamp", _plain_string)


def parse_text(text: str, name: str) -> Any:
    """Parse catalog text; JSON when it looks like JSON or the name says so, else YAML.
    Refused (CatalogFileError) beyond MAX_DOCUMENT_BYTES, MAX_DEPTH or the alias limits."""
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise CatalogFileError(f"{name}: is larger than {MAX_DOCUMENT_BYTES} bytes")
    stripped = text.lstrip()
    if name.endswith(".json") or stripped.startswith(("{", "[")):
        try:
            document = _within_depth(json.loads(text, parse_float=_exact_number, parse_int=_exact_int), name)
        except json.JSONDecodeError as exc:
            raise CatalogFileError(
                f"{name}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except RecursionError:
            raise CatalogFileError(f"{name}: invalid JSON: nested too deeply") from None
        return _whole_characters(document, name)
    try:
        document = yaml.load(text, Loader=_ExactLoader)  # noqa: S506 - SafeLoader subclass, with limits
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogFileError(f"{name}: {where}invalid YAML: {problem}") from None
    except RecursionError:
        raise CatalogFileError(f"{name}: invalid YAML: nested too deeply") from None
    return _whole_characters(document, name)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole_characters(document: Any, name: str) -> Any:
    """The document, refused when a text holds half a character: an escape such as "\\ud83d" (one
    half of a UTF-16 pair; YAML never joins two escaped halves, JSON joins only a whole pair) is
    no character, and no file, page or database can hold it. Said with its path in the document."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                raise CatalogFileError(
                    f"{name}: {path or 'the document'}: holds half a character (U+{ord(found.group()):04X}, an "
                    "escape of one half of a UTF-16 pair): write the character itself, or in YAML its one escape "
                    "(\\U0001F680, not \\ud83d\\ude80)")
        elif isinstance(value, dict):
            for key, child in reversed(value.items()):  # popped in the document's order
                key_path = f"{path}.{key}" if path else str(key)
                stack.append((key, path or "the document"))
                stack.append((child, key_path))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{index}]") for index, child in reversed(list(enumerate(value))))
    return document


def _within_depth(document: Any, name: str) -> Any:
    """The JSON document, refused when nested deeper than MAX_DEPTH (YAML checks as it composes)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_DEPTH:
                    raise CatalogFileError(f"{name}: invalid JSON: nested more than {MAX_DEPTH} levels deep")
                stack.append((child, depth + 1))
    return document


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a catalog file; the result is a mapping (validated later, all problems at once)."""
    file = Path(path)
    try:
        too_big = file.stat().st_size > MAX_DOCUMENT_BYTES
    except OSError:
        too_big = False  # read_text reports the missing or unreadable file
    if too_big:
        raise CatalogFileError(f"{file}: is larger than {MAX_DOCUMENT_BYTES} bytes")
    text = read_text(file, "a catalog file", CatalogFileError, limit=MAX_DOCUMENT_BYTES)
    if not text.strip():
        raise CatalogFileError(f"{file}: is empty; a catalog needs at least `plans`")
    document = parse_text(text, str(file))
    if not isinstance(document, dict):
        raise CatalogFileError(
            f"{file}: the top level must be a mapping with billing_entity, meters, plans, "
            f"customers, subscriptions; found {type(document).__name__}"
        )
    return document
