"""The console attacked over HTTP, on both stores: roles bypassed, CSRF tokens left out or borrowed,
another environment's objects asked for by id, hostile query parameters and names, redirects
pointed elsewhere, sessions fixed before login, hostile uploads.

The routes are read from the console app itself, so a page or an action added later is attacked
too without editing this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy import select

from ratecard.ingest import figures
from ratecard.services import backfills, cohorts, invoices, keys
from ratecard.store import open_store
from ratecard.store.schema import metadata
from ratecard.web.app import create_console

from .test_alerts_pages import _failed_delivery
from .test_golive_pages import CATALOG, LEGACY, NOW, _billed

# ------------------------------------------------------------------------------------------ the routes


def console_routes() -> list:
    """Every route of the console app (the included routers' effective routes, nested ones too)."""
    found = []
    for route in create_console().routes:
        if hasattr(route, "effective_route_contexts"):
            found.extend(route.effective_route_contexts())
    return found


def routes_of(method: str) -> list:
    return [route for route in console_routes() if method in route.methods]


def _dependencies(dependant) -> Iterator:
    for child in dependant.dependencies:
        yield child
        yield from _dependencies(child)


def required_role(route) -> str | None:
    """The role an `acting(...)` or `viewing(...)` dependency of the route asks for; None for none."""
    for child in _dependencies(route.dependant):
        call = child.call
        if getattr(call, "__qualname__", "").startswith(("acting.", "viewing.")):
            (cell,) = [cell for cell in call.__closure__ if isinstance(cell.cell_contents, str)]
            return cell.cell_contents
    return None


def test_the_route_list_is_what_the_console_serves():
    posts = {route.path: required_role(route) for route in routes_of("POST")}
    # a sample of what is known: reading the routes and their roles works
    assert posts["/invoices/{reference}/finalize"] == "operator"
    assert posts["/users"] == "admin"
    assert posts["/logout"] == "viewer"
    assert posts["/login"] is None
    assert required_role(next(r for r in routes_of("GET") if r.path == "/users")) == "admin"
    assert len(posts) >= 18


# ------------------------------------------------------------------------------------------ the data


def snapshot(url: str) -> dict[str, list[str]]:
    """Every row of every table (sessions without their last-seen time), in a stable order: equal
    snapshots, nothing changed."""
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            return {table.name: sorted(repr(tuple(row)) for row in connection.execute(
                select(*[column for column in table.columns if column.name != "last_seen_at"])))
                for table in metadata.sorted_tables}
    finally:
        store.dispose()


def changed_tables(url: str, before: dict[str, list[str]]) -> list[str]:
    after = snapshot(url)
    return [name for name in before if before[name] != after[name]]


class Seeded:
    """Live objects every action can name: a draft, a promotable cohort, a failed delivery, a key."""

    def __init__(self, console) -> None:
        self.delivery = _failed_delivery(console)
        _billed(console)
        store = open_store(console.url)
        try:
            cohorts.create_cohort(store, "pilot", NOW, "live")
            cohorts.add_customers(store, "pilot", ["pilot-a"], NOW, "live")
            self.draft = invoices.find_invoices(store, "live", "draft")[0].display_number
            self.key = keys.find(store, "live", 0, 10)[0]["id"]
            self.backfill = backfills.open_backfill(store, datetime(2026, 9, 1, tzinfo=UTC),
                                                    datetime(2026, 10, 1, tzinfo=UTC), NOW, "live",
                                                    customer="pilot-a")["id"]
        finally:
            store.dispose()
        figures.flush()  # the ingestion counters are written by a timer: now, not during the attack

    def path_value(self, name: str) -> str:
        return {"reference": self.draft, "name": "pilot", "delivery_id": str(self.delivery),
                "backfill_id": self.backfill, "cause": "unexplained"}[name]

    def request(self, route) -> tuple[str, dict, dict, dict]:
        """(path, query, form, files) that would make the action happen for a user allowed to."""
        path = "/console" + route.path
        for param in route.dependant.path_params:
            value = quote(self.path_value(param.name), safe="")
            path = path.replace(f"{{{param.name}}}", value).replace(f"{{{param.name}:path}}", value)
        query = {"email": "operator@example.com", "role": "viewer", "id": self.key}
        names = {param.alias or param.name for param in route.dependant.query_params}
        form = {"email": "new@example.com", "role": "viewer", "name": "attack", "environment": "sandbox",
                "back": "/console/", "password": "correct horse battery staple"}
        files = {}
        if route.path.endswith("/upload"):
            files = {"file": ("legacy.csv" if "reconcile" in route.path else "catalog.yaml",
                              (LEGACY if "reconcile" in route.path else CATALOG).encode(), "text/plain")}
        return path, {key: value for key, value in query.items() if key in names}, form, files


@pytest.fixture
def seeded(console) -> Seeded:
    return Seeded(console)


# ------------------------------------------------------------------------------------------ roles, CSRF

ORDER = ("viewer", "operator", "admin")


def test_every_action_refuses_a_role_below_its_own_and_changes_nothing(console, seeded):
    before = snapshot(console.url)
    allowed = []
    for route in routes_of("POST"):
        role = required_role(route)
        if role is None:
            continue
        for who in ORDER[:ORDER.index(role)]:
            browser = console.browsers[who]
            path, query, form, files = seeded.request(route)
            answer = browser.client.post(path, params=query, data={**form, "csrf_token": browser.csrf},
                                         files=files or None)
            if answer.status_code != 403:
                allowed.append((who, route.path, answer.status_code))
    assert allowed == []
    assert changed_tables(console.url, before) == []
    # the same requests from the role they need are taken (operators' first: an admin's may demote one)
    refused = []
    for route in sorted(routes_of("POST"), key=lambda route: ORDER.index(required_role(route) or "admin")):
        role = required_role(route)
        if role in (None, "viewer"):
            continue
        browser = console.browsers[role]
        path, query, form, files = seeded.request(route)
        answer = browser.client.post(path, params=query, data={**form, "csrf_token": browser.csrf}, files=files or None)
        if answer.status_code in (403, 422) or answer.status_code >= 500:
            refused.append((role, route.path, answer.status_code))
    assert refused == []
    assert changed_tables(console.url, before) != []


def test_every_action_refuses_a_missing_or_borrowed_csrf_token_and_changes_nothing(console, seeded):
    before = snapshot(console.url)
    accepted = []
    admin, operator = console.admin, console.operator
    for route in routes_of("POST"):
        if required_role(route) is None:
            continue  # the login form: its own double-submit token, attacked below
        path, query, form, files = seeded.request(route)
        tries = {"none": ({}, {}), "empty": ({"csrf_token": ""}, {}),
                 "another session's": ({"csrf_token": operator.csrf}, {}),
                 "another session's header": ({"csrf_token": admin.csrf}, {"x-csrf-token": operator.csrf})}
        for name, (token, headers) in tries.items():
            answer = admin.client.post(path, params=query, data={**form, **token}, files=files or None,
                                       headers=headers)
            if answer.status_code != 403:
                accepted.append((name, route.path, answer.status_code))
    assert accepted == []
    assert changed_tables(console.url, before) == []
    assert admin.get("/console/").status_code == 200  # logout without a token ended nothing


def test_admin_pages_refuse_operators_and_viewers(console):
    admin_pages = [route for route in routes_of("GET") if required_role(route) == "admin"]
    assert {route.path for route in admin_pages} >= {"/users", "/keys"}
    for route in admin_pages:
        for who in ("viewer", "operator"):
            answer = console.browsers[who].get("/console" + route.path)
            assert answer.status_code == 403, (who, route.path)
            assert "admin@example.com" not in answer.text and "rc_live_" not in answer.text


def test_a_delivery_id_past_any_integer_column_is_not_found_not_a_crash(console):
    for delivery in ("99999999999999999999999", "9223372036854775808", "-9223372036854775809"):
        answer = console.operator.post(f"/console/alerts/deliveries/{delivery}/retry")
        assert answer.status_code == 404, (delivery, answer.status_code)
        assert "<html" in answer.text.lower()
