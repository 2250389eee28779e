"""A test database at the newest migration in milliseconds: a copy of one migrated once per process.

Migrating an empty database from scratch takes 0.2 s on SQLite and 0.5-1 s on PostgreSQL, and
several hundred tests start from one. `at_head(url)` fills the EMPTY database at `url` (a `db_url`)
with a copy of a template that Alembic migrated once in this process: the SQLite file copied, or
the PostgreSQL schema replayed from `pg_dump` of the template's (schema, sequences, constraints and
rows such as alembic_version). Opening the store then finds it at head, as it would after its own
migration. A database that is not empty is left alone, and so is everything when the template
cannot be made (no pg_dump, say): the store then migrates itself as usual.

Tests about migrating (tests/integration/test_migrations.py, upgrades with data in them) take
`db_url` as it is, empty; the path from an empty database is run in process by every e2e command
on a new database and by every `ratecard` process the suite starts.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import create_engine, make_url, text

from ratecard.store import open_store

SEARCH_PATH = "options=-csearch_path%3D"

_folder: tempfile.TemporaryDirectory | None = None
_sqlite_template: Path | None = None
# server URL -> (DDL and rows of a migrated schema, that schema's name), None where it cannot be made
_postgres_scripts: dict[str, tuple[str, str] | None] = {}


def at_head(url: str) -> str:
    """Bring the empty test database at `url` to the newest migration; returns `url`."""
    if url.startswith("sqlite:///"):
        _sqlite_at_head(Path(url.removeprefix("sqlite:///").split("?", 1)[0]))
    elif SEARCH_PATH in url:
        base, schema = url.split("?", 1)[0], unquote(url.split(SEARCH_PATH, 1)[1].split("&", 1)[0])
        _postgres_at_head(base, url, schema)
    return url


# ---------------------------------------------------------------------------------------- SQLite
def _sqlite_at_head(path: Path) -> None:
    global _sqlite_template
    if path.exists() and path.stat().st_size > 0:
        return
    if _sqlite_template is None:
        template = _scratch() / f"head-{uuid.uuid4().hex}.db"
        open_store(f"sqlite:///{template}").dispose()  # the last connection closing folds the WAL in
        assert not Path(f"{template}-wal").exists(), "the template's write-ahead log was not folded in"
        _sqlite_template = template
    shutil.copyfile(_sqlite_template, path)


def _scratch() -> Path:
    global _folder
    if _folder is None:
        _folder = tempfile.TemporaryDirectory(prefix="ratecard-template-")
        atexit.register(_folder.cleanup)
    return Path(_folder.name)


# ------------------------------------------------------------------------------------ PostgreSQL
def _postgres_at_head(base: str, url: str, schema: str) -> None:
    engine = create_engine(base)
    try:
        with engine.connect() as connection:
            tables = connection.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                                        {"s": schema}).scalar()
        if tables:
            return
        if base not in _postgres_scripts:
            _postgres_scripts[base] = _dump_migrated_schema(base)
        if _postgres_scripts[base] is None:
            return
        script, template = _postgres_scripts[base]
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(script.replace(template, schema))  # one transaction: all of it or nothing
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


def _dump_migrated_schema(base: str) -> tuple[str, str] | None:
    """Migrate a schema of our own with Alembic, dump it and drop it. Its name (rc_template_ and 12
    hex digits, which nothing else in a dump contains) is what each copy replaces with its own."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return None
    schema = f"rc_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        open_store(f"{base}?{SEARCH_PATH}{schema}").dispose()
        parts = make_url(base)
        env = {**os.environ, **({"PGPASSWORD": parts.password} if parts.password else {})}
        command = [pg_dump, "--schema", schema, "--inserts", "--no-owner", "--no-privileges",
                   "--host", parts.host or "localhost", "--port", str(parts.port or 5432),
                   "--username", parts.username or "postgres", parts.database or "postgres"]
        dumped = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        if dumped.returncode != 0:
            return None
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    statements = []
    for line in dumped.stdout.splitlines():
        if line.startswith(("\\", "--")) or line.startswith(f"CREATE SCHEMA {schema};"):
            continue  # psql's own commands, comments, and the schema each copy already has
        statements.append(line)
    script = "\n".join(statements)
    if "alembic_version" not in script:
        return None
    return script, schema
