"""Console users and browser sessions: rows only; the rules (hashing, lock-out, expiry) are in
services/users.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .db import Store
from .schema import console_sessions, console_users


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    role: str
    password_hash: str
    disabled: bool
    failed_logins: int
    locked_until: int | None
    created_at: int
    last_login_at: int | None


@dataclass(frozen=True)
class SessionRow:
    user: UserRow
    environment: str
    csrf_token: str
    created_at: int
    last_seen_at: int


def _user(row: object) -> UserRow:
    return UserRow(row.id, row.email, row.role, row.password_hash, bool(row.disabled), row.failed_logins,  # type: ignore[attr-defined]
                   row.locked_until, row.created_at, row.last_login_at)  # type: ignore[attr-defined]


def insert_user(store: Store, email: str, role: str, password_hash: str, now_us: int) -> UserRow | None:
    """The new user; None when the e-mail is taken (the unique index decides, so two at once cannot both win)."""
    try:
        with store.engine.begin() as connection:
            connection.execute(insert(console_users).values(email=email, role=role, password_hash=password_hash,
                                                            disabled=False, failed_logins=0, created_at=now_us))
    except IntegrityError:
        return None
    return user_by_email(store, email)


def user_by_email(store: Store, email: str) -> UserRow | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(console_users).where(console_users.c.email == email)).first()
    return None if row is None else _user(row)


def all_users(store: Store, offset: int = 0, limit: int | None = None) -> list[UserRow]:
    """By e-mail; a page of them when `limit` is given (the console's list is paged here, not in Python)."""
    query = select(console_users).order_by(console_users.c.email).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as connection:
        return [_user(row) for row in connection.execute(query)]


def count_users(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(console_users)).scalar_one())


def update_user(store: Store, user_id: int, **values: object) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(console_users).where(console_users.c.id == user_id).values(**values))


def record_failed_login(store: Store, user_id: int, limit: int, locked_until: int) -> int:
    """Counts a failure in one statement (two wrong passwords at once both count) and locks the
    account when the count reaches `limit`; returns the count."""
    with store.engine.begin() as connection:
        connection.execute(update(console_users).where(console_users.c.id == user_id)
                           .values(failed_logins=console_users.c.failed_logins + 1))
        count = int(connection.execute(select(console_users.c.failed_logins)
                                       .where(console_users.c.id == user_id)).scalar_one())
        if count >= limit:
            connection.execute(update(console_users).where(console_users.c.id == user_id)
                               .values(locked_until=locked_until, failed_logins=0))
    return count


def insert_session(store: Store, token_sha256: str, user_id: int, environment: str, csrf_token: str,
                   now_us: int) -> None:
    with store.engine.begin() as connection:
        connection.execute(insert(console_sessions).values(token_sha256=token_sha256, user_id=user_id,
                                                           environment=environment, csrf_token=csrf_token,
                                                           created_at=now_us, last_seen_at=now_us))


def session_by_token(store: Store, token_sha256: str) -> SessionRow | None:
    query = (select(console_sessions, console_users)
             .join(console_users, console_users.c.id == console_sessions.c.user_id)
             .where(console_sessions.c.token_sha256 == token_sha256))
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return SessionRow(_user(row), row.environment, row.csrf_token, row.created_at, row.last_seen_at)


def touch_session(store: Store, token_sha256: str, now_us: int, environment: str | None = None) -> None:
    values: dict[str, object] = {"last_seen_at": now_us}
    if environment is not None:
        values["environment"] = environment
    with store.engine.begin() as connection:
        connection.execute(update(console_sessions).where(console_sessions.c.token_sha256 == token_sha256)
                           .values(**values))


def delete_session(store: Store, token_sha256: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(delete(console_sessions).where(console_sessions.c.token_sha256 == token_sha256))


def delete_sessions_of(store: Store, user_id: int) -> int:
    with store.engine.begin() as connection:
        return connection.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id)).rowcount
