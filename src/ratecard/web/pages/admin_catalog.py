"""The Catalog page: every role reads the environment's current version and its history; an admin
uploads a catalog file, which is checked first (every problem with its path, as `ratecard catalog
check` lists them) and applied only when they confirm on the next page, which says what the next
invoice run would change (as `ratecard catalog apply` prints).

Both steps post to the same path, ending in /upload (the guard allows large bodies there only): the
file first, then the confirmation carrying the checked catalog back (as canonical JSON) with the
version it was checked against. Nothing is kept on the server between the two; the catalog is
checked again before it is stored.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from ...services import catalog_uploads, catalog_versions
from ...services.errors import InvalidInput
from ..context import Visit, acting, visitor
from ..guard import UPLOAD_LIMIT
from ..render import page
from .admin_paging import PageNumber, cut, window

router = APIRouter()
CATALOG = "/console/catalog"


@router.get("/catalog")
async def catalog_page(visit: Visit = Depends(visitor), page_number: int = PageNumber,
                       done: Literal["applied", "unchanged"] | None = None) -> Response:
    offset, limit = window(page_number)
    current = await run_in_threadpool(catalog_versions.current_summary, visit.store, visit.environment)
    rows = await run_in_threadpool(catalog_versions.history, visit.store, visit.environment, offset, limit)
    versions, has_more = cut(rows)
    return page(visit, "admin/catalog.html", "catalog", current=current, versions=versions, page_number=page_number,
                has_more=has_more, done=done)


async def upload_form(request: Request, _: Visit = Depends(visitor)) -> FormData:
    """The form of an upload, read once a session is known and before `acting` reads its token from
    it: its fields may be as large as the guard lets the body be (Starlette's default is 1 MiB a
    field, and the confirmation sends the whole catalog back in one)."""
    return await request.form(max_part_size=UPLOAD_LIMIT)


@router.post("/catalog/upload")
async def upload_catalog(form: FormData = Depends(upload_form), visit: Visit = Depends(acting("admin"))) -> Response:
    document = form.get("document")
    if isinstance(document, str):
        return await _apply(visit, document, _file_name(_field(form, "name")), _version(_field(form, "base")))
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("choose a catalog file (YAML or JSON) to upload")
    content = await upload.read()
    file_name = _file_name(upload.filename)
    checked = await run_in_threadpool(catalog_uploads.check_upload, visit.store, content, file_name, visit.now,
                                      visit.environment)
    return page(visit, "admin/catalog_check.html", "catalog", upload=checked, name=file_name)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:200] if isinstance(value, str) else ""


async def _apply(visit: Visit, document: str, name: str, base: int | None) -> Response:
    applied = await run_in_threadpool(catalog_uploads.apply_upload, visit.store, document.encode(), name, base,
                                      visit.now, visit.environment)
    return RedirectResponse(f"{CATALOG}?done={'applied' if applied['created'] else 'unchanged'}", status_code=303)


def _file_name(raw: str) -> str:
    """The upload's own name without any folder, for messages (`catalog.yaml: …`)."""
    return PurePath(raw.replace("\\", "/")).name[:120] or "catalog.yaml"


def _version(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidInput("the form is malformed (base version); upload the file again")
    return int(raw)
