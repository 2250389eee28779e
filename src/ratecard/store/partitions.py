"""Monthly partitions of the events table on PostgreSQL: list, create ahead, split the default
partition, detach a month to archive it. SQLite keeps one events table; nothing here runs there.

A month is [first day 00:00 UTC, first day of the next month) in µs, the unit of events.ts.
Partitions are named events_YYYY_MM, the catch-all is events_default, and a detached month
becomes the plain table events_archive_YYYY_MM (its rows untouched, its ids still held in
event_ids: an archived event's id is never stored again).

An archived month is guarded: the detach adds to the default partition the check constraint
events_default_archived_YYYY_MM (ts outside the month), so no row of that month can be stored
any more, whatever process writes it and however old its cached view of the partitions (the
month has no partition: such a row would land in the default partition, and the next invoice
run would recompute the month's closed periods from the events still attached). The guards are
also the record of what is archived (they outlive a dropped archive table): the validators
refuse such events one by one, as `archived_period`, from the fingerprint's figure
(ARCHIVED_FIGURE, read with every catalog fingerprint). Why both: the validators are cached per
catalog version in every serving process, and a detach is made by another one (the CLI); the
fingerprint tells them at their next request, and the group commit, which reads it in its
insert statement, answers a request checked before the detach stale, so it is checked again and
its events of the month refused with their reason. The guard covers what no fingerprint check
covers (a batch written alone, a file import, checked just before the detach and written just
after): the write fails whole instead of storing the event (archive_refused tells that failure).
`attach_month` undoes a detach: the archive becomes the month's partition and the guard is
dropped in one transaction (the fingerprint's figure changes with it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .db import Store
from .rollups import refresh_span

DEFAULT = "events_default"
ARCHIVE_PREFIX = "events_archive_"
# the tables of the partitioning scheme: not in schema.py (SQLite has none), never compared with it
PARTITION_TABLE = re.compile(r"^events_(\d{4}_\d{2}|default|archive_\d{4}_\d{2})$")
ID_TABLE = "event_ids"
GUARD_PREFIX = "events_default_archived_"  # + YYYY_MM: the check constraint of an archived month
# the archived months as the guards name them ('2026_01,2026_02'; NULL: none), for the driver
# itself (no placeholder, no '%'): one index probe of pg_constraint, read with every fingerprint
ARCHIVED_FIGURE = (f"(SELECT string_agg(substr(conname, {len(GUARD_PREFIX) + 1}), ',' ORDER BY conname) "
                   "FROM pg_constraint WHERE conrelid = to_regclass('events_default') AND contype = 'c' "
                   f"AND left(conname, {len(GUARD_PREFIX)}) = '{GUARD_PREFIX}')")
_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


def is_partitioning_table(name: str) -> bool:
    """A table that exists only because events are partitioned (a month, the default, an archive,
    event_ids)."""
    return name == ID_TABLE or PARTITION_TABLE.match(name) is not None


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of_micros(cls, micros: int) -> Month:
        moment = datetime.fromtimestamp(micros / 1_000_000, UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def parse(cls, label: str) -> Month | None:
        """'2026-01' -> Month(2026, 1); None when it is not a month of years 1970-9998."""
        found = re.fullmatch(r"(\d{4})-(\d{2})", label.strip())
        if found is None:
            return None
        year, month = int(found.group(1)), int(found.group(2))
        return cls(year, month) if 1970 <= year <= 9998 and 1 <= month <= 12 else None

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def name(self) -> str:
        return f"events_{self.year:04d}_{self.month:02d}"

    @property
    def archive_name(self) -> str:
        return f"{ARCHIVE_PREFIX}{self.year:04d}_{self.month:02d}"

    @property
    def guard_name(self) -> str:
        """The check constraint on the default partition that refuses the month once archived."""
        return f"{GUARD_PREFIX}{self.year:04d}_{self.month:02d}"

    @property
    def start_us(self) -> int:
        return int(datetime(self.year, self.month, 1, tzinfo=UTC).timestamp()) * 1_000_000

    @property
    def end_us(self) -> int:
        return self.plus(1).start_us


@dataclass
class Partition:
    name: str
    kind: str  # month | default | archived (detached: no longer part of events)
    month: str | None  # YYYY-MM, None for the default partition
    start_us: int | None
    end_us: int | None
    rows: int  # exact, or the planner's estimate (see list_partitions)
    bytes: int  # table, indexes and TOAST


def list_partitions(store: Store, exact: bool = False) -> list[Partition]:
    """The partitions of events and the archived months, in time order (the default last).

    Rows are the planner's estimate unless `exact` (a count of each partition: a full scan, minutes
    for a month of hundreds of millions of events); a table never analysed is counted anyway."""
    query = text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint, "
        "pg_total_relation_size(c.oid), EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid "
        "AND i.inhparent = to_regclass('events')) "
        "FROM pg_class c WHERE c.relkind = 'r' "
        "AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass('events')) "
        "AND (c.relname ~ '^events_[0-9]{4}_[0-9]{2}$' OR c.relname = 'events_default' "
        "OR c.relname ~ '^events_archive_[0-9]{4}_[0-9]{2}$')"
    )
    found: list[Partition] = []
    with store.engine.connect() as connection:
        for name, bound, estimate, size, attached in connection.execute(query):
            if name.startswith(ARCHIVE_PREFIX):
                span = _named_month(name.removeprefix(ARCHIVE_PREFIX))
                if attached or span is None:
                    continue  # an archive of no month (an operator's own events_archive_2031_13): not ours
                kind, start, end, label = "archived", span.start_us, span.end_us, span.label
            elif not attached:
                continue  # a table of that name outside the scheme: not ours to show
            elif name == DEFAULT:
                kind, start, end, label = "default", None, None, None
            else:
                bounds = _BOUND.search(bound or "")
                if bounds is None:
                    continue
                start, end = int(bounds.group(1)), int(bounds.group(2))
                kind, label = "month", Month.of_micros(start).label
            rows = estimate
            if exact or estimate < 0:
                rows = connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            found.append(Partition(name, kind, label, start, end, rows, size))
    return sorted(found, key=lambda p: (p.kind == "default", p.start_us or 0, p.kind))


def archived_months(store: Store) -> list[Month]:
    """The months detached to an archive table, or guarded as archived (the guard outlives a
    dropped archive table); none on SQLite."""
    if not store.is_postgres:
        return []
    query = text(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' "
        "AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass('events')) "
        "AND c.relname ~ '^events_archive_[0-9]{4}_[0-9]{2}$' "
        "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)"
    )
    with store.engine.connect() as connection:
        names = connection.execute(query).scalars().all()
        guarded = _guarded_months(connection.execute(text(f"SELECT {ARCHIVED_FIGURE}")).scalar_one())
    archived = (_named_month(name.removeprefix(ARCHIVE_PREFIX)) for name in names)
    return sorted({*(month for month in archived if month is not None), *guarded})


def _named_month(suffix: str) -> Month | None:
    """The month a table's or a guard's name ends with ('2031_01'); None when that is no month (a
    look-alike name an operator gave their own table or constraint: '2031_13', 'manual')."""
    return Month.parse(suffix.replace("_", "-")) if re.fullmatch(r"\d{4}_\d{2}", suffix) else None


def _guarded_months(figure: str | None) -> list[Month]:
    """The months an ARCHIVED_FIGURE names ('' or None: none); a look-alike constraint name that
    is no month names none."""
    found = (_named_month(part) for part in (figure or "").split(","))
    return [month for month in found if month is not None]


def archived_spans(figure: str) -> list[tuple[int, int]]:
    """The [start, end) in µs of the months an ARCHIVED_FIGURE names ('' or None: none)."""
    return [(month.start_us, month.end_us) for month in _guarded_months(figure)]


def archive_refused(exc: BaseException) -> bool:
    """Whether a write failed on an archived month's guard: it held an event of that month,
    checked by a process that had not seen the detach yet (the driver's error, or SQLAlchemy's
    wrapping it)."""
    error = getattr(exc, "orig", None) or exc
    if getattr(error, "sqlstate", None) != "23514":  # check_violation
        return False
    name = getattr(getattr(error, "diag", None), "constraint_name", None) or ""
    return name.startswith(GUARD_PREFIX)


def guarded_spans(store: Store) -> list[tuple[int, int]]:
    """The months no event may be stored in any more (archived), as [start, end) in µs; none on SQLite."""
    if not store.is_postgres:
        return []
    with store.engine.connect() as connection:
        return archived_spans(connection.execute(text(f"SELECT {ARCHIVED_FIGURE}")).scalar_one())


def default_months(store: Store, until: Month) -> list[Month]:
    """The months up to `until` that have events waiting in the default partition."""
    query = text(
        "SELECT DISTINCT extract(year FROM moment)::int, extract(month FROM moment)::int FROM "
        f"(SELECT to_timestamp(ts / 1000000.0) AT TIME ZONE 'UTC' AS moment FROM {DEFAULT} "
        "WHERE ts < :until AND ts >= 0) AS t"
    )
    with store.engine.connect() as connection:
        return sorted(Month(year, month) for year, month in connection.execute(query, {"until": until.end_us}))


def create_month(store: Store, month: Month) -> dict[str, Any] | None:
    """Make the month's partition, moving its events out of the default partition if it holds
    any; None when the month has a partition already. One transaction.

    Writes to events wait while it runs (reads go on): the table is made on its own, filled from
    the default partition when that holds events of the month (PostgreSQL refuses to attach a
    range the default partition holds rows of), then attached, which needs no exclusive lock on
    events itself. Deleting the moved rows from the default partition releases their ids (the
    release trigger); they are claimed again before commit."""
    with store.engine.begin() as connection:
        # the parent first, as every writer locks it first: no lock-order deadlock with inserts
        connection.execute(text("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE"))
        if _attached(connection, month.name):
            return None
        if _guarded(connection, month):
            raise PartitionError(f"{month.label} is archived ({month.archive_name}); re-attach the archive instead "
                                 f"(`ratecard events partitions attach {month.label}`)")
        if connection.execute(text(f"SELECT to_regclass('{month.name}') IS NOT NULL")).scalar_one():
            raise PartitionError(f"a table {month.name} exists already and is not a partition of events; "
                                 "rename or drop it first")
        bounds = {"start": month.start_us, "end": month.end_us}
        connection.execute(text(f"CREATE TABLE {month.name} (LIKE events INCLUDING DEFAULTS)"))
        # the range as a check constraint: ATTACH then trusts it instead of scanning the table again
        connection.execute(text(f"ALTER TABLE {month.name} ADD CONSTRAINT {month.name}_range "
                                f"CHECK (ts >= {month.start_us} AND ts < {month.end_us})"))
        moved = connection.execute(text(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE ts >= :start AND ts < :end RETURNING *) "
            f"INSERT INTO {month.name} SELECT * FROM moved"), bounds).rowcount
        if moved:
            connection.execute(text(f"INSERT INTO {ID_TABLE} (environment, id) SELECT environment, id "
                                    f"FROM {month.name} ON CONFLICT DO NOTHING"))
        connection.execute(text(
            f"ALTER TABLE events ATTACH PARTITION {month.name} FOR VALUES FROM ({month.start_us}) TO ({month.end_us})"))
        connection.execute(text(f"ALTER TABLE {month.name} DROP CONSTRAINT {month.name}_range"))
    return {"month": month.label, "name": month.name, "moved": moved}


class PartitionError(RuntimeError):
    """The partitions are not in a state that allows this; the message says why."""


@dataclass
class MonthState:
    """What stands between a month and its archive (live environment; see `detach_month`)."""

    month: str
    attached: bool
    rows: int = 0
    unmatched: int = 0  # stored, not matched, not deleted: reprocessing could still bill them
    unfinalized: int = 0  # matched, not deleted, outside every final invoice's window
    pending_backfills: int = 0  # pending backfills starting before the month ends: their close would bill it
    # or correct its final invoices (a close corrects every final invoice cut after the window's start)
    detached_as: str | None = None

    @property
    def settled(self) -> bool:
        return self.attached and not self.unmatched and not self.unfinalized and not self.pending_backfills


# An event is inside a finalized window when a final invoice of its customer has a line billed
# in arrears (not 'advance') whose service window holds its timestamp: the same test that flags
# an arriving event late (store/invoices.py, finalized_windows).
_UNFINALIZED = (
    "SELECT count(*) FILTER (WHERE e.status NOT IN ('matched', 'deleted')), "
    "count(*) FILTER (WHERE e.status = 'matched' AND NOT EXISTS (SELECT 1 FROM invoice_lines l "
    "JOIN invoices i ON i.id = l.invoice_id WHERE i.environment = e.environment AND i.customer = e.customer "
    "AND i.status = 'final' AND l.kind <> 'advance' AND l.service_start_ts <= e.ts AND e.ts < l.service_end_ts)) "
    "FROM {table} e WHERE e.environment = :env AND e.deleted_at IS NULL"
)


def detach_month(store: Store, month: Month, environment: str = "live", dry_run: bool = False) -> MonthState:
    """Detach the month's partition and keep it as events_archive_YYYY_MM, when it is settled:
    none of the environment's events in it unmatched, every matched one inside a window a final
    invoice billed. One transaction; events is locked against writes while the month is checked,
    so what was checked is what is detached. Unsettled (or `dry_run`): nothing changes."""
    with store.engine.begin() as connection:
        # writes wait (reads go on) from the check to the detach; the parent first, as writers lock it
        connection.execute(text("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE"))
        if not _attached(connection, month.name):
            return MonthState(month.label, attached=False)
        state = MonthState(month.label, attached=True)
        state.rows = connection.execute(text(f"SELECT count(*) FROM {month.name}")).scalar_one()
        state.unmatched, state.unfinalized = connection.execute(
            text(_UNFINALIZED.format(table=month.name)), {"env": environment}).one()
        state.pending_backfills = connection.execute(text(
            "SELECT count(*) FROM backfills WHERE environment = :env AND status = 'pending' AND start_ts < :end"),
            {"env": environment, "end": month.end_us}).scalar_one()
        if dry_run or not state.settled:
            return state
        if connection.execute(text(f"SELECT to_regclass('{month.archive_name}') IS NOT NULL")).scalar_one():
            raise PartitionError(f"an archive {month.archive_name} exists already; rename or drop it first")
        connection.execute(text(f"ALTER TABLE events DETACH PARTITION {month.name}"))
        connection.execute(text(f"ALTER TABLE {month.name} RENAME TO {month.archive_name}"))
        if not _guarded(connection, month):  # kept by an archive re-attached without dropping it
            # validated: a scan of the default partition, which holds nothing of the month (it had
            # its partition until now); ATTACH trusts it, should the archive be re-attached
            connection.execute(text(f"ALTER TABLE {DEFAULT} ADD CONSTRAINT {month.guard_name} "
                                    f"CHECK (ts < {month.start_us} OR ts >= {month.end_us})"))
        state.detached_as = month.archive_name
    return state


def _guarded(connection: Any, month: Month) -> bool:
    return connection.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(:table) AND conname = :name)"),
        {"table": DEFAULT, "name": month.guard_name}).scalar_one()


def _attached(connection: Any, name: str) -> bool:
    return connection.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = to_regclass('events') "
        "AND inhrelid = to_regclass(:name))"), {"name": name}).scalar_one()


@dataclass
class AttachState:
    """What `attach_month` found (and did) for an archived month."""

    month: str
    guarded: bool  # the default partition refuses the month (its guard)
    archive: bool  # the table events_archive_YYYY_MM exists (detached, not attached)
    partition: bool  # a table events_YYYY_MM exists (a partition or not): nothing to re-attach into
    rows: int = 0  # in the archive
    strays: int = 0  # of the month, in the default partition (stored before the guard existed)
    clashes: int = 0  # strays whose (environment, id) the archive holds already
    moved: int = 0
    guard_dropped: bool = False
    attached_as: str | None = None
    rollups_refreshed: list[str] | None = None  # environments whose roll-ups of the month were recomputed

    @property
    def archived(self) -> bool:
        return self.guarded or self.archive

    def blocked(self, without_archive: bool) -> bool:
        """Whether the re-attach must be refused (the service says why)."""
        if not self.archived or self.partition or self.clashes:
            return True
        return not self.archive and not without_archive


def attach_month(store: Store, month: Month, without_archive: bool = False, dry_run: bool = False) -> AttachState:
    """Re-attach an archived month: its events stored in the default partition before the guard
    existed move into the archive, the archive becomes the month's partition again, and the guard
    is dropped, in one transaction (the month takes events again only once its rows are back).

    Without the archive table (dropped), and only `without_archive`: the guard alone is dropped,
    and the month's roll-up rows, built from the events that are gone, are recomputed from the
    events left. Refused (`blocked`) or `dry_run`: nothing changes."""
    bounds = {"start": month.start_us, "end": month.end_us}
    with store.engine.begin() as connection:
        # the parent first, as writers lock it first; writes wait until the commit (reads go on)
        connection.execute(text("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE"))
        archive = connection.execute(text(
            "SELECT to_regclass(:name) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_inherits "
            "WHERE inhrelid = to_regclass(:name))"), {"name": month.archive_name}).scalar_one()
        state = AttachState(
            month.label, guarded=_guarded(connection, month), archive=archive,
            partition=connection.execute(text(f"SELECT to_regclass('{month.name}') IS NOT NULL")).scalar_one())
        if not state.archived or state.partition:
            return state
        state.strays = connection.execute(text(
            f"SELECT count(*) FROM {DEFAULT} WHERE ts >= :start AND ts < :end"), bounds).scalar_one()
        if state.archive:
            state.rows = connection.execute(text(f"SELECT count(*) FROM {month.archive_name}")).scalar_one()
            if state.strays:
                state.clashes = connection.execute(text(
                    f"SELECT count(*) FROM {DEFAULT} d WHERE d.ts >= :start AND d.ts < :end AND EXISTS "
                    f"(SELECT 1 FROM {month.archive_name} a WHERE a.environment = d.environment AND a.id = d.id)"),
                    bounds).scalar_one()
        if dry_run or state.blocked(without_archive):
            return state
        if state.archive:
            if state.strays:
                # deleting them releases their ids (the release trigger): claimed again just after
                connection.execute(text(
                    "CREATE TEMPORARY TABLE attach_strays ON COMMIT DROP AS SELECT environment, id "
                    f"FROM {DEFAULT} WHERE ts >= :start AND ts < :end"), bounds)
                state.moved = connection.execute(text(
                    f"WITH moved AS (DELETE FROM {DEFAULT} WHERE ts >= :start AND ts < :end RETURNING *) "
                    f"INSERT INTO {month.archive_name} SELECT * FROM moved"), bounds).rowcount
                connection.execute(text(f"INSERT INTO {ID_TABLE} (environment, id) SELECT environment, id "
                                        "FROM attach_strays ON CONFLICT DO NOTHING"))
            connection.execute(text(f"ALTER TABLE {month.archive_name} RENAME TO {month.name}"))
            # the guard (when valid) lets ATTACH skip scanning the default partition
            try:
                with connection.begin_nested():
                    connection.execute(text(f"ALTER TABLE events ATTACH PARTITION {month.name} "
                                            f"FOR VALUES FROM ({month.start_us}) TO ({month.end_us})"))
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) != "23514":  # check_violation: a row outside the month
                    raise
                raise PartitionError(f"{month.archive_name} holds rows outside {month.label}; nothing was attached "
                                     "(move or delete them first)") from None
            state.attached_as = month.name
        if state.guarded:
            connection.execute(text(f"ALTER TABLE {DEFAULT} DROP CONSTRAINT {month.guard_name}"))
            state.guard_dropped = True
        if not state.archive:
            state.rollups_refreshed = []
            environments = connection.execute(text(
                "SELECT DISTINCT environment FROM usage_rollups WHERE hour >= :start AND hour < :end "
                "ORDER BY environment"), bounds).scalars().all()
            for environment in environments:
                refresh_span(connection, environment, month.start_us, month.end_us, None)
                state.rollups_refreshed.append(environment)
    return state
