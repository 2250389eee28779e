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

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

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
# Replaying the dump (44 tables, their indexes, constraints and partitions) and dropping the schema
# again afterwards cost PostgreSQL 0.5-1.3 s of DDL per test, and about 600 tests do it. A schema
# whose SHAPE is still exactly a fresh copy's when its test ends (same relations, columns,
# defaults, constraints, indexes, triggers, functions, sequences: `_shape`) is recycled instead:
# every table that ever held a row is truncated (a fresh table has no page at all), the
# template's rows and sequence values are written again, and it waits under a pool name for the
# next `at_head`, which takes it by renaming it. Anything else about it (a partition made on the
# fly, an altered column, a lock still held by another connection) and it is dropped as before.
POOL_PREFIX = "rc_pool_"
POOL_SIZE = 4
_pool: dict[str, list[str]] = {}  # server URL -> recycled schemas at head, this process's own
_shapes: dict[str, str] = {}  # server URL -> the shape of a fresh copy (schema name as @)

_SHAPE = """
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'class ' || c.relname || ' ' || c.relkind::text || c.relpersistence::text || c.relrowsecurity::text
         || coalesce(' ' || pg_get_expr(c.relpartbound, c.oid), '') || coalesce(' ' || c.reloptions::text, '')
         || coalesce(' ' || c.relacl::text, '') AS line
    FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace)
  UNION ALL
  SELECT 'column ' || c.relname || ' ' || a.attnum || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' ' || a.attnotnull::text || a.attisdropped::text || a.attidentity::text || a.attgenerated::text
         || coalesce(' ' || a.attcollation::text, '') || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = CAST(:schema AS regnamespace) AND a.attnum > 0
  UNION ALL
  SELECT 'constraint ' || coalesce(c.relname, '') || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
    FROM pg_constraint k LEFT JOIN pg_class c ON c.oid = k.conrelid
   WHERE k.connamespace = CAST(:schema AS regnamespace)
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid::text
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = CAST(:schema AS regnamespace)
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = CAST(:schema AS regnamespace) AND NOT t.tgisinternal
  UNION ALL
  SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' || md5(p.prosrc)
         || coalesce(' ' || p.proconfig::text, '')
    FROM pg_proc p WHERE p.pronamespace = CAST(:schema AS regnamespace)
  UNION ALL
  SELECT 'sequence ' || c.relname || ' ' || s.seqtypid::regtype::text || ' ' || s.seqstart || ' ' || s.seqincrement
         || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle::text
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = CAST(:schema AS regnamespace)
  UNION ALL
  SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
    FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace) AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'type ' || t.typname || ' ' || t.typtype::text
         || coalesce(' ' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                              FROM pg_enum e WHERE e.enumtypid = t.oid), '')
    FROM pg_type t WHERE t.typnamespace = CAST(:schema AS regnamespace) AND t.typrelid = 0
) AS shape
"""


def at_head_schema_shape(connection: Connection, schema: str) -> str:
    """Everything about `schema` a test could have changed but its rows, its own name written @."""
    shape = connection.execute(text(_SHAPE), {"schema": f'"{schema}"'}).scalar() or ""
    return shape.replace(schema, "@")


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
        if _take_from_pool(engine, base, schema):
            return
        script, template = _postgres_scripts[base]
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(script.replace(template, schema))  # one transaction: all of it or nothing
            raw.commit()
        finally:
            raw.close()
        if base not in _shapes:  # the first copy, before its test touches it: what a fresh one looks like
            with engine.connect() as connection:
                _shapes[base] = at_head_schema_shape(connection, schema)
    finally:
        engine.dispose()


def _take_from_pool(engine: Engine, base: str, schema: str) -> bool:
    pool = _pool.get(base)
    while pool:
        recycled = pool.pop()
        try:
            with engine.begin() as connection:  # the empty schema goes, the recycled one takes its name
                connection.execute(text(f'DROP SCHEMA "{schema}"'))  # RESTRICT: fails unless empty
                connection.execute(text(f'ALTER SCHEMA "{recycled}" RENAME TO "{schema}"'))
            return True
        except DBAPIError:
            _drop(engine, recycled)
            return False
    return False


def release(engine: Engine, base: str, schema: str) -> None:
    """The end of a test's schema (`engine` on `base`, autocommit): back to the pool when it can
    be made a fresh copy at head again, dropped otherwise."""
    if not _recycle(engine, base, schema):
        _drop(engine, schema)


def _drop(engine: Engine, schema: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _recycle(engine: Engine, base: str, schema: str) -> bool:
    shape = _shapes.get(base)
    scripts = _postgres_scripts.get(base)
    if shape is None or scripts is None or len(_pool.get(base, [])) >= POOL_SIZE:
        return False
    script, template = scripts
    rows = _reset_statements(script)
    if rows is None:
        return False
    pooled = f"{POOL_PREFIX}{uuid.uuid4().hex[:16]}"
    try:
        with engine.connect() as autocommit:
            connection = autocommit.execution_options(isolation_level="READ COMMITTED")  # one transaction
            connection.begin()
            connection.execute(text("SET LOCAL lock_timeout = '2s'"))
            if at_head_schema_shape(connection, schema) != shape:
                return False
            held = connection.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relnamespace = CAST(:schema AS regnamespace) AND l.pid <> pg_backend_pid()"),
                {"schema": f'"{schema}"'}).scalar()
            if held:
                return False  # another connection is still at work in it
            written = connection.execute(text(
                "SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = CAST(:schema AS regnamespace) "
                "AND relkind = 'r' AND pg_relation_size(oid) > 0"), {"schema": f'"{schema}"'}).scalars().all()
            if written:
                tables = ", ".join(f'"{schema}".{name}' for name in written)
                connection.exec_driver_sql(f"TRUNCATE {tables} CASCADE")
            for statement in rows:
                connection.exec_driver_sql(statement.replace(template, schema))
            connection.execute(text(f'ALTER SCHEMA "{schema}" RENAME TO "{pooled}"'))
            connection.commit()
    except DBAPIError:
        return False
    if base not in _pool:
        _pool[base] = []
        atexit.register(_drop_pool, base)
    _pool[base].append(pooled)
    return True


def _reset_statements(script: str) -> list[str] | None:
    """The template's rows and sequence values, one statement a line (None if one is not)."""
    statements = [line for line in script.splitlines()
                  if line.startswith(("INSERT INTO ", "SELECT pg_catalog.setval("))]
    return statements if all(line.endswith(";") for line in statements) else None


def _drop_pool(base: str) -> None:
    pooled, _pool[base] = _pool.get(base, []), []
    if not pooled:
        return
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        for schema in pooled:
            _drop(engine, schema)
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
