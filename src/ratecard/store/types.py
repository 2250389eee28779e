"""Column types that keep money exact on both stores."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class ExactDecimal(TypeDecorator):
    """NUMERIC in PostgreSQL, TEXT in SQLite; Decimal in Python either way, never float."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return Decimal(value)
        return format(Decimal(value), "f")

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class JsonText(TypeDecorator):
    """JSONB in PostgreSQL (queried with ->>), TEXT in SQLite (queried with json_extract).

    Values are written as JSON text by the ingest path (COPY / executemany) and by UPDATEs that
    cast the text in SQL, so decimals never pass through a Python float. Read it back with
    CAST(properties AS TEXT) for the same reason.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(Text())

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        import orjson

        return orjson.dumps(value).decode()


def sqlite_json_path(name: str) -> str:
    """SQLite's JSON path to the property `name` of an event's properties (a quoted key; SQLite has
    no escape for a backslash and reads an escaped quote as absent: catalog check refuses both)."""
    return '$."' + name.replace('"', '\\"') + '"'
