"""Console users and their sessions: roles, argon2 password hashes, lock-out, expiry.

Decisions (written down in docs/dashboard.md):
- roles are ordered: a viewer reads; an operator also imports, generates, finalizes, voids, holds,
  reconciles and runs cohorts; an admin also manages users, API keys and the catalog;
- five wrong passwords in a row lock the account for 15 minutes (the right password is refused
  too while it is locked); `ratecard users reset` unlocks it at once;
- every refusal before the password is known right says the same sentence, which mentions the
  lock-out rule: saying "this account is locked" would tell a stranger the address has an account
  (an unknown address is never locked), and each costs one password hash, so timing tells nothing;
- a session ends after 30 minutes without a request, and 12 hours after login whatever happens;
- the session cookie holds a random token; the database keeps its SHA-256 only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..domain.instants import from_micros, to_micros
from ..store import Store
from ..store import console_users as rows
from ..store.keys import ENVIRONMENTS
from .errors import Conflict, InvalidInput, NotFound

ROLES = ("viewer", "operator", "admin")
FAILED_LOGINS_BEFORE_LOCK = 5
LOCK_MICROS = 15 * 60 * 1_000_000
IDLE_MICROS = 30 * 60 * 1_000_000
LIFETIME_MICROS = 12 * 3600 * 1_000_000
TOUCH_EVERY_MICROS = 60 * 1_000_000  # last-seen is written at most once a minute, not on every page
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 hashes any length; the bound keeps one login from costing a megabyte of hashing
MAX_EMAIL = 254  # RFC 5321's longest forward path, less its angle brackets
MAX_LOCAL_PART = 64
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What a new user's address may not hold: markup and quoting characters (an address is shown in the
# console, in logs and in CSV exports; a plausible one never needs them: RFC 5322's quoted local
# parts and address literals are refused) and a backslash. The apostrophe stays allowed: real
# addresses hold it (o'brien@…), and every output escapes it like any other text.
NOT_IN_ADDRESS = frozenset('<>"`()[]\\,;:')

_hasher = PasswordHasher()
_dummy: list[str] = []  # the hash below, made once per process


def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so a login for a missing user costs what a wrong
    password costs. Made on the first login, not at import: hashing costs ~0.1-0.4 s of CPU and
    64 MiB, which every process importing this module (each `ratecard` command, `ratecard serve`)
    paid before, sign-ins or not. login() makes it before it looks the address up, so the first
    sign-in costs the same extra hash whether or not the address has an account."""
    if not _dummy:
        _dummy.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[0]


# the one answer to a wrong address, a wrong password and a locked account alike
REFUSED = (f"wrong e-mail or password (after {FAILED_LOGINS_BEFORE_LOCK} wrong passwords in a row an account is "
           f"locked for {LOCK_MICROS // 60_000_000} minutes; an admin can unlock it with `ratecard users reset`)")


class LoginRefused(Exception):
    """Wrong e-mail or password, a disabled or a locked account: `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ConsoleSession:
    token: str
    email: str
    role: str
    environment: str
    csrf_token: str

    def can(self, role: str) -> bool:
        """True when this user's role includes `role` (admin ⊃ operator ⊃ viewer)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")


def _cleaned(email: str) -> str:
    """An address as it is compared and stored: NFKC, no surrounding blanks, lower case."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def normalize_email(email: str) -> str:
    cleaned = _cleaned(email)
    if len(cleaned) > MAX_EMAIL or not EMAIL.match(cleaned) or any(unicodedata.category(c)[0] == "C" for c in cleaned):
        raise InvalidInput(f"{email[:80]!r} is not an e-mail address", field="email")
    return cleaned


def plausible_email(email: str) -> str:
    """A new user's address, normalized, or InvalidInput saying what makes it implausible: one @,
    no whitespace, no control or invisible characters, none of NOT_IN_ADDRESS, at most MAX_EMAIL
    characters (a part before @ of at most MAX_LOCAL_PART), a domain of non-empty labels with a
    dot. Checked where users are created only: signing in and finding an existing user keep the
    looser normalize_email, so a user created before this rule can still be disabled or reset.
    Every address it takes passes normalize_email's checks too (those are implied by these)."""
    cleaned = _cleaned(email)
    shown = f"{email[:80]!r} is not an e-mail address"
    if len(cleaned) > MAX_EMAIL:
        raise InvalidInput(f"{shown}: it has {len(cleaned)} characters (at most {MAX_EMAIL})", field="email")
    if cleaned.count("@") != 1:
        raise InvalidInput(f"{shown}: it needs exactly one @, between the name and the domain", field="email")
    odd = sorted({c for c in cleaned if c in NOT_IN_ADDRESS or unicodedata.category(c)[0] in "CZ"})
    if odd:
        raise InvalidInput(f"{shown}: it holds {' '.join(repr(c) for c in odd)} (an address has no spaces, quotes, "
                           "brackets, markup or control characters)", field="email")
    local, domain = cleaned.split("@")
    if len(local) > MAX_LOCAL_PART:
        raise InvalidInput(f"{shown}: the part before @ has {len(local)} characters (at most {MAX_LOCAL_PART})",
                           field="email")
    if not local or "." not in domain or local.startswith(".") or local.endswith(".") or ".." in local or \
            any(not label for label in domain.split(".")):
        raise InvalidInput(f"{shown}: it needs a name before @ and a domain with a dot after it, with no dot "
                           "at the start or end of either or two in a row", field="email")
    return cleaned


def check_password(password: str) -> None:
    # no `field`: the CLI would name it as an option (`--password`), and the password comes from
    # --password-stdin or a prompt
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD} characters")


def generated_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def create_user(store: Store, email: str, role: str, password: str | None,
                now: datetime) -> tuple[dict[str, Any], str | None]:
    """The new user's document, and the generated password when none was given (shown once)."""
    check_role(role)
    address = plausible_email(email)
    generated = None
    if password is None:
        password = generated = generated_password()
    check_password(password)
    row = rows.insert_user(store, address, role, _hasher.hash(password), to_micros(now))
    if row is None:
        raise Conflict(f"a user {address!r} exists already (see `ratecard users list`)")
    return _document(row, now), generated


def list_users(store: Store, now: datetime, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """Every user by e-mail, or one page of them (`limit` rows from `offset`)."""
    return [_document(row, now) for row in rows.all_users(store, offset, limit)]


def has_users(store: Store) -> bool:
    return rows.count_users(store) > 0


def set_disabled(store: Store, email: str, disabled: bool, by: str | None = None) -> dict[str, Any]:
    """Disabling also ends the user's open sessions at once. `by` is the signed-in admin asking
    (the console): they cannot disable themselves, or nobody might be left to enable them."""
    row = _existing(store, email)
    if disabled and by is not None and row.email == normalize_email(by):
        raise Conflict("you cannot disable your own account: another admin would have to enable it again")
    rows.update_user(store, row.id, disabled=disabled)
    if disabled:
        rows.delete_sessions_of(store, row.id)
    return {"email": row.email, "disabled": disabled}


def change_role(store: Store, email: str, role: str, by: str | None = None) -> dict[str, Any]:
    """A new role, in effect from the user's next request (sessions read the role each time).
    `by` is the signed-in admin asking: they cannot lower their own role, or they might leave
    nobody able to manage users."""
    check_role(role)
    row = _existing(store, email)
    if by is not None and row.email == normalize_email(by) and ROLES.index(role) < ROLES.index(row.role):
        raise Conflict(f"you cannot lower your own role to {role}: you would lose the right to manage users; "
                       "another admin can do it")
    rows.update_user(store, row.id, role=role)
    return {"email": row.email, "role": role, "previous_role": row.role}


def reset_password(store: Store, email: str, password: str | None) -> tuple[dict[str, Any], str | None]:
    """A new password (generated when None), the lock-out lifted, every open session ended."""
    row = _existing(store, email)
    generated = None
    if password is None:
        password = generated = generated_password()
    check_password(password)
    rows.update_user(store, row.id, password_hash=_hasher.hash(password), failed_logins=0, locked_until=None)
    ended = rows.delete_sessions_of(store, row.id)
    return {"email": row.email, "sessions_ended": ended}, generated


def login(store: Store, email: str, password: str, now: datetime, environment: str = "live") -> ConsoleSession:
    """A new session for the right password; LoginRefused otherwise (the same words whether the
    e-mail or the password was wrong)."""
    now_us = to_micros(now)
    wrong = LoginRefused(REFUSED)
    dummy = _dummy_hash()
    try:
        address = normalize_email(email)
    except InvalidInput:
        _hasher_verify(dummy, password)
        raise wrong from None
    row = rows.user_by_email(store, address) if len(password) <= MAX_PASSWORD else None
    if row is None:
        _hasher_verify(dummy, password[:MAX_PASSWORD])
        raise wrong
    if row.locked_until is not None and row.locked_until > now_us:
        _hasher_verify(dummy, password)  # the same cost as a wrong password
        raise wrong
    if not _hasher_verify(row.password_hash, password):
        rows.record_failed_login(store, row.id, FAILED_LOGINS_BEFORE_LOCK, now_us + LOCK_MICROS)
        raise wrong
    if row.disabled:
        raise LoginRefused("this account is disabled")
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now_us}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    rows.update_user(store, row.id, **values)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    if environment not in ENVIRONMENTS:
        environment = "live"
    rows.insert_session(store, _digest(token), row.id, environment, csrf, now_us)
    return ConsoleSession(token, row.email, row.role, environment, csrf)


def session(store: Store, token: str, now: datetime) -> ConsoleSession | None:
    """The live session behind a cookie's token; None when unknown, expired, or its user was
    disabled (an expired one is deleted)."""
    if not token or len(token) > 128:
        return None
    digest = _digest(token)
    found = rows.session_by_token(store, digest)
    if found is None:
        return None
    now_us = to_micros(now)
    expired = now_us - found.last_seen_at > IDLE_MICROS or now_us - found.created_at > LIFETIME_MICROS
    if expired or found.user.disabled:
        rows.delete_session(store, digest)
        return None
    if now_us - found.last_seen_at > TOUCH_EVERY_MICROS:
        rows.touch_session(store, digest, now_us)
    return ConsoleSession(token, found.user.email, found.user.role, found.environment, found.csrf_token)


def switch_environment(store: Store, current: ConsoleSession, environment: str, now: datetime) -> ConsoleSession:
    if environment not in ENVIRONMENTS:
        raise InvalidInput(f"{environment!r} is not one of {', '.join(ENVIRONMENTS)}", field="environment")
    rows.touch_session(store, _digest(current.token), to_micros(now), environment=environment)
    return ConsoleSession(current.token, current.email, current.role, environment, current.csrf_token)


def logout(store: Store, token: str) -> None:
    rows.delete_session(store, _digest(token))


def _existing(store: Store, email: str) -> rows.UserRow:
    row = rows.user_by_email(store, normalize_email(email))
    if row is None:
        raise NotFound(f"no user {email[:80]!r} (see `ratecard users list`)")
    return row


def _hasher_verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _document(row: rows.UserRow, now: datetime) -> dict[str, Any]:
    locked = row.locked_until is not None and row.locked_until > to_micros(now)
    return {"email": row.email, "role": row.role, "disabled": row.disabled, "locked": locked,
            "created_at": from_micros(row.created_at).isoformat().replace("+00:00", "Z"),
            "last_login_at": None if row.last_login_at is None
            else from_micros(row.last_login_at).isoformat().replace("+00:00", "Z")}
