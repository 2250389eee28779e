"""The console over HTTP on a fresh database (SQLite and PostgreSQL): one signed-in client per
role, each posting its session's CSRF token unless told not to."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import pytest
from fastapi.testclient import TestClient

from ratecard.api.app import create_app
from ratecard.clock import now
from ratecard.domain.instants import to_micros
from ratecard.store import console_users as rows
from ratecard.store import open_store
from ratecard.store.keys import create_key
from ratecard.web.context import SESSION_COOKIE

from ..api.conftest import Api
from ..migrated import at_head

PASSWORD = "correct horse battery staple"
ROLES = ("viewer", "operator", "admin")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@cache
def _password_hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(PASSWORD)


def _now_us() -> int:
    return to_micros(now())


@dataclass
class Browser:
    """A signed-in client: `get` a page, `post` a form (with the CSRF token unless csrf=False)."""

    client: TestClient
    email: str
    csrf: str = ""
    pages: list[str] = field(default_factory=list)

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, csrf: bool = True, **kwargs):
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return self.client.post(path, data=form, **kwargs)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, next_path: str = ""):
    """Posts the login form as a browser would (its double-submit token first); the response."""
    form = client.get("/console/login")
    token = CSRF.search(form.text).group(1)
    return client.post("/console/login", data={"email": email, "password": password, "csrf_token": token,
                                               "next": next_path})


@dataclass
class Console:
    api: Api
    app: object
    url: str
    browsers: dict[str, Browser]

    @property
    def viewer(self) -> Browser:
        return self.browsers["viewer"]

    @property
    def operator(self) -> Browser:
        return self.browsers["operator"]

    @property
    def admin(self) -> Browser:
        return self.browsers["admin"]

    def anonymous(self) -> TestClient:
        return TestClient(self.app, raise_server_exceptions=False, follow_redirects=False)


@pytest.fixture
def console(db_url: str) -> Iterator[Console]:
    store = open_store(at_head(db_url))
    _, live = create_key(store, "live", 0, "test")
    _, sandbox = create_key(store, "sandbox", 0, "test")
    # users and their sessions are written directly (hashing and verifying argon2 costs ~0.1 s a
    # call; tests/web/test_console_auth.py signs in through the form)
    sessions = {}
    for role in ROLES:
        user = rows.insert_user(store, f"{role}@example.com", role, _password_hash(), 0)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        rows.insert_session(store, hashlib.sha256(token.encode()).hexdigest(), user.id, "live", csrf, _now_us())
        sessions[role] = (token, csrf)
    store.dispose()
    app = create_app(db_url)
    with TestClient(app, raise_server_exceptions=False) as api_client:
        browsers = {}
        for role in ROLES:
            client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
            client.__enter__()
            token, csrf = sessions[role]
            client.cookies.set(SESSION_COOKIE, token, path="/console")
            browsers[role] = Browser(client, f"{role}@example.com", csrf)
        try:
            yield Console(Api(api_client, live, sandbox, db_url), app, db_url, browsers)
        finally:
            for browser in browsers.values():
                browser.client.__exit__(None, None, None)
