"""Lists, one page at a time, in the envelope
{data, links{first,previous,current,next}, limit, page, total_number_of_pages}.

ratecard's own lists and the Solvimon-compatible ones share the envelope and the parameters
(limit, page, order_by, order_direction) but not the defaults: Solvimon's are 10 per page (at
most 100), newest first, and an empty list has 0 pages; ratecard's are 20 per page (at most
1000), in the list's own order, and an empty list is one empty page. Each route picks its rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Query, Request

from .errors import invalid

Item = TypeVar("Item")
MAX_PAGE = 1_000_000_000


@dataclass(frozen=True)
class PagingRules:
    default_limit: int
    max_limit: int
    newest_first: bool  # the direction when order_direction is not given
    pages_when_empty: int  # total_number_of_pages of an empty list


RATECARD = PagingRules(default_limit=20, max_limit=1000, newest_first=False, pages_when_empty=1)
SOLVIMON = PagingRules(default_limit=10, max_limit=100, newest_first=True, pages_when_empty=0)


@dataclass
class Page:
    """The page a request asked for. `explicit_limit`: whether the caller named a limit."""

    limit: int
    page: int
    order_by: str | None
    descending: bool
    explicit_limit: bool
    rules: PagingRules

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def page_parameters(rules: PagingRules) -> Callable[..., Page]:
    """The FastAPI dependency reading limit/page/order_by/order_direction under `rules`."""

    def parameters(
        limit: int | None = Query(None, description=f"1..{rules.max_limit}, default {rules.default_limit}",
                                  json_schema_extra={"minimum": 1, "maximum": rules.max_limit}),
        page: int | None = Query(None, description="1-based page number, default 1",
                                 json_schema_extra={"minimum": 1, "maximum": MAX_PAGE}),
        order_by: str | None = Query(None),
        order_direction: str | None = Query(
            None, description=f"ASC or DESC (either case), default {'DESC' if rules.newest_first else 'ASC'}"),
    ) -> Page:
        if limit is not None and not 1 <= limit <= rules.max_limit:
            raise invalid("limit", f"limit must be 1 to {rules.max_limit}, got {limit}")
        if page is not None and not 1 <= page <= MAX_PAGE:
            raise invalid("page", f"page must be 1 to {MAX_PAGE}, got {page}")
        direction = order_direction.upper() if order_direction is not None else None
        if direction not in (None, "ASC", "DESC"):
            raise invalid("order_direction", f"order_direction must be ASC or DESC, got {order_direction!r}")
        descending = rules.newest_first if direction is None else direction == "DESC"
        return Page(limit or rules.default_limit, page or 1, order_by, descending, limit is not None, rules)

    return parameters


ratecard_page = page_parameters(RATECARD)
solvimon_page = page_parameters(SOLVIMON)


def envelope(request: Request, data: list[Any], total: int, page: Page) -> dict[str, Any]:
    """The envelope around one page's rendered `data`, of `total` items in all. Links are
    relative and keep the request's other query parameters."""
    pages = math.ceil(total / page.limit) if total else page.rules.pages_when_empty

    def link(number: int | None) -> str | None:
        if number is None:
            return None
        query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]
        query += [("page", str(number)), ("limit", str(page.limit))]
        return f"{request.url.path}?{urlencode(query)}"

    return {
        "data": data,
        "links": {
            "first": link(1),
            "previous": link(page.page - 1) if page.page > 1 else None,
            "current": link(page.page),
            "next": link(page.page + 1) if page.page < pages else None,
        },
        "limit": page.limit,
        "page": page.page,
        "total_number_of_pages": pages,
    }


def paginate(request: Request, items: Sequence[Item], page: Page, render: Callable[[Item], Any],
             sort_keys: dict[str, Callable[[Item], Any]] | None = None, default_key: str | None = None,
             everything: bool = False) -> dict[str, Any]:
    """Sort, slice one page and render it. order_by must name a key of `sort_keys`; without it
    the list is sorted by `default_key`, or kept in its own order (reversed for DESC).
    `everything`: the SDK cannot page this list, so unless a limit was given every item comes
    in one page."""
    keys = sort_keys or {}
    key_name = page.order_by or default_key
    if key_name is None:
        ordered = list(reversed(items)) if page.descending else list(items)
    elif key_name not in keys:
        raise invalid("order_by", f"order_by must be one of {', '.join(sorted(keys)) or 'nothing'}, "
                                  f"got {page.order_by!r}")
    else:
        ordered = sorted(items, key=keys[key_name], reverse=page.descending)
    if everything and not page.explicit_limit:
        page.limit = max(len(ordered), 1)
    chosen = ordered[page.offset : page.offset + page.limit]
    return envelope(request, [render(item) for item in chosen], len(ordered), page)


def sortable(value: Any) -> tuple[int, Any]:
    """A sort key that puts missing values first and never compares None with a value."""
    return (0, "") if value is None else (1, value)
