"""Read a catalog file into plain Python data, keeping every number exact.

YAML floats and JSON numbers become Decimal straight from their text, so `49.00`
written unquoted is exactly 49.00 and never passes through a float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ..textfile import read_text


class CatalogFileError(ValueError):
    """The file cannot be read or parsed; the message names the file and line."""


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader whose floats are Decimals and whose timestamps stay strings."""


def _decimal_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    lowered = str(text).lower().replace("_", "")
    if lowered in (".nan", ".inf", "-.inf", "+.inf"):
        return text
    return Decimal(lowered)


def _plain_string(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    return loader.construct_scalar(node)


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _decimal_float)
# dates are parsed by the schema so that "2026-01-15" and RFC 3339 datetimes share one rule
_ExactLoader.add_constructor("tag:yaml.org,2002:timestamp", _plain_string)


def parse_text(text: str, name: str) -> Any:
    """Parse catalog text; JSON when it looks like JSON or the name says so, else YAML."""
    stripped = text.lstrip()
    if name.endswith(".json") or stripped.startswith(("{", "[")):
        try:
            return json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise CatalogFileError(
                f"{name}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except RecursionError:
            raise CatalogFileError(f"{name}: invalid JSON: nested too deeply") from None
    try:
        return yaml.load(text, Loader=_ExactLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogFileError(f"{name}: {where}invalid YAML: {problem}") from None
    except RecursionError:
        raise CatalogFileError(f"{name}: invalid YAML: nested too deeply") from None


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a catalog file; the result is a mapping (validated later, all problems at once)."""
    file = Path(path)
    text = read_text(file, "a catalog file", CatalogFileError)
    if not text.strip():
        raise CatalogFileError(f"{file}: is empty; a catalog needs at least `plans`")
    document = parse_text(text, str(file))
    if not isinstance(document, dict):
        raise CatalogFileError(
            f"{file}: the top level must be a mapping with billing_entity, meters, plans, "
            f"customers, subscriptions; found {type(document).__name__}"
        )
    return document
