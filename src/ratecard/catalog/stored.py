"""A catalog built from its stored JSON without holding its customers and subscriptions as models.

CatalogDocument.model_validate of a whole document keeps a pydantic model per customer and per
subscription (about 1.4 KB each, with its __dict__ and fields-set): at 100,000 customers and
subscriptions, about 300 MiB that an invoice run never reads once the specs are built. Here the
rest of the document is validated as usual, each customer and subscription is validated alone
(the same models and checks: the document has no check across items) and dropped once its spec
is built, and the document itself is kept packed for whoever asks for it (catalog.source).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from .model import Catalog, resolve_catalog
from .schema import CatalogDocument, Customer, Subscription
from .source import DocumentSource


def catalog_from_json(text: str | bytes) -> Catalog:
    """The catalog of a stored (validated, canonical) document's JSON text."""
    source = DocumentSource.packed(text)
    raw = orjson.loads(text)
    customers = raw.pop("customers", None) or []
    subscriptions = raw.pop("subscriptions", None) or []
    rest = CatalogDocument.model_validate(raw)
    return resolve_catalog(rest, _validated(Customer, customers), _validated(Subscription, subscriptions), source)


def _validated(model: Any, items: list[Any]) -> Iterator[Any]:
    """Each item validated in turn; its raw form is released as soon as it is, so the raw document
    and the models are never held whole at once."""
    for index, item in enumerate(items):
        items[index] = None
        yield model.model_validate(item)
