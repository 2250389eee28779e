"""The list envelope {data, links{first,previous,current,next}, limit, page, total_number_of_pages}."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Query, Request

from .errors import ApiError

Item = TypeVar("Item")
MAX_LIMIT = 1000


class PageParams:
    def __init__(self, limit: int = Query(20, ge=1, le=MAX_LIMIT), page: int = Query(1, ge=1),
                 order_by: str | None = Query(None), order_direction: str = Query("ASC")) -> None:
        if order_direction.upper() not in ("ASC", "DESC"):
            raise ApiError(400, "INVALID_FIELD", "order_direction must be ASC or DESC", "order_direction")
        self.limit = limit
        self.page = page
        self.order_by = order_by
        self.descending = order_direction.upper() == "DESC"


def envelope(request: Request, items: Sequence[Item], params: PageParams, render: Callable[[Item], Any],
             sort_keys: dict[str, Callable[[Item], Any]] | None = None) -> dict[str, Any]:
    """One page of `items` (already filtered), sorted by order_by when it names a known field."""
    ordered = list(items)
    if params.order_by is not None:
        keys = sort_keys or {}
        if params.order_by not in keys:
            raise ApiError(400, "INVALID_FIELD", f"order_by must be one of {', '.join(sorted(keys)) or 'nothing'}",
                           "order_by")
        ordered.sort(key=keys[params.order_by], reverse=params.descending)
    elif params.descending:
        ordered.reverse()
    total_pages = max(1, -(-len(ordered) // params.limit))
    start = (params.page - 1) * params.limit
    page_items = ordered[start : start + params.limit]

    def link(page: int | None) -> str | None:
        if page is None:
            return None
        query = dict(request.query_params)
        query.update({"page": str(page), "limit": str(params.limit)})
        return f"{request.url.path}?{urlencode(query)}"

    return {
        "data": [render(item) for item in page_items],
        "links": {
            "first": link(1),
            "previous": link(params.page - 1 if params.page > 1 else None),
            "current": link(params.page),
            "next": link(params.page + 1 if params.page < total_pages else None),
        },
        "limit": params.limit,
        "page": params.page,
        "total_number_of_pages": total_pages,
    }
