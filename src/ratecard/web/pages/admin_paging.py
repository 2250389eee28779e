"""Paging shared by the admin lists: 50 rows a page, one more fetched to know if a next page exists."""

from __future__ import annotations

from typing import Any

from fastapi import Query

PAGE_SIZE = 50
MAX_PAGE = 100_000

PageNumber = Query(1, ge=1, le=MAX_PAGE, alias="page")


def window(page: int) -> tuple[int, int]:
    """(offset, limit) of a page: the limit is one more than shown, to see whether another follows."""
    return (page - 1) * PAGE_SIZE, PAGE_SIZE + 1


def cut(rows: list[Any]) -> tuple[list[Any], bool]:
    """The rows to show and whether a next page exists."""
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
