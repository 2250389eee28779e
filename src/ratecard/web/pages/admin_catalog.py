"""The Catalog page: every role reads the environment's current version and its history; an admin
uploads a catalog file, which is checked first (every problem with its path, as `ratecard catalog
check` lists them) and applied only when they confirm on the next page, which says what the next
invoice run would change (as `ratecard catalog apply` prints).

Both steps post to the same path, ending in /upload (the guard allows large bodies there only): the
file first, then the confirmation carrying the checked text back with the version it was checked
against. Nothing is kept on the server between the two; the text is checked again before it is stored.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services import catalog_uploads, catalog_versions
from ...services.errors import InvalidInput
from ..context import Visit, acting, visitor
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


@router.post("/catalog/upload")
async def upload_catalog(file: UploadFile | None = File(None), document: str | None = Form(None),
                         base: str = Form("", max_length=12), name: str = Form("", max_length=200),
                         visit: Visit = Depends(acting("admin"))) -> Response:
    if document is not None:
        return await _apply(visit, document, _file_name(name), _version(base))
    if file is None or not file.filename:
        raise InvalidInput("choose a catalog file (YAML or JSON) to upload")
    content = await file.read()
    file_name = _file_name(file.filename)
    checked = await run_in_threadpool(catalog_uploads.check_upload, visit.store, content, file_name, visit.now,
                                      visit.environment)
    text = content.decode("utf-8-sig")  # decodable: check_upload refused it otherwise
    return page(visit, "admin/catalog_check.html", "catalog", upload=checked, name=file_name, text=text)


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
    if not raw.isdigit():
        raise InvalidInput("the form is malformed (base version); upload the file again")
    return int(raw)
