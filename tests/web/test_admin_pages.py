"""The admin pages as people use them: users (create, disable, enable, role, reset), API keys and
the catalog (read by everyone, uploaded and applied by admins after a confirmation)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ratecard.store import console_users as rows
from ratecard.store import open_store

from ..integration.scenario import CATALOG
from .conftest import sign_in

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PASSWORD_SHOWN = re.compile(r'data-testid="password">([^<]+)</pre>')
SECRET_SHOWN = re.compile(r'data-testid="secret">([^<]+)</pre>')
HOSTILE = "<script>alert(1)</script>"


def words(answer) -> str:
    """The page's text with every run of whitespace as one space (as a reader sees it)."""
    return " ".join(answer.text.split())


def create_user(console, email: str, role: str = "viewer") -> str:
    """Creates a user through the page; the password the page shows."""
    answer = console.admin.post("/console/users", {"email": email, "role": role})
    assert answer.status_code == 201, answer.text
    return PASSWORD_SHOWN.search(answer.text).group(1)


def row_of(page: str, email: str) -> str:
    """The table row of one user (the page's text between that row's tags)."""
    for row in page.split('<tr data-testid="user-row">')[1:]:
        if email in row.split("</td>")[0]:
            return row.split("</tr>")[0]
    raise AssertionError(f"no row for {email}")


def upload(browser, text: str | bytes, name: str = "catalog.yaml"):
    content = text.encode() if isinstance(text, str) else text
    return browser.post("/console/catalog/upload", files={"file": (name, content, "application/yaml")})


def confirmation_form(page: str) -> dict[str, str]:
    """The fields the confirmation page posts back (as a browser submits its form)."""
    form = page.split('class="confirm-panel catalog-confirm"')[1].split("</form>")[0]
    fields = {name: html.unescape(value) for name, value in re.findall(r'name="(\w+)" value="([^"]*)"', form)}
    fields["document"] = html.unescape(re.search(r'<textarea name="document"[^>]*>(.*)</textarea>', form, re.S).group(1))
    return fields


# ------------------------------------------------------------------------------------------ users
def test_an_admin_creates_a_user_who_signs_in_with_the_password_shown_once(console):
    answer = console.admin.post("/console/users", {"email": "New.Person@Example.com", "role": "operator"})
    assert answer.status_code == 201, answer.text
    password = PASSWORD_SHOWN.search(answer.text).group(1)
    assert len(password) >= 12
    assert "shown this once" in answer.text

    listing = console.admin.get("/console/users")
    assert listing.status_code == 200
    row = row_of(listing.text, "new.person@example.com")
    assert "<td>operator</td>" in row and "badge-active" in row and "<td>never</td>" in row
    assert password not in listing.text  # never again

    client = console.anonymous()
    signed_in = sign_in(client, "new.person@example.com", password)
    assert signed_in.status_code == 303, signed_in.text
    assert client.get("/console/whoami").json() == {"email": "new.person@example.com", "role": "operator",
                                                   "environment": "live"}
    assert "<td>never</td>" not in row_of(console.admin.get("/console/users").text, "new.person@example.com")


def test_a_duplicate_or_bad_user_is_refused_with_a_reason(console):
    create_user(console, "twice@example.com")
    again = console.admin.post("/console/users", {"email": "TWICE@example.com", "role": "viewer"})
    assert again.status_code == 400
    assert "exists already" in again.text and 'data-testid="password"' not in again.text
    bad_role = console.admin.post("/console/users", {"email": "x@example.com", "role": "owner"})
    assert bad_role.status_code == 400 and "is not one of viewer, operator, admin" in bad_role.text
    hostile = console.admin.post("/console/users", {"email": HOSTILE, "role": "viewer"})
    assert hostile.status_code == 400
    assert HOSTILE not in hostile.text and "&lt;script&gt;" in hostile.text


def test_a_markup_address_is_refused_with_its_reason(console):
    answer = console.admin.post("/console/users", {"email": "<script>@x.y", "role": "viewer"})
    assert answer.status_code == 400 and 'data-testid="password"' not in answer.text
    assert "is not an e-mail address: it holds" in words(answer) and "<script>@x.y" not in answer.text
    assert "&lt;script&gt;@x.y" not in console.admin.get("/console/users").text  # nothing was created


def test_a_hostile_address_is_shown_as_text_and_its_actions_still_work(console):
    # made before new addresses were checked (the rule refuses it now): it is still shown as text
    # and can still be disabled
    email = "<script>alert(1)</script>@example.com"
    store = open_store(console.url)
    try:
        rows.insert_user(store, email, "viewer", "not-a-hash", 0)
    finally:
        store.dispose()
    page = console.admin.get("/console/users").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;@example.com" in page
    row = row_of(page, "&lt;script&gt;")
    action = html.unescape(re.search(r'<form method="post" action="([^"]*/console/users/disable[^"]*)"', row).group(1))
    assert "<" not in action
    assert console.admin.post(action).status_code == 303
    assert "badge-disabled" in row_of(console.admin.get("/console/users").text, "&lt;script&gt;")


def test_disabling_a_user_ends_their_session_and_enabling_lets_them_back(console):
    password = create_user(console, "leaver@example.com")
    client = console.anonymous()
    assert sign_in(client, "leaver@example.com", password).status_code == 303
    assert client.get("/console/").status_code == 200

    page = console.admin.get("/console/users").text
    assert "They are signed out at once" in row_of(page, "leaver@example.com")
    done = console.admin.post("/console/users/disable?email=leaver%40example.com")
    assert done.status_code == 303 and done.headers["location"] == "/console/users?done=disabled"
    assert "The user is disabled" in console.admin.get(done.headers["location"]).text

    assert client.get("/console/").status_code == 303  # their session is gone
    refused = sign_in(client, "leaver@example.com", password)
    assert refused.status_code == 200 and "This account is disabled." in refused.text
    assert "badge-disabled" in row_of(console.admin.get("/console/users").text, "leaver@example.com")

    assert console.admin.post("/console/users/enable?email=leaver%40example.com").status_code == 303
    assert sign_in(client, "leaver@example.com", password).status_code == 303


def test_a_reset_shows_a_new_password_once_and_ends_the_old_sessions(console):
    old = create_user(console, "forgetful@example.com")
    client = console.anonymous()
    assert sign_in(client, "forgetful@example.com", old).status_code == 303
    answer = console.admin.post("/console/users/reset?email=forgetful%40example.com")
    assert answer.status_code == 200, answer.text
    new = PASSWORD_SHOWN.search(answer.text).group(1)
    assert new != old and "1 session(s) ended" in answer.text
    assert client.get("/console/").status_code == 303
    assert sign_in(client, "forgetful@example.com", old).status_code == 200  # refused: the form again
    assert sign_in(client, "forgetful@example.com", new).status_code == 303
    assert new not in console.admin.get("/console/users").text


def test_a_locked_out_user_is_shown_locked_until_a_reset(console):
    password = create_user(console, "clumsy@example.com")
    client = console.anonymous()
    for _ in range(5):
        sign_in(client, "clumsy@example.com", "not the password at all")
    assert "badge-locked" in row_of(console.admin.get("/console/users").text, "clumsy@example.com")
    assert sign_in(client, "clumsy@example.com", password).status_code == 200  # refused while locked
    answer = console.admin.post("/console/users/reset?email=clumsy%40example.com")
    assert "the lock-out is lifted" in words(answer)
    new = PASSWORD_SHOWN.search(answer.text).group(1)
    assert "badge-active" in row_of(console.admin.get("/console/users").text, "clumsy@example.com")
    assert sign_in(client, "clumsy@example.com", new).status_code == 303


def test_a_role_change_applies_to_the_next_page(console):
    create_user(console, "promoted@example.com", "viewer")
    done = console.admin.post("/console/users/role?email=promoted%40example.com&role=admin")
    assert done.status_code == 303 and done.headers["location"] == "/console/users?done=role"
    assert "<td>admin</td>" in row_of(console.admin.get("/console/users").text, "promoted@example.com")
    # the viewer fixture user becomes an operator: their open session has the new role at once
    assert console.admin.post("/console/users/role?email=viewer%40example.com&role=operator").status_code == 303
    assert console.viewer.get("/console/whoami").json()["role"] == "operator"
    bad = console.admin.post("/console/users/role?email=viewer%40example.com&role=root")
    assert bad.status_code == 400


def test_an_admin_cannot_disable_themselves_or_lower_their_own_role(console):
    page = console.admin.get("/console/users").text
    mine = row_of(page, "admin@example.com")
    assert "You cannot disable your own account or lower your own role" in mine
    assert "user-disable" not in mine and "user-role-" not in mine
    assert "user-disable" in row_of(page, "viewer@example.com")

    refused = console.admin.post("/console/users/disable?email=admin%40example.com")
    assert refused.status_code == 400 and "you cannot disable your own account" in refused.text
    lowered = console.admin.post("/console/users/role?email=ADMIN%40example.com&role=viewer")
    assert lowered.status_code == 400 and "you cannot lower your own role" in lowered.text
    assert console.admin.get("/console/whoami").json()["role"] == "admin"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_see_or_use_users_and_keys(console, role):
    browser = getattr(console, role)
    for path in ("/console/users", "/console/keys"):
        answer = browser.get(path)
        assert answer.status_code == 403 and "this page needs the admin role" in answer.text
    for path, data in (("/console/users", {"email": "sneaky@example.com", "role": "admin"}),
                       ("/console/users/disable?email=admin%40example.com", {}),
                       ("/console/users/role?email=viewer%40example.com&role=admin", {}),
                       ("/console/users/reset?email=admin%40example.com", {}),
                       ("/console/keys", {"name": "mine"}),
                       ("/console/keys/revoke?id=abc", {})):
        answer = browser.post(path, data)
        assert answer.status_code == 403, (path, answer.text)
        assert "this needs the admin role" in answer.text
    upload_attempt = upload(browser, CATALOG)
    assert upload_attempt.status_code == 403 and "this needs the admin role" in upload_attempt.text
    assert "Upload a catalog" not in browser.get("/console/catalog").text
    assert 'data-testid="no-catalog"' in browser.get("/console/catalog").text
    home = browser.get("/console/").text
    assert 'href="/console/users"' not in home and 'href="/console/keys"' not in home
    assert 'href="/console/catalog"' in home
    admin_home = console.admin.get("/console/").text
    assert 'href="/console/users"' in admin_home and 'href="/console/keys"' in admin_home
    assert 'data-testid="password"' not in console.admin.get("/console/users").text
    assert "sneaky@example.com" not in console.admin.get("/console/users").text


def test_a_post_without_its_csrf_token_is_refused(console):
    for path, data in (("/console/users", {"email": "csrf@example.com", "role": "viewer"}),
                       ("/console/users/disable?email=viewer%40example.com", {}),
                       ("/console/keys", {}),
                       ("/console/catalog/upload", {})):
        answer = console.admin.post(path, data, csrf=False)
        assert answer.status_code == 403, (path, answer.text)
        assert "security token" in answer.text
    assert "csrf@example.com" not in console.admin.get("/console/users").text
    assert console.viewer.get("/console/whoami").status_code == 200  # not disabled


def test_bad_query_parameters_get_a_400_page(console):
    for path in ("/console/users?page=0", "/console/users?page=x", "/console/users?done=%3Cb%3E",
                 "/console/keys?page=-1", "/console/catalog?done=whatever", "/console/catalog?page=1e3"):
        answer = console.admin.get(path)
        assert answer.status_code == 400, (path, answer.text)
        assert "<b>" not in answer.text


def test_the_users_list_is_paged(console):
    store = open_store(console.url)
    try:  # rows written directly: 50 argon2 hashes through the page would cost seconds
        for number in range(50):
            rows.insert_user(store, f"user{number:02}@example.com", "viewer", "not a hash", 0)
    finally:
        store.dispose()
    first = console.admin.get("/console/users").text
    assert first.count('data-testid="user-row"') == 50
    assert 'rel="next" href="/console/users?page=2"' in first
    second = console.admin.get("/console/users?page=2").text
    assert second.count('data-testid="user-row"') == 3  # 53 users: the fixture's three come first
    assert "viewer@example.com" in second and 'rel="next"' not in second


# ------------------------------------------------------------------------------------------ keys
def test_a_key_is_shown_once_works_in_its_environment_only_and_can_be_revoked(console):
    created = console.admin.post("/console/keys", {"name": HOSTILE})
    assert created.status_code == 201, created.text
    secret = SECRET_SHOWN.search(created.text).group(1)
    assert secret.startswith("rc_live_")
    assert HOSTILE not in created.text and "&lt;script&gt;" in created.text

    listing = console.admin.get("/console/keys").text
    key_id = secret.split("_")[2]
    assert key_id in listing and secret.split("_", 3)[3] not in listing
    assert 'data-testid="secret"' not in listing

    revoked = console.admin.post(f"/console/keys/revoke?id={key_id}")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/console/keys?done=revoked"
    assert "The key is revoked" in console.admin.get(revoked.headers["location"]).text
    assert console.api.client.get("/v1/customers", headers={"X-API-KEY": secret}).status_code == 401


def test_a_key_created_in_sandbox_is_not_listed_or_revocable_on_live(console):
    switched = console.admin.post("/console/environment", {"environment": "sandbox", "back": "/console/keys"})
    assert switched.status_code == 303
    created = console.admin.post("/console/keys", {"name": "sandbox-only"})
    secret = SECRET_SHOWN.search(created.text).group(1)
    assert secret.startswith("rc_sandbox_")
    key_id = secret.split("_")[2]
    assert "sandbox-only" in console.admin.get("/console/keys").text

    console.admin.post("/console/environment", {"environment": "live", "back": "/console/keys"})
    live = console.admin.get("/console/keys").text
    assert key_id not in live and "sandbox-only" not in live
    refused = console.admin.post(f"/console/keys/revoke?id={key_id}")
    assert refused.status_code == 404 and "no active key" in refused.text
    assert console.api.client.get("/v1/customers", headers={"X-API-KEY": secret}).status_code == 200


# --------------------------------------------------------------------------------------- catalog
def test_a_catalog_with_mistakes_lists_every_problem_and_is_not_applied(console):
    answer = upload(console.admin, (EXAMPLES / "catalog-with-mistakes.yaml").read_text(), "mistakes.yaml")
    assert answer.status_code == 200, answer.text
    assert "3 problem(s): nothing was applied" in answer.text
    for path in ("plans[0].charges[1].tiers[1].up_to", "plans[1].charges[0].meter", "subscriptions[0].plan"):
        assert path in answer.text
    assert "unknown meter" in answer.text
    assert "catalog-apply-confirm" not in answer.text
    page = console.viewer.get("/console/catalog").text
    assert 'data-testid="no-catalog"' in page


def test_an_unreadable_catalog_file_is_refused_with_its_line(console):
    answer = upload(console.admin, "meters: [\n  - {code: x\n", "broken.yaml")
    assert answer.status_code == 400 and "broken.yaml: line" in answer.text
    not_text = upload(console.admin, b"\xff\xfe\x00garbage", "binary.yaml")
    assert not_text.status_code == 400 and "not UTF-8" in not_text.text



def test_a_catalog_text_escaping_half_a_character_is_refused_with_where_not_a_server_error(console):
    """"\\ud83d" is half of a UTF-16 pair (JSON joins a pair, YAML does not): not a character, and
    nothing can store it. The upload says where it is, as any other mistake; nothing is applied."""
    yaml_text = CATALOG.replace("name: Acme Inc", 'name: "Rocket \\ud83d\\ude80 Inc"')
    answer = upload(console.admin, yaml_text, "surrogate.yaml")
    assert answer.status_code == 400, answer.text
    page = html.unescape(answer.text)
    assert "surrogate.yaml: customers[0].name" in page and "U+D83D" in page
    json_text = '{"plans": [], "customers": [{"reference": "acme", "name": "half \\udc00"}]}'
    answer = upload(console.admin, json_text, "surrogate.json")
    assert answer.status_code == 400 and "surrogate.json: customers[0].name" in html.unescape(answer.text)
    assert 'data-testid="no-catalog"' in console.viewer.get("/console/catalog").text

def test_a_good_catalog_is_applied_only_after_confirmation(console):
    console.api.apply_catalog()  # version 1
    page = console.viewer.get("/console/catalog").text
    assert "version 1" in page and "Upload a catalog" not in page  # a viewer reads, never uploads

    changed = CATALOG.replace('amount: "49.00"', 'amount: "59.00"').replace("Acme Inc", HOSTILE)
    checked = upload(console.admin, changed)
    assert checked.status_code == 200, checked.text
    assert "Valid: 5 meters, 1 plans, 1 customers, 1 subscriptions. Not applied yet." in words(checked)
    assert "It becomes version 2 of the live catalog (replacing version 1)" in words(checked)
    assert "Nothing is invoiced yet, so no invoice changes." in words(checked)
    assert HOSTILE not in checked.text
    assert "version 1" in console.admin.get("/console/catalog").text
    assert "version 2" not in console.admin.get("/console/catalog").text  # not applied by the check

    applied = console.admin.post("/console/catalog/upload", confirmation_form(checked.text))
    assert applied.status_code == 303 and applied.headers["location"] == "/console/catalog?done=applied"
    page = console.operator.get("/console/catalog").text
    assert 'data-testid="catalog-version">version 2<' in page
    assert page.count("<tr><td class=\"num\">") == 2  # the history: versions 2 and 1
    assert console.api.get("/v1/catalog").json()["version"] == 2
    assert HOSTILE not in page


def test_a_confirmation_made_stale_by_another_apply_is_refused(console):
    checked = upload(console.admin, CATALOG)
    form = confirmation_form(checked.text)
    assert form["base"] == ""
    console.api.apply_catalog(CATALOG.replace("Acme Inc", "Acme Two"))  # someone else, meanwhile
    stale = console.admin.post("/console/catalog/upload", form)
    assert stale.status_code == 400
    assert "another catalog version was applied since this file was checked" in stale.text
    assert console.api.get("/v1/catalog").json()["version"] == 1


def test_the_impact_on_invoices_is_stated_before_applying(console):
    console.api.apply_catalog()
    events = [{"id": "e1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}]
    assert console.api.post("/v1/events", json=events).status_code < 300
    assert console.api.post("/v1/invoice-runs", json={"until": "2026-02-01"}).status_code < 300
    checked = upload(console.admin, CATALOG.replace('amount: "49.00"', 'amount: "59.00"'))
    # acme is billed in Europe/Berlin: its February starts at 23:00 UTC; both January drafts move
    assert ("The next invoice run (up to 2026-01-31T23:00:00Z): 0 draft(s) to create, 2 to refresh, 0 to remove; "
            "0 correction(s) of final invoices.") in words(checked)


def test_catalogs_are_per_environment(console):
    console.api.apply_catalog(env="sandbox")
    assert 'data-testid="no-catalog"' in console.admin.get("/console/catalog").text
    console.admin.post("/console/environment", {"environment": "sandbox", "back": "/console/catalog"})
    sandbox = console.admin.get("/console/catalog").text
    assert "version 1" in sandbox and "5</div><div class=\"label\">meters" in sandbox.replace("\n", "")


def test_the_new_pages_answer_no_one_signed_out(console):
    client: TestClient = console.anonymous()
    for path in ("/console/users", "/console/keys", "/console/catalog"):
        assert client.get(path).status_code == 303
    assert client.post("/console/catalog/upload", files={"file": ("c.yaml", b"x")}).status_code == 303


def test_the_first_catalog_and_an_unchanged_one_from_the_console(console):
    first = upload(console.admin, CATALOG)
    assert "It becomes version 1 of the live catalog (its first)" in words(first)
    assert console.admin.post("/console/catalog/upload", confirmation_form(first.text)).headers["location"] == \
        "/console/catalog?done=applied"
    same = upload(console.admin, CATALOG)
    answer = console.admin.post("/console/catalog/upload", confirmation_form(same.text))
    assert answer.headers["location"] == "/console/catalog?done=unchanged"
    page = console.admin.get(answer.headers["location"])
    assert "The file equals the current version: nothing changed." in page.text
    assert 'data-testid="catalog-version">version 1<' in page.text


def test_an_upload_adding_look_alike_coupon_codes_is_refused_with_its_reasons(console):
    """The coupon code rule (docs/catalog.md, "Codes people type") holds for an upload too: the
    check lists each code at fault with the rule, and no confirmation is offered."""
    console.api.apply_catalog(CATALOG.replace("subscriptions:\n", "coupons:\n"
                                              "  - {code: SPRING, percent_off: \"10\", duration: once}\n"
                                              "subscriptions:\n"))
    alike = CATALOG.replace("subscriptions:\n", "coupons:\n"
                            "  - {code: SPRING, percent_off: \"10\", duration: once}\n"
                            "  - {code: spring, percent_off: \"20\", duration: once}\n"
                            "  - {code: \"SUMMER\\u200b\", percent_off: \"5\", duration: once}\n"
                            "subscriptions:\n")
    answer = upload(console.admin, alike)
    assert answer.status_code == 200, answer.text
    text = html.unescape(words(answer))
    assert "2 problem(s): nothing was applied" in text
    assert "coupons[1].code" in text and "'spring' reads the same as code 'SPRING'" in text
    assert "coupons[2].code" in text and "ASCII letters, digits" in text
    assert "catalog-apply-confirm" not in answer.text
    assert console.api.get("/v1/catalog").json()["version"] == 1


def test_a_refused_new_user_is_refused_on_the_users_page_with_what_was_typed_kept(console):
    """An e-mail that is taken: the users page itself says so (400), the create form open with the
    e-mail and role as typed, so the admin corrects the address instead of starting over."""
    answer = console.admin.post("/console/users", {"email": "viewer@example.com", "role": "operator"})
    assert answer.status_code == 400
    page = answer.text
    assert 'data-testid="users"' in page and 'aria-label="sections"' in page
    assert 'data-testid="refusal"' in page and "exists already" in html.unescape(page)
    assert re.search(r'<details class="confirm admin-create" open>', page)
    assert 'name="email" value="viewer@example.com"' in page
    assert '<option value="operator" selected>' in page
    hostile = console.admin.post("/console/users", {"email": HOSTILE, "role": "viewer"})
    assert hostile.status_code == 400 and HOSTILE not in hostile.text
