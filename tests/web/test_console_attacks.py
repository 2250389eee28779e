"""The console attacked over HTTP, on both stores: roles bypassed, CSRF tokens left out or borrowed,
another environment's objects asked for by id, hostile query parameters and names, redirects
pointed elsewhere, sessions fixed before login, hostile uploads.

The routes are read from the console app itself, so a page or an action added later is attacked
too without editing this file.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, unquote, urljoin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
    return list(_console_routes())


@functools.cache
def _console_routes() -> tuple:
    """Read once per test process: FastAPI works the effective routes out afresh on every call
    (~0.2 s), and the hypothesis tests below draw a route for each of their hundreds of examples."""
    found = []
    for route in create_console().routes:
        if hasattr(route, "effective_route_contexts"):
            found.extend(route.effective_route_contexts())
    return tuple(found)


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
    figures.flush()  # the ingestion counters are written by a timer: now, not in the middle of an attack
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
        assert answer.status_code == 200 and "Wrong e-mail or password" in answer.text, email
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


# ------------------------------------------------------------------------------------------ hostile queries

HOSTILE_TEXT = ["0", "-1", "-0", "1e309", "99999999999999999999999999", "9223372036854775808", "NaN", "Infinity",
                "\x00", "a\x00b", "%00", "' OR 1=1 --", "%", "_", "%_\\", "\\", "*", "..", "../..", "<script>",
                "\u202e\u2066", "\ufeff", "é☃𝄞", "   ", "true", "[]", "{}", "null", "2026-02-30", "2026-13-01",
                "9999-12-31T23:59:59Z", "0001-01-01", "-2026-01-01", "2026-01-01T00:00:00+99:00", "x" * 3000]
hostile_values = st.one_of(st.sampled_from(HOSTILE_TEXT), st.integers().map(str),
                           st.text(max_size=60), st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
segment_values = hostile_values.map(lambda value: value.replace("/", "")).filter(lambda value: value.strip(". "))


def _query_names(route) -> list[str]:
    return [param.field_info.alias or param.name for param in route.dependant.query_params]


@pytest.mark.slow
@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(data=st.data())
def test_every_page_answers_hostile_query_parameters_with_a_page_never_a_crash(console, seeded, data):
    route = data.draw(st.sampled_from(routes_of("GET")), label="route")
    path = "/console" + route.path
    for param in route.dependant.path_params:
        value = data.draw(st.one_of(st.just(seeded.path_value(param.name)), segment_values), label=param.name)
        path = path.replace(f"{{{param.name}}}", quote(value, safe="")).replace(f"{{{param.name}:path}}",
                                                                              quote(value, safe=""))
    names = st.sampled_from([*_query_names(route), "page", "zz", "page[]"])
    query = data.draw(st.lists(st.tuples(names, hostile_values), max_size=6), label="query")
    answer = console.admin.get(path, params=query)
    assert answer.status_code in (200, 303, 400, 404), (route.path, query, answer.status_code, answer.text[:300])
    # a path with a line break is not the console's (Starlette's mount pattern stops at one): the
    # API's JSON 404 answers it
    if answer.status_code != 303 and "%0A" not in path and "%0D" not in path:
        a_file = route.path.endswith("/pdf") and answer.status_code == 200 and answer.content.startswith(b"%PDF")
        assert "<html" in answer.text.lower() or route.path == "/whoami" or a_file, answer.text[:300]


def test_a_nul_character_anywhere_is_a_400_page_on_both_stores(console, seeded):
    """PostgreSQL text cannot hold a NUL: every page and action refuses one before it reaches a query."""
    refused = 0
    for route in console_routes():
        if required_role(route) is None and route.path != "/whoami":
            continue  # the login pages: no query of theirs takes the value
        path, good_query, good_form, files = seeded.request(route)
        posting = "POST" in route.methods
        tries = [(path, {**good_query, name: "a\x00b"}, good_form) for name in _query_names(route)]
        if route.dependant.path_params:
            shown = quote(seeded.path_value(route.dependant.path_params[0].name), safe="")
            tries.append((path.replace(shown, "a%00b"), good_query, good_form))
        if posting:
            tries.append((path, good_query, {**good_form, "email": "a\x00b", "name": "a\x00b"}))
        for where, query, form in tries:
            if posting:
                answer = console.admin.client.post(where, params=query, data={**form, "csrf_token": console.admin.csrf},
                                                   files=files or None)
            else:
                answer = console.admin.get(where, params=query)
            assert answer.status_code == 400, (route.path, query, form, answer.status_code)
            assert "NUL character" in answer.text
            refused += 1
    assert refused > 30


# ------------------------------------------------------------------------------------------ hostile names

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'
HOSTILE_CATALOG = f"""
billing_entity: {{name: '{BREAKOUT}', country: NL, timezone: UTC, currency: EUR}}
meters:
  - {{code: 'javascript:alert(1)', aggregation: count}}
  - {{code: '{BREAKOUT}', aggregation: count}}
plans:
  - code: '{SCRIPT}'
    currency: EUR
    charges:
      - {{code: base, model: flat, amount: "5.00", timing: advance, description: '{BREAKOUT}'}}
      - {{code: '=HYPERLINK("http://evil.example","x")', meter: 'javascript:alert(1)', model: per_unit,
          unit_amount: "0.10", description: '{SCRIPT}'}}
customers:
  - {{reference: 'javascript:alert(1)', name: '{SCRIPT}', currency: EUR, tax_rate: "0"}}
  - {{reference: '{BREAKOUT}', name: '=HYPERLINK("http://evil.example","x")', currency: EUR}}
  - {{reference: '../../users', name: "\\u202bevil\\u2066", currency: EUR}}
subscriptions:
  - {{reference: '{BREAKOUT}', customer: 'javascript:alert(1)', plan: '{SCRIPT}', start: 2026-09-01}}
  - {{reference: 'javascript:void(0)', customer: '{BREAKOUT}', plan: '{SCRIPT}', start: 2026-09-01}}
  - {{reference: 'dots', customer: '../../users', plan: '{SCRIPT}', start: 2026-09-01}}
"""
LINKING = ("href", "src", "action", "formaction", "hx-get", "hx-post", "hx-put", "hx-delete", "hx-patch", "xlink:href")


class Markup(HTMLParser):
    """What a browser would act on: elements, event-handler attributes, and link targets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("img", "iframe", "object", "embed", "base") or (
                tag == "script" and values.get("src") != "/console/static/htmx.min.js"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"{tag}[{name}]")
            if name in LINKING and value is not None:
                target = re.sub(r"[\x00-\x20]", "", value).lower()
                if not target.startswith(("/", "#")):
                    self.problems.append(f"{tag}[{name}={value!r}]")
                elif name == "href":
                    self.links.append(value)


def _shape(target: str) -> tuple[str, tuple[str, ...]]:
    """A page and the names of its query parameters: one cutover date or sort order stands for all."""
    path, _, query = target.partition("?")
    return path, tuple(sorted(name for name, _ in parse_qsl(query)))


def crawl(browser, start: list[str], limit: int = 150) -> dict[str, list[str]]:
    """Every console page reachable by a link from `start` (up to `limit`): page -> its problems."""
    seen, queue, found = {_shape(path) for path in start}, list(start), {}
    while queue and len(found) < limit:
        path = queue.pop(0)
        answer = browser.get(path)
        assert answer.status_code in (200, 404), (path, answer.status_code, answer.text[:300])
        parser = Markup()
        parser.feed(answer.text)
        found[path] = parser.problems
        for link in parser.links:
            target = urljoin(path, link).split("#", 1)[0]
            if target.startswith("/console/") and "/static/" not in target and _shape(target) not in seen:
                seen.add(_shape(target))
                queue.append(target)
    return found


def test_hostile_names_render_as_text_on_every_page_a_link_reaches(console):
    console.api.apply_catalog(HOSTILE_CATALOG)
    events = [{"id": f"{SCRIPT}-{n}", "customer": customer, "meter": "javascript:alert(1)",
               "timestamp": "2026-10-10T12:00:00Z", "properties": {BREAKOUT: SCRIPT}}
              for n, customer in enumerate(["javascript:alert(1)", BREAKOUT, "../../users", f"unknown {BREAKOUT}"])]
    assert console.api.post("/v1/events", json=events).status_code == 200
    assert console.api.post("/v1/invoice-runs", json={"until": "2026-11-01"}).status_code == 200
    store = open_store(console.url)
    try:
        cohorts.create_cohort(store, BREAKOUT, NOW, "live", SCRIPT)
        cohorts.add_customers(store, BREAKOUT, ["javascript:alert(1)"], NOW, "live")
        cohorts.create_cohort(store, "javascript:alert(1)", NOW, "live")
        backfills.open_backfill(store, datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC), NOW,
                                "live", customer=BREAKOUT)
    finally:
        store.dispose()
    legacy = ("customer,code,service_start,service_end,quantity,amount\n"
              f'"{BREAKOUT}",base,2026-10-01,2026-11-01,1,5.00\n'
              f'"{SCRIPT}",base,2026-10-01,2026-11-01,1,5.00\n'
              '"=HYPERLINK(""http://evil.example"",""x"")",base,2026-10-01,2026-11-01,1,7.00\n')
    uploaded = console.operator.client.post("/console/golive/reconcile/upload", data={"csrf_token": console.operator.csrf},
                                            files={"file": (f"{BREAKOUT}.csv", legacy.encode(), "text/csv")})
    assert uploaded.status_code == 303, uploaded.text
    assert console.admin.post("/console/keys", {"name": BREAKOUT}).status_code == 201

    pages = crawl(console.admin, ["/console/", "/console/customers", "/console/invoices", "/console/events",
                                  "/console/golive", "/console/golive/cohorts", "/console/golive/reconcile",
                                  "/console/golive/backfills", "/console/golive/cutover?date=2026-12-01",
                                  "/console/alerts", "/console/keys", "/console/catalog", "/console/users"])
    assert {path: problems for path, problems in pages.items() if problems} == {}
    everything = "".join(console.admin.get(path).text for path in pages)
    for shown in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"):
        assert shown in everything or shown.replace("&#34;", "&quot;") in everything
    # the crawl reached every hostile detail page through its link, the dotted one too
    assert any("/customers/javascript" in path for path in pages)
    assert any(unquote(path).startswith("/console/customers/../../users") for path in pages)
    assert any("/golive/cohorts/%22%3E" in path for path in pages)


# ------------------------------------------------------------------------------------------ uploads

UPLOADS = ["/console/golive/reconcile/upload", "/console/catalog/upload"]


def _multipart(fields: list[tuple[str, str]], boundary: str = "attack") -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in fields]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


@pytest.mark.parametrize("path", UPLOADS)
def test_hostile_uploads_get_a_bounded_answer_never_a_crash(console, path):
    admin = console.admin
    token = {"csrf_token": admin.csrf}
    answers = {
        "no file field": admin.client.post(path, data={**token, "mapping": ""}, files={"other": ("x", b"x")}),
        "a text field named file": admin.client.post(path, data={**token, "file": "customer,code\n"},
                                                     files={"other": ("x", b"x")}),
        "a JSON body": admin.client.post(path, json={"file": "x"}, headers={"x-csrf-token": admin.csrf}),
        "a plain-text body": admin.client.post(path, content=b"customer,code\n",
                                               headers={"x-csrf-token": admin.csrf, "content-type": "text/csv"}),
        "an empty file": admin.client.post(path, data=token, files={"file": ("empty.csv", b"", "text/csv")}),
        "one 8 MiB line": admin.client.post(path, data=token, files={"file": ("long.csv", b"a" * (8 << 20), "text/csv")}),
        "binary": admin.client.post(path, data=token, files={"file": ("x.csv", bytes(range(256)) * 64, "image/png")}),
        "a broken multipart body": admin.client.post(path, content=b"--attack\r\nnonsense",
                                                     headers={"x-csrf-token": admin.csrf,
                                                              "content-type": "multipart/form-data; boundary=attack"}),
        "2,000 fields": admin.client.post(path, content=_multipart([("csrf_token", admin.csrf)]
                                                                   + [(f"f{n}", "x") for n in range(2000)]),
                                          headers={"content-type": "multipart/form-data; boundary=attack"}),
        "over 20 MiB": admin.client.post(path, data=token, files={"file": ("big.csv", b"a" * (21 << 20), "text/csv")}),
    }
    # the catalog's check page (200) lists what is wrong with a file it could read
    bounded = (200, 400, 413) if "catalog" in path else (400, 413)
    unbounded = {name: answer.status_code for name, answer in answers.items()
                 if answer.status_code not in bounded or "Internal" in answer.text}
    assert unbounded == {}
    assert answers["over 20 MiB"].status_code == 413
    assert console.admin.get("/console/").status_code == 200


def test_a_yaml_alias_bomb_is_refused_quickly(console):
    """A catalog of nested aliases (a billion laughs) must not expand into memory and time."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    started = time.monotonic()
    answer = console.admin.client.post("/console/catalog/upload", data={"csrf_token": console.admin.csrf},
                                       files={"file": ("bomb.yaml", "\n".join(lines).encode(), "application/yaml")})
    assert time.monotonic() - started < 5
    assert answer.status_code in (200, 400), answer.status_code
    assert "Internal" not in answer.text


def test_a_legacy_export_with_a_nul_character_is_refused_as_a_page(console):
    _billed(console)
    for content in (LEGACY.replace("zzz-last", "zzz\x00last"), LEGACY.replace("base", "ba\x00se", 1)):
        answer = console.operator.client.post("/console/golive/reconcile/upload",
                                              data={"csrf_token": console.operator.csrf},
                                              files={"file": ("legacy.csv", content.encode(), "text/csv")})
        assert answer.status_code == 400, answer.status_code
        assert "NUL character" in answer.text
    # a raw NUL in the file's name (a browser would not send one; a script can)
    body = (f'--attack\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{console.operator.csrf}\r\n'
            '--attack\r\nContent-Disposition: form-data; name="file"; filename="leg\x00acy.csv"\r\n'
            f'Content-Type: text/csv\r\n\r\n{LEGACY}\r\n--attack--\r\n').encode()
    named = console.operator.client.post("/console/golive/reconcile/upload", content=body,
                                         headers={"content-type": "multipart/form-data; boundary=attack"})
    assert named.status_code in (303, 400), named.status_code
    assert console.viewer.get("/console/golive/reconcile").status_code == 200


# ------------------------------------------------------------------------------------------ environments


def test_another_environments_objects_are_not_found_by_id_and_not_acted_on(console):
    delivery = _failed_delivery(console, env="sandbox")
    _billed(console, env="sandbox")
    console.api.apply_catalog(CATALOG)  # live has the same customers and cohorts could be promoted there
    store = open_store(console.url)
    try:
        cohorts.create_cohort(store, "sb-pilot", NOW, "sandbox")
        cohorts.add_customers(store, "sb-pilot", ["pilot-a"], NOW, "sandbox")
        backfill = backfills.open_backfill(store, datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC),
                                           NOW, "sandbox", customer="pilot-a")["id"]
        live_drafts = {i.display_number for i in invoices.find_invoices(store, "live", "draft")}
        sandbox_only = [i.display_number for i in invoices.find_invoices(store, "sandbox", "draft")
                        if i.display_number not in live_drafts]
        key = keys.find(store, "sandbox", 0, 10)[0]["id"]
    finally:
        store.dispose()
    assert sandbox_only
    switched = console.operator.post("/console/environment", {"environment": "sandbox", "back": "/console/"})
    assert switched.status_code == 303
    assert console.operator.client.post("/console/golive/reconcile/upload", data={"csrf_token": console.operator.csrf},
                                        files={"file": ("sandbox-export.csv", LEGACY.encode(), "text/csv")}
                                        ).status_code == 303
    before = snapshot(console.url)
    admin = console.admin  # signed in to live
    for path in ["/console/golive/cohorts/sb-pilot", "/console/golive/cohorts/sb-pilot/corrections",
                 f"/console/golive/backfills/{backfill}", *[f"/console/invoices/{n}" for n in sandbox_only]]:
        assert admin.get(path).status_code == 404, path
    for cause in ("unexplained", "missing_in_ratecard"):
        assert "sandbox-export.csv" not in admin.get(f"/console/golive/reconcile/causes/{cause}").text
    for path in [f"/console/alerts/deliveries/{delivery}/retry", f"/console/keys/revoke?id={key}",
                 "/console/golive/cohorts/sb-pilot/promote", "/console/golive/cohorts/sb-pilot/rollback",
                 *[f"/console/invoices/{n}/{action}" for n in sandbox_only
                   for action in ("finalize", "void", "hold", "release")]]:
        assert admin.post(path).status_code == 404, path
    assert changed_tables(console.url, before) == []


# ------------------------------------------------------------------------------------------ pages only read


def test_no_page_changes_anything(console, seeded):
    """A GET is safe to prefetch, crawl or send in a link: every page leaves every table as it was."""
    before = snapshot(console.url)
    for route in routes_of("GET"):
        path, query, _, _ = seeded.request(route)
        answer = console.admin.get(path, params=query)
        assert answer.status_code in (200, 404), (route.path, answer.status_code)
    assert changed_tables(console.url, before) == []


def test_every_answer_forbids_framing_inline_scripts_and_caching(console, seeded):
    answers = {route.path: console.admin.get(seeded.request(route)[0]) for route in routes_of("GET")}
    answers["403"] = console.viewer.get("/console/users")
    answers["404"] = console.viewer.get("/console/invoices/DRAFT-999999")
    answers["400"] = console.viewer.get("/console/invoices?page=0")
    answers["413"] = console.viewer.post("/console/logout", {"x": "a" * (65 << 10)})
    answers["login"] = console.anonymous().get("/console/login")
    for name, answer in answers.items():
        assert "script-src 'self'" in answer.headers.get("content-security-policy", ""), name
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], name
        assert answer.headers.get("x-frame-options") == "DENY", name
        assert answer.headers.get("cache-control") == "no-store", name


def test_the_session_cookie_is_http_only_same_site_and_the_login_form_needs_its_own_token(console):
    client = console.anonymous()
    signed = sign_in(client, "viewer@example.com")
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    # a login posted from elsewhere carries no login token cookie: refused, no session
    forged = console.anonymous().post("/console/login", data={"email": "viewer@example.com",
                                                              "password": "correct horse battery staple",
                                                              "csrf_token": "forged"})
    assert forged.status_code == 200 and "The form expired" in forged.text
    assert SESSION_COOKIE not in forged.headers.get("set-cookie", "")


@pytest.mark.slow
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(data=st.data())
def test_every_action_answers_hostile_values_with_a_page_never_a_crash(console, seeded, data):
    route = data.draw(st.sampled_from([route for route in routes_of("POST")
                                       if required_role(route) is not None and route.path != "/logout"]),
                      label="route")
    path, query, form, files = seeded.request(route)
    path = "/console" + route.path
    for param in route.dependant.path_params:
        value = data.draw(st.one_of(st.just(seeded.path_value(param.name)), segment_values), label=param.name)
        path = path.replace(f"{{{param.name}}}", quote(value, safe="")).replace(f"{{{param.name}:path}}",
                                                                              quote(value, safe=""))
    hostile_query = data.draw(st.dictionaries(st.sampled_from([*_query_names(route), "zz"]), hostile_values,
                                              max_size=3), label="query")
    hostile_form = data.draw(st.dictionaries(st.sampled_from([*form, "document", "base", "mapping"]), hostile_values,
                                             max_size=4), label="form")
    answer = console.admin.client.post(path, params={**query, **hostile_query},
                                       data={**form, **hostile_form, "csrf_token": console.admin.csrf},
                                       files=files or None)
    assert answer.status_code in (200, 201, 303, 400, 404), (route.path, answer.status_code, answer.text[:300])
    assert "Internal Server Error" not in answer.text
