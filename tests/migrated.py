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
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ratecard.store import open_store

SEARCH_PATH = "options=-csearch_path%3D"

_folder: tempfile.TemporaryDirectory | None = None
_sqlite_template: Path | None = None
# server URL -> a migrated schema as pg_dump wrote it, None where it cannot be made
_postgres_scripts: dict[str, _Template | None] = {}


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
# defaults, constraints, indexes, triggers, functions, sequences: `_SHAPE`) is recycled instead:
# the tables its test wrote are emptied by one TRUNCATE (a fresh table has no page at all, so a
# table with a page was written), the template's rows go back into the seeded tables that were
# emptied, every sequence the test moved is set back to the template's position, and the schema
# waits under a pool name for the next `at_head`, which takes it by renaming it. Anything else
# about it (a partition made on the fly, an altered column, a lock still held by another
# connection) and it is dropped as before.
#
# Deparsing the whole shape (every column default, constraint, index and trigger) cost more than
# the reset itself, so a copy this process made or reset carries a FINGERPRINT taken when it was
# known fresh: which row versions of the catalogs describe it (pg_class, pg_attribute,
# pg_constraint… counted by the transaction that wrote them) and of the tables the migrations
# seeded. DDL writes new catalog row versions (PostgreSQL overwrites catalog rows in place only
# for statistics such as page counts, which are no part of the shape) and DROP deletes some, so
# the same fingerprint at the end of a test means the same shape. A different one (a TRUNCATE in
# the test, an ALTER, a copy this process did not make) only sends the schema through the full
# comparison, which decides as before.
POOL_PREFIX = "rc_pool_"
POOL_SIZE = 4
_pool: dict[str, list[str]] = {}  # server URL -> recycled schemas at head, this process's own
_shapes: dict[str, str] = {}  # server URL -> the shape of a fresh copy (schema name as @)
_fingerprints: dict[str, str] = {}  # schema -> its fingerprint when it was last a fresh copy
_servers: dict[str, Engine] = {}  # server URL -> one AUTOCOMMIT engine for this process

_IN_SCHEMA = "CAST(:schema AS regnamespace)"
_SHAPE = f"""
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'class ' || c.relname || ' ' || c.relkind::text || c.relpersistence::text || c.relrowsecurity::text
         || coalesce(' ' || pg_get_expr(c.relpartbound, c.oid), '') || coalesce(' ' || c.reloptions::text, '')
         || coalesce(' ' || c.relacl::text, '') AS line
    FROM pg_class c WHERE c.relnamespace = {_IN_SCHEMA}
  UNION ALL
  SELECT 'column ' || c.relname || ' ' || a.attnum || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' ' || a.attnotnull::text || a.attisdropped::text || a.attidentity::text || a.attgenerated::text
         || coalesce(' ' || a.attcollation::text, '') || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = {_IN_SCHEMA} AND a.attnum > 0
  UNION ALL
  SELECT 'constraint ' || coalesce(c.relname, '') || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
    FROM pg_constraint k LEFT JOIN pg_class c ON c.oid = k.conrelid
   WHERE k.connamespace = {_IN_SCHEMA}
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) || ' ' || i.indisvalid::text
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = {_IN_SCHEMA}
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = {_IN_SCHEMA} AND NOT t.tgisinternal
  UNION ALL
  SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' || md5(p.prosrc)
         || coalesce(' ' || p.proconfig::text, '')
    FROM pg_proc p WHERE p.pronamespace = {_IN_SCHEMA}
  UNION ALL
  SELECT 'sequence ' || c.relname || ' ' || s.seqtypid::regtype::text || ' ' || s.seqstart || ' ' || s.seqincrement
         || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle::text
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = {_IN_SCHEMA}
  UNION ALL
  SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
    FROM pg_class c WHERE c.relnamespace = {_IN_SCHEMA} AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'type ' || t.typname || ' ' || t.typtype::text
         || coalesce(' ' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                              FROM pg_enum e WHERE e.enumtypid = t.oid), '')
    FROM pg_type t WHERE t.typnamespace = {_IN_SCHEMA} AND t.typrelid = 0
) AS shape
"""
# the row versions of every catalog `_SHAPE` reads, per catalog and writing transaction (the
# schema's relations looked up once: pg_class has no index on the namespace alone)
_CATALOG_VERSIONS = f"""
  SELECT 'class ' || xmin::text AS version FROM relations
  UNION ALL SELECT 'attribute ' || a.xmin::text FROM pg_attribute a JOIN relations r ON r.oid = a.attrelid
  UNION ALL SELECT 'default ' || d.xmin::text FROM pg_attrdef d JOIN relations r ON r.oid = d.adrelid
  UNION ALL SELECT 'constraint ' || xmin::text FROM pg_constraint WHERE connamespace = {_IN_SCHEMA}
  UNION ALL SELECT 'index ' || i.xmin::text FROM pg_index i JOIN relations r ON r.oid = i.indexrelid
  UNION ALL SELECT 'trigger ' || t.xmin::text FROM pg_trigger t JOIN relations r ON r.oid = t.tgrelid
  UNION ALL SELECT 'function ' || xmin::text FROM pg_proc WHERE pronamespace = {_IN_SCHEMA}
  UNION ALL SELECT 'sequence ' || s.xmin::text FROM pg_sequence s JOIN relations r ON r.oid = s.seqrelid
  UNION ALL SELECT 'rule ' || w.xmin::text FROM pg_rewrite w JOIN relations r ON r.oid = w.ev_class
  UNION ALL SELECT 'type ' || xmin::text FROM pg_type WHERE typnamespace = {_IN_SCHEMA}
  UNION ALL SELECT 'enum ' || e.xmin::text FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
   WHERE t.typnamespace = {_IN_SCHEMA}"""
# for the reset's transaction: a catalog query of a few milliseconds is not worth starting parallel
# workers (the planner, misled by the churn of test schemas, would); a lock still held elsewhere
# means "drop it", not "wait"; and the commit need not wait for the disk: were the server to lose
# it, the rename to the pool name would be lost with it, so `_take_from_pool` would not find the
# schema and would make a new copy
_QUICK = ("SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL lock_timeout = '2s'; "
          "SET LOCAL synchronous_commit = off")
# every table of schema @ locked against writers until the reset commits; NOWAIT: a writer
# still at work means "drop it" (a DBAPIError), not "wait"
_LOCK_TABLES = """DO $$ DECLARE tables text; BEGIN
  SELECT string_agg(oid::regclass::text, ', ') INTO tables FROM pg_class
   WHERE relnamespace = '"@"'::regnamespace AND relkind IN ('r', 'p');
  IF tables IS NOT NULL THEN EXECUTE 'LOCK TABLE ' || tables || ' IN EXCLUSIVE MODE NOWAIT'; END IF;
END $$"""
_SETVAL = re.compile(r"^SELECT pg_catalog\.setval\('(.+)', (-?\d+), (true|false)\);$")


@dataclass(frozen=True)
class _Template:
    """A migrated schema as pg_dump wrote it, and what resetting a copy of it takes."""

    script: str  # DDL and rows; `name` stands for the schema
    name: str
    seeded: dict[str, list[str]]  # table (as the dump names it) -> its INSERT statements
    sequences: list[tuple[str, str, str]]  # (sequence as the dump names it, position, is_called)
    resettable: bool  # every row and sequence position is one statement a line: a copy can be reset

    def fingerprint_query(self, schema: str) -> str:
        rows = "".join(f"\n  UNION ALL SELECT 'row {table} ' || xmin::text || ctid::text FROM "
                       f"{table.replace(self.name, schema)}" for table in self.seeded)
        return (f"WITH relations AS MATERIALIZED (SELECT oid, xmin FROM pg_class WHERE relnamespace = {_IN_SCHEMA})\n"
                f"SELECT string_agg(version || ' ' || versions, E'\\n' ORDER BY version) FROM (\n"
                f"SELECT version, count(*)::text AS versions FROM ({_CATALOG_VERSIONS}{rows}\n"
                f") AS versions GROUP BY version) AS counted")

    def reset_script(self, schema: str, truncated: list[str]) -> list[str]:
        """Empties `truncated` (tables of `schema`, quoted), writes the template's rows back into
        the seeded ones among them, and sets back every sequence that is not where the template's is."""
        statements = [f"TRUNCATE {', '.join(truncated)} CASCADE"] if truncated else []
        emptied = set(truncated)
        for table, inserts in self.seeded.items():
            if _qualified(table.replace(self.name, schema)) in emptied:
                statements += inserts
        for sequence, position, called in self.sequences:
            statements.append(f"SELECT pg_catalog.setval('{sequence}', {position}, {called}) FROM {sequence} "
                              f"WHERE (last_value, is_called) IS DISTINCT FROM ({position}::bigint, {called})")
        return [statement.rstrip(";").replace(self.name, schema) for statement in statements]


def _qualified(dumped: str) -> str:
    """A table as the dump names it (schema.table, quoted where needed) as `_written` names it."""
    schema, _, table = dumped.partition(".")
    return f'"{schema.strip(chr(34))}".{table}'


def server(url: str) -> Engine:
    """This process's AUTOCOMMIT engine on the PostgreSQL server at `url`: the test fixtures make,
    recycle and drop their schemas through it instead of connecting anew each time."""
    engine = _servers.get(url)
    if engine is None:
        engine = _servers[url] = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=2)
        atexit.register(_in_this_process(engine.dispose))
    return engine


def _in_this_process(cleanup: Callable[..., None]) -> Callable[..., None]:
    """`cleanup` for atexit, done only by the process that registered it: a child forked by a test
    that exits normally must neither close the parent's connections nor drop its pool."""
    owner = os.getpid()

    def run(*args: object) -> None:
        if os.getpid() == owner:
            cleanup(*args)
    return run


def at_head_schema_shape(connection: Connection, schema: str) -> str:
    """Everything about `schema` a test could have changed but its rows, its own name written @."""
    shape = connection.execute(text(_SHAPE), {"schema": f'"{schema}"'}).scalar() or ""
    return shape.replace(schema, "@")


def _fingerprint(connection: Connection, template: _Template, schema: str) -> str:
    return connection.execute(text(template.fingerprint_query(schema)), {"schema": f'"{schema}"'}).scalar() or ""


def _postgres_at_head(base: str, url: str, schema: str) -> None:
    engine = server(base)
    with engine.connect() as connection:
        used = connection.execute(text(
            "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))"), {"s": schema}).scalar()
    if used:
        return
    if base not in _postgres_scripts:
        _postgres_scripts[base] = _dump_migrated_schema(base)
    template = _postgres_scripts[base]
    if template is None:
        return
    if _take_from_pool(engine, base, schema):
        return
    # a connection of its own: the dump's SETs (search_path '', …) stay with it, not with `server`'s
    replaying = create_engine(base, poolclass=NullPool)
    try:
        with replaying.begin() as connection:  # one transaction: all of it or nothing
            connection.exec_driver_sql(template.script.replace(template.name, schema))
            connection.exec_driver_sql(_QUICK)
            fingerprint = _fingerprint(connection, template, schema)
    finally:
        replaying.dispose()
    if base not in _shapes:  # the first copy, before its test touches it: what a fresh one looks like
        with engine.connect() as connection:
            _shapes[base] = at_head_schema_shape(connection, schema)
    _fingerprints[schema] = fingerprint


def _take_from_pool(engine: Engine, base: str, schema: str) -> bool:
    pool = _pool.get(base)
    while pool:
        recycled = pool.pop()
        try:
            with engine.begin() as connection:  # the empty schema goes, the recycled one takes its name
                connection.exec_driver_sql(f'DROP SCHEMA "{schema}";'  # RESTRICT: fails unless empty
                                           f'ALTER SCHEMA "{recycled}" RENAME TO "{schema}"')
        except DBAPIError:
            _fingerprints.pop(recycled, None)
            _drop(engine, recycled)
            return False
        _fingerprints[schema] = _fingerprints.pop(recycled)
        return True
    return False


def release(engine: Engine, base: str, schema: str) -> None:
    """The end of a test's schema (`engine` on `base`, autocommit): back to the pool when it can
    be made a fresh copy at head again, dropped otherwise."""
    known = _fingerprints.pop(schema, None)
    if not _recycle(engine, base, schema, known):
        _drop(engine, schema)


def _drop(engine: Engine, schema: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _recycle(engine: Engine, base: str, schema: str, known: str | None) -> bool:
    shape = _shapes.get(base)
    template = _postgres_scripts.get(base)
    if shape is None or template is None or not template.resettable or len(_pool.get(base, [])) >= POOL_SIZE:
        return False
    pooled = f"{POOL_PREFIX}{uuid.uuid4().hex[:16]}"
    try:
        with engine.connect() as autocommit:
            connection = autocommit.execution_options(isolation_level="READ COMMITTED")  # one transaction
            connection.begin()
            connection.exec_driver_sql(_QUICK)
            # from here on nothing else writes its tables: a write a test left behind (a store's
            # ingestion figures, flushed by a timer a second later) landing between the look at
            # which tables hold rows and the TRUNCATE would otherwise reach the next test
            connection.exec_driver_sql(_LOCK_TABLES.replace("@", schema))
            fingerprint = _fingerprint(connection, template, schema)
            unchanged = fingerprint == known
            if not unchanged and at_head_schema_shape(connection, schema) != shape:
                return False
            held, written = _held_and_written(connection, template, schema, seeded_too=not unchanged)
            if held:
                return False  # another connection is still at work in it
            connection.exec_driver_sql(";\n".join(
                [*template.reset_script(schema, written), f'ALTER SCHEMA "{schema}" RENAME TO "{pooled}"']))
            if written:  # TRUNCATE gave the emptied tables (and their indexes) new catalog row versions
                fingerprint = _fingerprint(connection, template, pooled)
            connection.commit()
    except DBAPIError:
        return False
    if base not in _pool:
        _pool[base] = []
        atexit.register(_in_this_process(_drop_pool), base)
    _pool[base].append(pooled)
    _fingerprints[pooled] = fingerprint
    return True


def _held_and_written(connection: Connection, template: _Template, schema: str,
                      seeded_too: bool) -> tuple[bool, list[str]]:
    """Whether another connection holds a lock in `schema`, and its tables that hold a page,
    quoted: every one a test wrote to. A seeded table always holds one; it counts when
    `seeded_too` (its rows may have changed: the fingerprint did)."""
    held, written = connection.execute(text(
        "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        f"               WHERE c.relnamespace = {_IN_SCHEMA} AND l.pid <> pg_backend_pid()), "
        f"       ARRAY(SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = {_IN_SCHEMA} "
        "             AND relkind = 'r' AND pg_relation_size(oid) > 0)"), {"schema": f'"{schema}"'}).one()
    seeded = {_qualified(table.replace(template.name, schema)) for table in template.seeded}
    tables = [f'"{schema}".{name}' for name in written]
    return held, tables if seeded_too else [table for table in tables if table not in seeded]


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


def _dump_migrated_schema(base: str) -> _Template | None:
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
    seeded: dict[str, list[str]] = {}
    sequences = []
    resettable = True
    for line in statements:
        if line.startswith("INSERT INTO "):
            resettable &= line.endswith(");")  # not a row over several lines
            seeded.setdefault(line.split(" ", 3)[2], []).append(line)
        elif line.startswith("SELECT pg_catalog.setval("):
            found = _SETVAL.match(line)
            resettable &= found is not None
            if found is not None:
                sequences.append(found.groups())
    return _Template(script, schema, seeded, sequences, resettable)
