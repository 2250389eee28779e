"""The Alembic migrations build exactly the schema the code declares, on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ratecard.store import open_store
from ratecard.store.db import MIGRATIONS
from ratecard.store.schema import metadata


def test_migrations_match_the_declared_schema(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    store.dispose()
    assert differences == []


def test_opening_twice_migrates_once(db_url: str) -> None:
    open_store(db_url).dispose()
    store = open_store(db_url)
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == _head()
    store.dispose()


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_the_quick_head_check_agrees_with_alembic() -> None:
    from ratecard.store.db import head_revision

    assert head_revision() == _head()
