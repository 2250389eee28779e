"""Signing in to the console: passwords, lock-out, sessions, CSRF, cookies, the environment switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ratecard.services import users
from ratecard.store import open_store

from .conftest import CSRF, PASSWORD, sign_in

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def pinned(monkeypatch):
    """RATECARD_NOW pinned and movable: `pinned(minutes)` moves "now" forward."""
    moments = {"now": START}

    def move(minutes: float = 0) -> datetime:
        moments["now"] = moments["now"] + timedelta(minutes=minutes)
        monkeypatch.setenv("RATECARD_NOW", moments["now"].isoformat())
        return moments["now"]

    move()
    return move


@pytest.fixture
def member(console):
    """A fresh operator signed up through the service (a real argon2 hash)."""
    store = open_store(console.url)
    try:
        users.create_user(store, "Member@Example.com", "operator", PASSWORD, START)
    finally:
        store.dispose()
    return "member@example.com"


def _client(console, base_url: str = "http://testserver") -> TestClient:
    return TestClient(console.app, base_url=base_url, raise_server_exceptions=False, follow_redirects=False)


def test_the_right_password_opens_a_session_with_a_safe_cookie(console, member, pinned):
    client = _client(console)
    answer = sign_in(client, "MEMBER@example.com ", next_path="/console/events")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/events"
    cookie = next(value for name, value in answer.headers.multi_items()
                  if name == "set-cookie" and value.startswith("ratecard_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    page = client.get("/console/")
    assert page.status_code == 200 and "member@example.com" in page.text and "operator" in page.text


def test_behind_https_the_cookie_is_secure(console, member, pinned):
    client = _client(console, base_url="https://testserver")
    answer = sign_in(client, member)
    cookie = next(value for name, value in answer.headers.multi_items()
                  if name == "set-cookie" and value.startswith("ratecard_session="))
    assert "Secure" in cookie


def test_a_wrong_password_or_unknown_user_gets_the_same_answer(console, member, pinned):
    client = _client(console)
    wrong = sign_in(client, member, "not the password at all")
    unknown = sign_in(client, "nobody@example.com", "not the password at all")
    for answer in (wrong, unknown):
        assert answer.status_code == 200
        assert "Wrong e-mail or password" in answer.text
        assert "ratecard_session" not in answer.headers.get("set-cookie", "")
    assert _refusal(wrong) == _refusal(unknown)
    assert client.get("/console/").status_code == 303


def _refusal(answer) -> str:
    """The error sentence of a refused sign-in, as the page shows it."""
    start = answer.text.index("Wrong e-mail or password")
    return answer.text[start:answer.text.index("<", start)]


def _refused(answer) -> bool:
    return answer.status_code == 200 and "ratecard_session" not in answer.headers.get("set-cookie", "")


def test_five_wrong_passwords_lock_the_account_until_an_admin_resets_it(console, member, pinned):
    client = _client(console)
    for _ in range(5):
        assert _refused(sign_in(client, member, "wrong password 123"))
    refused = sign_in(client, member)  # the right password, while locked
    assert _refused(refused) and "locked for 15 minutes" in refused.text and "ratecard users reset" in refused.text
    pinned(10)
    assert _refused(sign_in(client, member))
    store = open_store(console.url)
    try:
        assert next(user for user in users.list_users(store, START) if user["email"] == member)["locked"]
        users.reset_password(store, member, "a brand new password")
    finally:
        store.dispose()
    assert sign_in(client, member, "a brand new password").status_code == 303


def test_the_lock_ends_by_itself_after_fifteen_minutes(console, member, pinned):
    client = _client(console)
    for _ in range(5):
        sign_in(client, member, "wrong password 123")
    pinned(14)
    assert _refused(sign_in(client, member))
    pinned(2)
    assert sign_in(client, member).status_code == 303


def test_a_good_login_resets_the_count_of_failures(console, member, pinned):
    client = _client(console)
    for _ in range(4):
        sign_in(client, member, "wrong password 123")
    assert sign_in(client, member).status_code == 303
    other = _client(console)
    for _ in range(4):
        sign_in(other, member, "wrong password 123")
    assert sign_in(other, member).status_code == 303


def test_a_disabled_user_cannot_sign_in_and_loses_open_sessions(console, member, pinned):
    client = _client(console)
    assert sign_in(client, member).status_code == 303
    store = open_store(console.url)
    try:
        users.set_disabled(store, member, True)
    finally:
        store.dispose()
    assert client.get("/console/").status_code == 303
    assert "disabled" in sign_in(_client(console), member).text


def test_sessions_end_after_30_idle_minutes_and_12_hours_in_all(console, member, pinned):
    idle = _client(console)
    sign_in(idle, member)
    pinned(29)
    assert idle.get("/console/").status_code == 200
    pinned(29)  # 29 minutes after the last request: still fine
    assert idle.get("/console/").status_code == 200
    pinned(31)
    gone = idle.get("/console/")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login")

    busy = _client(console)
    sign_in(busy, member)
    for _ in range(12 * 3):  # a request every 20 minutes for 12 hours
        pinned(20)
        busy.get("/console/")
    pinned(20)
    assert busy.get("/console/").status_code == 303


def test_the_login_form_needs_its_own_token(console, member, pinned):
    client = _client(console)
    client.get("/console/login")
    answer = client.post("/console/login", data={"email": member, "password": PASSWORD, "csrf_token": "forged"})
    assert answer.status_code == 200 and "The form expired" in answer.text
    assert client.get("/console/").status_code == 303


def test_after_login_only_console_paths_are_followed(console, member, pinned):
    for target in ("//evil.example/console/", "https://evil.example/", "/v1/customers", "/console\\..\\x"):
        answer = sign_in(_client(console), member, next_path=target)
        assert answer.headers["location"] == "/console/", target


def test_actions_without_the_session_csrf_token_are_refused(console):
    refused = console.viewer.post("/console/environment", {"environment": "sandbox"}, csrf=False)
    assert refused.status_code == 403
    assert "security token" in refused.text
    forged = console.viewer.post("/console/environment", {"environment": "sandbox", "csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert "sandbox-banner" not in console.viewer.get("/console/").text


def test_the_environment_switch_shows_an_unmistakable_banner_on_sandbox(console):
    live = console.viewer.get("/console/customers").text
    assert "sandbox-banner" not in live
    switched = console.viewer.post("/console/environment", {"environment": "sandbox", "back": "/console/customers"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/customers"
    sandbox = console.viewer.get("/console/customers").text
    assert "SANDBOX: test data only" in sandbox
    assert console.viewer.get("/console/whoami").json()["environment"] == "sandbox"
    console.viewer.post("/console/environment", {"environment": "live"})
    assert "sandbox-banner" not in console.viewer.get("/console/").text
    bad = console.viewer.post("/console/environment", {"environment": "production"})
    assert bad.status_code == 400


def test_signing_out_ends_the_session_on_the_server(console):
    token = console.operator.client.cookies.get("ratecard_session")
    answer = console.operator.post("/console/logout")
    assert answer.status_code == 303
    replay = console.anonymous()
    replay.cookies.set("ratecard_session", token, path="/console")
    assert replay.get("/console/").status_code == 303


def test_pages_carry_security_headers_and_are_not_cached(console):
    answer = console.viewer.get("/console/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert "<script src=\"/console/static/htmx.min.js\"" in answer.text
    assert console.viewer.get("/console/static/htmx.min.js").status_code == 200


def test_an_oversized_form_is_refused_before_it_is_read(console):
    answer = console.viewer.client.post("/console/environment", content=b"x" * (65 * 1024),
                                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_htmx_requests_without_a_session_are_sent_to_the_login_page(console):
    answer = console.anonymous().get("/console/customers", headers={"HX-Request": "true"})
    assert answer.status_code == 204
    assert answer.headers["hx-redirect"].startswith("/console/login")


def test_the_api_keeps_its_own_keys_and_the_root_leads_to_the_console(console):
    client = console.anonymous()
    assert client.get("/").headers["location"] == "/console/"
    assert client.get("/v1/customers").status_code == 401
    assert console.api.get("/v1/customers").status_code == 200
    # a console session is no API key
    assert console.viewer.get("/v1/customers").status_code == 401


def test_the_login_page_escapes_what_it_echoes(console, pinned):
    client = _client(console)
    client.get("/console/login")
    token = CSRF.search(client.get("/console/login").text).group(1)
    answer = client.post("/console/login", data={"email": "\"><script>alert(1)</script>", "password": "x" * 20,
                                                 "csrf_token": token, "next": "\"><img src=x>"})
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;" in answer.text


def test_a_locked_account_cannot_be_told_from_an_unknown_address(console, member, pinned):
    # five wrong passwords lock a real account; an address with no account is never locked. If
    # the answers differed (a "this account is locked" only real accounts get), a stranger could
    # test which addresses have an account: every refusal says the same sentence
    client = _client(console)
    for _ in range(5):
        sign_in(client, member, "wrong password 123")
        sign_in(client, "stranger@example.com", "wrong password 123")
    locked = sign_in(client, member)  # even the right password, while locked
    stranger = sign_in(client, "stranger@example.com", "wrong password 123")
    assert _refused(locked) and _refused(stranger)
    assert _refusal(locked) == _refusal(stranger)


def test_a_locked_account_costs_one_password_hash_like_any_refusal(console, member, pinned, monkeypatch):
    client = _client(console)
    for _ in range(5):
        sign_in(client, member, "wrong password 123")
    verified = []
    real = users._hasher_verify
    monkeypatch.setattr(users, "_hasher_verify", lambda digest, password: verified.append(1) or real(digest, password))
    assert _refused(sign_in(client, member))  # the right password, while locked: one hash, not none
    assert verified == [1]
