"""POST /v1/events: the high-throughput batch endpoint (JSON array or NDJSON)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services.event_log import LogUnavailable, QueuedBatch, check_for_log, queue_batch
from ...services.events import (
    GroupCommitter,
    ImportReport,
    RawEvent,
    Rejection,
    StaleCatalog,
    decode_event,
    import_batch,
)
from ...textfile import utf8_error_offset
from ..bodies import read_limited_body
from ..context import Caller, current_caller
from ..errors import ApiError

router = APIRouter(tags=["events"])

MAX_EVENTS = 10_000
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
# the decoder decode_event tries first on each element (ingest.readers.jsonl), for a whole array
_typed_list = msgspec.json.Decoder(list[RawEvent], float_hook=Decimal)


def parse_events(body: bytes) -> list[RawEvent | Rejection]:
    """A JSON array of events, or NDJSON (one event per line); each element judged on its own.

    Rejections name the element's position from 1 ("line 3" is the third event)."""
    stripped = body.lstrip()
    if not stripped:
        raise ApiError(400, "MISSING_FIELD", "the body holds no events; send a JSON array or NDJSON", "body")
    if stripped.startswith(b"["):
        try:  # every element in ratecard's own shape, the common case: decoded in one call
            events = _typed_list.decode(stripped)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # judged element by element below
            pass
        else:
            _check_count(len(events))
            for index, event in enumerate(events, start=1):
                event.line = index
            return list(events)
        try:
            elements = _raw_list.decode(stripped)
        except (msgspec.DecodeError, UnicodeDecodeError):
            if utf8_error_offset(stripped) is not None:
                raise ApiError(400, "INVALID_FIELD", "the body is not UTF-8 text", "body") from None
            raise ApiError(400, "INVALID_FIELD", f"the body is not a valid JSON array{_where_json_breaks(stripped)}",
                           "body") from None
        except RecursionError:
            raise ApiError(400, "INVALID_FIELD", "the body's JSON is nested too deeply", "body") from None
        _check_count(len(elements))
        return [decode_event(index, bytes(raw)) for index, raw in enumerate(elements, start=1)]
    lines = [line for line in body.split(b"\n") if line.strip()]
    _check_count(len(lines))
    return [decode_event(index, line) for index, line in enumerate(lines, start=1)]


def _where_json_breaks(body: bytes) -> str:
    """Where the JSON goes wrong (`: line 3, column 7`), from the standard library's parser
    position (its fields, not its wording); empty when it does not say."""
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        return f": line {exc.lineno}, column {exc.colno}"
    except (ValueError, RecursionError):
        pass
    return ""


def _check_count(count: int) -> None:
    if count > MAX_EVENTS:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"{count} events in one request; at most {MAX_EVENTS}")


STALE_RETRIES = 5


def ingest(caller: Caller, records: list[RawEvent | Rejection], dry_run: bool) -> ImportReport:
    """Validate and store parsed records with the cached catalog; count them in the metrics.

    A small write goes through the process's group committer (shared transaction); if the catalog
    moved since this process last looked, it is validated again against the new one."""
    committer = None if dry_run else caller.group_commit(len(records))
    if committer is None:
        return _ingest(caller, records, dry_run, None)
    for _ in range(STALE_RETRIES):
        with committer.announced():
            try:
                return _ingest(caller, records, dry_run, committer)
            except StaleCatalog as stale:
                caller.validated_again(stale.current)
    return _ingest(caller, records, dry_run, None)  # the catalog keeps moving: read it and write alone


def _ingest(caller: Caller, records: list[RawEvent | Rejection], dry_run: bool,
            committer: GroupCommitter | None) -> ImportReport:
    state = caller.catalog()
    validator, catalog = (state.validator, state.catalog) if state is not None else (None, None)
    report = import_batch(caller.store, caller.environment, caller.now, records, dry_run, validator, catalog,
                          committer, caller.fingerprint if committer is not None else None)
    if not dry_run:
        caller.metrics.observe_import(report.stored, report.duplicates, report.flagged_not_held(),
                                      dict(report.rejected))
    return report


# one event in ratecard's shape (Solvimon's shape is taken too: reference, customer_reference, …)
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 256, "description": "unique per environment: a repeat is a duplicate"},
        "customer": {"type": "string", "maxLength": 256},
        "meter": {"type": "string", "maxLength": 256, "description": "a meter code or source"},
        "timestamp": {"type": "string", "format": "date-time", "description": "RFC 3339 with its offset"},
        "properties": {"type": "object"},
        "subscription": {"type": "string", "maxLength": 256,
                         "description": "optional: the reference of the subscription that bills the event"},
    },
}


@router.post("/v1/events", status_code=200, summary="Ingest a batch of up to 10,000 events (JSON array or NDJSON)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "array", "items": EVENT_SCHEMA}},
                 "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def post_events(request: Request, dry_run: bool = Query(False), caller: Caller = Depends(current_caller)) -> Response:
    body = await read_limited_body(request)
    records = parse_events(body)
    log = request.app.state.event_log
    if log is not None and not dry_run:  # `serve --log`: answered once the log persisted the batch
        return await queue_events(log, caller, records)
    report = await run_in_threadpool(ingest, caller, records, dry_run)
    return Response(orjson.dumps(batch_summary(report, len(records))), media_type="application/json")


async def queue_events(log: Any, caller: Caller, records: list[RawEvent | Rejection]) -> Response:
    """202: the valid events are persisted in the log (a worker stores them); the refused ones are listed."""
    batch = await run_in_threadpool(check_queued, caller, records)
    try:
        await queue_batch(log, caller.environment, batch)
    except LogUnavailable as exc:
        raise ApiError(503, "EVENT_LOG_UNAVAILABLE", exc.message) from None
    return Response(orjson.dumps(batch.as_dict()), status_code=202, media_type="application/json")


def check_queued(caller: Caller, records: list[RawEvent | Rejection]) -> QueuedBatch:
    state = caller.catalog()
    return check_for_log(caller.environment, caller.now, records, state.validator if state is not None else None,
                         caller.fingerprint.archived)


def batch_summary(report: ImportReport, count: int) -> dict[str, Any]:
    """Counts, plus one entry per event that was not simply stored (rejected, duplicate, unmatched)."""
    return {
        "dry_run": report.dry_run,
        "received": count,
        "accepted": report.accepted,
        "stored": report.stored,
        "duplicates": report.duplicates,
        "rejected": dict(report.rejected),
        "flags": dict(report.flags),
        "errors": [{"index": r.line, "id": r.event_id, "reason": r.reason, "message": r.message}
                   for r in report.rejections],
        "unmatched": report.samples,
        "conflicts": [{"index": line, "id": event_id} for event_id, line in report.conflicts],
    }
