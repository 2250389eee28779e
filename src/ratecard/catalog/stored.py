"""A catalog built from its stored JSON without holding its customers and subscriptions whole.

CatalogDocument.model_validate of a whole document keeps a pydantic model per customer and per
subscription (about 1.4 KB each, with its __dict__ and fields-set), and parsing the JSON first
holds every item as dicts (about 190 MB, and orjson's own parse tree on top while it runs): at
100,000 customers and subscriptions the catalog alone took over 600 MiB. Here the rest of the
document is parsed and validated as usual; the customers and subscriptions are read from the text
one item at a time, each validated alone (the same models and checks: the document has no check
across items) and dropped once its spec is built. The document itself is kept packed for whoever
asks for it (catalog.source).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .model import Catalog, resolve_catalog
from .schema import CatalogDocument, Customer, Subscription
from .source import DocumentSource

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
ITEMIZED = ("customers", "subscriptions")


def catalog_from_json(text: str) -> Catalog:
    """The catalog of a stored (validated, canonical) document's JSON text."""
    rest, arrays = _members(text, ITEMIZED)
    document = CatalogDocument.model_validate(rest)
    return resolve_catalog(document,
                           (Customer.model_validate(item) for item in _items(text, arrays.get("customers"))),
                           (Subscription.model_validate(item) for item in _items(text, arrays.get("subscriptions"))),
                           DocumentSource.packed(text))


def subscription_entries(source: DocumentSource) -> Iterator[Subscription]:
    """The catalog's subscriptions as document entries, one at a time: from the document when it is
    held, else validated item by item from the stored text (none of them kept)."""
    found = source.held_or_text()
    if isinstance(found, CatalogDocument):
        yield from found.subscriptions
        return
    _, arrays = _members(found, ITEMIZED)  # the customers too are passed over, not decoded whole
    for item in _items(found, arrays.get("subscriptions")):
        yield Subscription.model_validate(item)


def _members(text: str, itemized: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, int]]:
    """The members of the JSON object `text`, decoded, except the arrays named in `itemized`: their
    offset in `text` instead (read later with _items)."""
    members: dict[str, Any] = {}
    arrays: dict[str, int] = {}
    at = _expect(text, _space(text, 0), "{")
    if text.startswith("}", at):
        return members, arrays
    while True:
        key, at = _DECODER.raw_decode(text, at)
        at = _expect(text, at, ":")
        if key in itemized and text.startswith("[", at):
            arrays[key] = at
            at = _past(_items(text, at))  # decoded and dropped: read again, item by item, once built
        else:
            members[key], at = _DECODER.raw_decode(text, at)
        at = _space(text, at)
        if text.startswith("}", at):
            return members, arrays
        at = _expect(text, at, ",")


def _items(text: str, at: int | None) -> Iterator[Any]:
    """Each item of the JSON array at offset `at` of `text` (none when `at` is None), decoded one at a
    time; the generator's return value is the offset after the array."""
    if at is None:
        return
    at = _expect(text, at, "[")
    if text.startswith("]", at):
        return at + 1
    while True:
        item, at = _DECODER.raw_decode(text, at)
        yield item
        at = _space(text, at)
        if text.startswith("]", at):
            return at + 1
        at = _expect(text, at, ",")


def _past(items: Iterator[Any]) -> int:
    """The offset after the array: an _items generator run to its end, its items dropped."""
    while True:
        try:
            next(items)
        except StopIteration as done:
            return done.value


def _space(text: str, at: int) -> int:
    return _SPACE.match(text, at).end()


def _expect(text: str, at: int, token: str) -> int:
    """The offset after `token` (and the space after it) at `at`, or ValueError."""
    at = _space(text, at)
    if not text.startswith(token, at):
        raise ValueError(f"stored catalog: expected {token!r} at offset {at}")
    return _space(text, at + 1)
