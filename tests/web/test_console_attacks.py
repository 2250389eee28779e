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
from ratecard.web.context import SESSION_COOKIE

from .conftest import CSRF, sign_in
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


# ------------------------------------------------------------------------------------------ sessions


def _token(client) -> str:
    return client.cookies.get(SESSION_COOKIE, path="/console") or client.cookies.get(SESSION_COOKIE)


def test_signing_in_ends_the_session_the_browser_had_before(console):
    client = console.anonymous()
    assert sign_in(client, "operator@example.com").status_code == 303
    before = _token(client)
    assert sign_in(client, "admin@example.com").status_code == 303
    after = _token(client)
    assert after and after != before
    assert client.get("/console/whoami").json()["email"] == "admin@example.com"
    planted = console.anonymous()
    planted.cookies.set(SESSION_COOKIE, before, path="/console")
    answer = planted.get("/console/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")


def test_each_login_gets_its_own_token_and_logging_out_ends_only_that_one(console):
    first, second = console.anonymous(), console.anonymous()
    for client in (first, second):
        assert sign_in(client, "viewer@example.com").status_code == 303
    assert _token(first) != _token(second)
    form = first.get("/console/")
    csrf = CSRF.search(form.text).group(1)
    assert first.post("/console/logout", data={"csrf_token": csrf}).status_code == 303
    assert first.get("/console/").status_code == 303
    assert second.get("/console/").status_code == 200


@pytest.mark.parametrize("action", ["disable", "reset"])
def test_disabling_or_resetting_a_user_ends_every_one_of_their_sessions(console, action):
    browsers = [console.anonymous() for _ in range(2)]
    for client in browsers:
        assert sign_in(client, "operator@example.com").status_code == 303
    answer = console.admin.post(f"/console/users/{action}?email=operator%40example.com")
    assert answer.status_code in (200, 303), answer.text
    for client in [*browsers, console.operator.client]:
        assert client.get("/console/").status_code == 303
    assert console.viewer.get("/console/").status_code == 200


def test_every_login_refusal_costs_one_password_hash(console, monkeypatch):
    """An unknown or malformed address, an overlong password and a wrong one all verify one hash, so
    the answer's time does not tell which addresses have accounts."""
    from ratecard.services import users

    verified = []
    real = users._hasher_verify
    monkeypatch.setattr(users, "_hasher_verify", lambda digest, password: verified.append(1) or real(digest, password))
    for email, password in [("nobody@example.com", "correct horse battery staple"),
                            ("not an address", "correct horse battery staple"),
                            ("operator@example.com", "x" * 1500), ("nobody@example.com", "x" * 1500),
                            ("operator@example.com", "wrong horse battery staple")]:
        verified.clear()
        answer = sign_in(console.anonymous(), email, password)
        assert answer.status_code == 200 and "Wrong e-mail or password." in answer.text, email
        assert verified == [1], (email, len(password))


# ------------------------------------------------------------------------------------------ redirects

ELSEWHERE = ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
             "/console\\..\\..\\evil.example", " //evil.example", "/%2F%2Fevil.example", "http:/evil.example",
             "/console/\r\nSet-Cookie: planted=1", "//console/", "/consolex", "evil.example"]


def _stays_home(location: str) -> bool:
    return location.startswith("/console/") and not location.startswith("//") and "\n" not in location \
        and "\r" not in location and "\\" not in location


def test_login_and_the_environment_switch_never_redirect_elsewhere(console):
    for target in ELSEWHERE:
        client = console.anonymous()
        form = client.get("/console/login", params={"next": target})
        assert form.status_code == 200
        assert "evil.example" not in form.text and "javascript:" not in form.text
        signed = sign_in(client, "viewer@example.com", next_path=target)
        assert signed.status_code == 303 and _stays_home(signed.headers["location"]), signed.headers["location"]
        assert "planted" not in signed.headers.get("set-cookie", "")
        switched = console.viewer.post("/console/environment", {"environment": "live", "back": target})
        assert switched.status_code == 303 and _stays_home(switched.headers["location"]), target


def test_notice_keys_are_never_echoed(console):
    hostile = "zq-echo-<b>x</b>"
    with_done = [route for route in routes_of("GET") if "done" in {param.name for param in route.dependant.query_params}]
    assert len(with_done) >= 5
    seeded = {"reference": "DRAFT-1", "name": "pilot", "backfill_id": "bf_x", "cause": "unexplained"}
    for route in with_done:
        path = "/console" + route.path
        for param in route.dependant.path_params:
            path = path.replace(f"{{{param.name}}}", seeded[param.name]).replace(f"{{{param.name}:path}}",
                                                                               seeded[param.name])
        answer = console.admin.get(path, params={"done": hostile})
        assert answer.status_code in (200, 400, 404), (route.path, answer.status_code)
        assert "zq-echo" not in answer.text, route.path
