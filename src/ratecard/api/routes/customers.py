"""ratecard's own customer resources: the upcoming invoice (the customer records themselves are
served in Solvimon's shape, api/solvimon/customers.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from ...services import preview
from ...services.parsing import parse_rfc3339
from ..context import Caller, current_caller

router = APIRouter(tags=["customers"])

AT = Query(None, max_length=64, description="RFC 3339 instant with its offset (default: now); usage before it "
                                            "counts. Send `+` as `%2B`, or use `Z`.")


# {reference:path}: catalog references may hold a slash. Registered before the Solvimon-compatible
# GET /v1/customers/{key:path}, which would otherwise take "acme/upcoming-invoice" for a key.
@router.get("/v1/customers/{reference:path}/upcoming-invoice",
            summary="The upcoming invoice: each subscription's current period priced with the usage so far; "
                    "computed, never written")
def upcoming_invoice(reference: str, at: str | None = AT, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    moment = parse_rfc3339("at", at) if at is not None else None
    state = caller.catalog()  # the environment's catalog, built once per process and version
    catalog = {"catalog": state.catalog, "catalog_version": state.version} if state is not None else {}
    return preview.preview_invoices(caller.store, reference, moment, caller.now, caller.environment,
                                    **catalog).as_dict()
