"""Console users as the service keeps them: addresses, passwords, roles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.services import users
from ratecard.services.errors import Conflict, InvalidInput
from ratecard.store import open_store
from ratecard.store.console_users import user_by_email

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path / 'u.db'}")
    yield opened
    opened.dispose()


def test_addresses_are_compared_case_and_space_insensitively():
    assert users.normalize_email("  Ann@Example.COM ") == "ann@example.com"


@pytest.mark.parametrize("address", ["", "ann", "ann@", "@example.com", "a b@example.com", "ann@example",
                                     "ann\u202e@example.com", "a" * 250 + "@example.com"])
def test_what_is_not_an_address_is_refused(address):
    with pytest.raises(InvalidInput):
        users.normalize_email(address)


def test_roles_include_the_ones_below():
    admin = users.ConsoleSession("t", "a@example.com", "admin", "live", "c")
    viewer = users.ConsoleSession("t", "v@example.com", "viewer", "live", "c")
    assert admin.can("viewer") and admin.can("operator") and admin.can("admin")
    assert viewer.can("viewer") and not viewer.can("operator") and not viewer.can("admin")


def test_only_the_hash_is_stored_and_a_second_account_for_one_address_is_refused(store):
    created, generated = users.create_user(store, "ann@example.com", "viewer", "a long enough password", NOW)
    assert created == {"email": "ann@example.com", "role": "viewer", "disabled": False, "locked": False,
                       "created_at": "2026-12-01T00:00:00Z", "last_login_at": None}
    assert generated is None
    row = user_by_email(store, "ann@example.com")
    assert "a long enough password" not in row.password_hash and row.password_hash.startswith("$argon2id$")
    with pytest.raises(Conflict):
        users.create_user(store, "ANN@example.com", "admin", "another long password", NOW)


def test_a_generated_password_is_returned_once_and_works(store):
    _, generated = users.create_user(store, "gen@example.com", "operator", None, NOW)
    assert generated is not None and len(generated) >= 20
    opened = users.login(store, "gen@example.com", generated, NOW)
    assert opened.role == "operator" and opened.environment == "live"
    assert users.session(store, opened.token, NOW) == opened


@pytest.mark.parametrize("password", ["short", "x" * 11, "x" * 1025])
def test_passwords_are_bounded(store, password):
    with pytest.raises(InvalidInput):
        users.create_user(store, "p@example.com", "viewer", password, NOW)


def test_an_unknown_role_is_refused(store):
    with pytest.raises(InvalidInput):
        users.create_user(store, "r@example.com", "owner", "a long enough password", NOW)


def test_no_cookie_value_finds_a_session_it_was_not_given(store):
    users.create_user(store, "s@example.com", "viewer", "a long enough password", NOW)
    real = users.login(store, "s@example.com", "a long enough password", NOW)

    @settings(max_examples=60, deadline=None)
    @given(token=st.text(max_size=300))
    def check(token: str) -> None:
        assert users.session(store, token, NOW) is None or token == real.token

    check()
