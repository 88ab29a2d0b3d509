"""Accounts and sessions: every statement on ``app_user`` and ``user_session``.

Login bookkeeping (failure count, lock, session rows) lives here; hashing and the rules
are in :mod:`gridgov.security.passwords`, token signing in :mod:`gridgov.security.tokens`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from gridgov.errors import ConflictError, InvalidInputError, NotFoundError
from gridgov.layers.scope import LEVEL_OF_LENGTH, AreaScope
from gridgov.security import tokens
from gridgov.security.passwords import check_password, hash_password
from gridgov.security.roles import Grant, Role

_COLUMNS = (
    "id, username, display_name, password_hash, role, area_codes, grants, disabled, "
    "failed_logins, locked_until, last_login_at, created_at"
)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str | None
    password_hash: str
    role: Role
    area_codes: tuple[str, ...]
    grants: frozenset[str]
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime

    @property
    def scope(self) -> AreaScope:
        """Admins see every area; everyone else only their codes."""
        return AreaScope.everything() if self.role is Role.ADMIN else AreaScope.of(self.area_codes)

    @property
    def personal_data(self) -> bool:
        return Grant.PERSONAL_DATA.value in self.grants


def _user(row: object) -> User:
    m = row._mapping  # type: ignore[attr-defined]
    return User(
        id=m["id"],
        username=m["username"],
        display_name=m["display_name"],
        password_hash=m["password_hash"],
        role=Role(m["role"]),
        area_codes=tuple(m["area_codes"] or ()),
        grants=frozenset(m["grants"] or ()),
        disabled=m["disabled"],
        failed_logins=m["failed_logins"],
        locked_until=m["locked_until"],
        last_login_at=m["last_login_at"],
        created_at=m["created_at"],
    )


def check_codes(conn: Connection, codes: Iterable[str]) -> tuple[str, ...]:
    """Area codes that exist in the admin layers (or grids in force); else a clear error."""
    wanted = tuple(dict.fromkeys(c.strip() for c in codes if c.strip()))
    bad = [c for c in wanted if len(c) not in LEVEL_OF_LENGTH or not c.isdigit()]
    if bad:
        raise InvalidInputError(
            "区域代码须为 6/9/12/15 位数字：" + "、".join(bad),
            "area codes have 6, 9, 12 or 15 digits: " + ", ".join(bad),
        )
    known = set(
        conn.execute(
            text(
                "SELECT code FROM district WHERE code = ANY(:c) UNION "
                "SELECT code FROM township WHERE code = ANY(:c) UNION "
                "SELECT code FROM community WHERE code = ANY(:c) UNION "
                "SELECT code FROM grid WHERE code = ANY(:c)"
            ),
            {"c": list(wanted)},
        ).scalars()
    )
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise InvalidInputError(
            "未知的区域代码：" + "、".join(unknown), "unknown area codes: " + ", ".join(unknown)
        )
    return wanted


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: Role,
    area_codes: Iterable[str] = (),
    grants: Iterable[str] = (),
    display_name: str | None = None,
) -> User:
    """A new account; the password must follow the rules and the codes must exist."""
    check_password(password, username)
    codes = check_codes(conn, area_codes)
    if role is not Role.ADMIN and not codes:
        raise InvalidInputError(
            "非管理员账户须指定管辖区域（--area）",
            "every account but an admin needs an area scope (--area)",
        )
    if conn.execute(text("SELECT 1 FROM app_user WHERE username = :u"), {"u": username}).first():
        raise ConflictError(f"用户 {username} 已存在", f"user {username} already exists")
    return insert_user(
        conn, username, hash_password(password), role, codes, grants, display_name=display_name
    )


def insert_user(
    conn: Connection,
    username: str,
    password_hash: str,
    role: Role,
    area_codes: Iterable[str] = (),
    grants: Iterable[str] = (),
    display_name: str | None = None,
) -> User:
    """Insert an account row as given (callers check the password rules and codes)."""
    row = conn.execute(
        text(
            "INSERT INTO app_user "
            "(username, display_name, password_hash, role, area_codes, grants) "
            f"VALUES (:u, :d, :h, :r, :a, :g) RETURNING {_COLUMNS}"
        ),
        {
            "u": username,
            "d": display_name,
            "h": password_hash,
            "r": role.value,
            "a": list(area_codes),
            "g": sorted({Grant(g).value for g in grants}),
        },
    ).one()
    return _user(row)


def get_user(conn: Connection, username: str) -> User | None:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM app_user WHERE username = :u"), {"u": username}
    ).first()
    return _user(row) if row else None


def require_user(conn: Connection, username: str) -> User:
    user = get_user(conn, username)
    if user is None:
        raise NotFoundError(f"没有用户 {username}", f"no user {username}")
    return user


def list_users(conn: Connection) -> list[User]:
    return [_user(r) for r in conn.execute(text(f"SELECT {_COLUMNS} FROM app_user ORDER BY id"))]


def count_users(conn: Connection, role: Role | None = None) -> int:
    if role is None:
        return int(conn.execute(text("SELECT count(*) FROM app_user")).scalar_one())
    return int(
        conn.execute(
            text("SELECT count(*) FROM app_user WHERE role = :r"), {"r": role.value}
        ).scalar_one()
    )


def update_user(
    conn: Connection,
    username: str,
    *,
    role: Role | None = None,
    area_codes: Iterable[str] | None = None,
    grants: Iterable[str] | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> User:
    """Change an account; disabling or a new password also ends its sessions."""
    user = require_user(conn, username)
    values: dict[str, object] = {}
    if role is not None:
        values["role"] = role.value
    if area_codes is not None:
        values["area_codes"] = list(check_codes(conn, area_codes))
    if grants is not None:
        values["grants"] = sorted({Grant(g).value for g in grants})
    if disabled is not None:
        values["disabled"] = disabled
    if password is not None:
        check_password(password, username)
        values["password_hash"] = hash_password(password)
    if not values:
        return user
    assignments = ", ".join(f"{name} = :{name}" for name in values)  # names are ours
    extra = ", password_changed_at = now()" if password is not None else ""
    if disabled is False or password is not None:
        extra += ", failed_logins = 0, locked_until = NULL"
    conn.execute(
        text(f"UPDATE app_user SET {assignments}, updated_at = now(){extra} WHERE id = :id"),
        {**values, "id": user.id},
    )
    if disabled or password is not None:
        end_sessions(conn, user.id)
    return require_user(conn, username)


# --- login bookkeeping -------------------------------------------------------------------


def record_failure(conn: Connection, user_id: int, max_failures: int, lock: timedelta) -> bool:
    """Count a failed login; True when this failure locks the account."""
    row = conn.execute(
        text(
            "UPDATE app_user SET failed_logins = failed_logins + 1, "
            "locked_until = CASE WHEN failed_logins + 1 >= :max THEN now() + :lock "
            "ELSE locked_until END WHERE id = :id RETURNING failed_logins"
        ),
        {"id": user_id, "max": max_failures, "lock": lock},
    ).one()
    return int(row.failed_logins) >= max_failures


def is_locked(conn: Connection, user: User) -> bool:
    if user.locked_until is None:
        return False
    return bool(conn.execute(text("SELECT :t > now()"), {"t": user.locked_until}).scalar_one())


def failures_from(conn: Connection, ip: str, window: timedelta) -> tuple[int, float]:
    """Failed logins from ``ip`` over every account within ``window`` (from the audit log,
    which records each), and the seconds until the oldest of them leaves the window."""
    row = conn.execute(
        text(
            "SELECT count(*), extract(epoch FROM min(at) + :window - now()) FROM audit_log "
            "WHERE action = 'login' AND outcome = 'failed' AND ip = :ip "
            "AND at > now() - :window"
        ),
        {"ip": ip, "window": window},
    ).one()
    return int(row[0]), float(row[1] or 0.0)


SESSION_KEPT_AFTER_END = timedelta(hours=1)


def prune_sessions(conn: Connection) -> int:
    """Delete sessions that ended (expired or revoked) over an hour ago: they can never be
    used again, and the audit log keeps who logged in when. Run at every login, so the
    table holds about the live sessions rather than growing without bound."""
    return conn.execute(
        text(
            "DELETE FROM user_session WHERE expires_at < now() - :kept "
            "OR revoked_at < now() - :kept"
        ),
        {"kept": SESSION_KEPT_AFTER_END},
    ).rowcount


def open_session(
    conn: Connection, user_id: int, ip: str | None, lifetime: timedelta
) -> tuple[str, datetime]:
    """A new session id after a good login (the failure count starts again); ended
    sessions are pruned on the way."""
    prune_sessions(conn)
    session_id = secrets.token_urlsafe(32)
    expires = conn.execute(
        text(
            "INSERT INTO user_session (id, user_id, ip, expires_at) "
            "VALUES (:id, :user, :ip, now() + :life) RETURNING expires_at"
        ),
        {"id": session_id, "user": user_id, "ip": ip, "life": lifetime},
    ).scalar_one()
    conn.execute(
        text(
            "UPDATE app_user SET failed_logins = 0, locked_until = NULL, last_login_at = now() "
            "WHERE id = :id"
        ),
        {"id": user_id},
    )
    return session_id, expires


@dataclass(frozen=True)
class SessionCheck:
    user: User | None
    reason: str  # "ok", "unknown", "revoked", "expired", "idle", "disabled"


def touch_session(conn: Connection, session_id: str, user_id: int, idle: timedelta) -> SessionCheck:
    """Check a session and mark it used; an idle session is ended here and then refused."""
    row = conn.execute(
        text(
            "SELECT s.revoked_at IS NOT NULL AS revoked, s.expires_at <= now() AS expired, "
            "s.last_seen_at + :idle <= now() AS idle, s.last_seen_at < now() - interval '30 s' "
            "AS stale FROM user_session s WHERE s.id = :sid AND s.user_id = :uid"
        ),
        {"sid": session_id, "uid": user_id, "idle": idle},
    ).first()
    if row is None:
        return SessionCheck(None, "unknown")
    if row.revoked:
        return SessionCheck(None, "revoked")
    if row.expired:
        return SessionCheck(None, "expired")
    if row.idle:
        conn.execute(
            text("UPDATE user_session SET revoked_at = now() WHERE id = :sid"), {"sid": session_id}
        )
        return SessionCheck(None, "idle")
    user_row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM app_user WHERE id = :id"), {"id": user_id}
    ).first()
    if user_row is None:
        return SessionCheck(None, "unknown")
    user = _user(user_row)
    if user.disabled:
        return SessionCheck(None, "disabled")
    if row.stale:  # at most one write per session every 30 s
        # SKIP LOCKED: the row stays locked until this request's transaction ends; the
        # session's other requests meanwhile (a map loading twenty tiles at once) must not
        # queue behind it: one of them marking the session used is enough.
        conn.execute(
            text(
                "UPDATE user_session SET last_seen_at = now() WHERE id = "
                "(SELECT id FROM user_session WHERE id = :sid FOR UPDATE SKIP LOCKED)"
            ),
            {"sid": session_id},
        )
    return SessionCheck(user, "ok")


def service_token(
    conn: Connection,
    secret_key: str,
    username: str = "bench_admin",
    role: Role = Role.ADMIN,
    lifetime: timedelta = timedelta(hours=2),
) -> str:
    """A session token for scripts (benchmarks, load tests) driving a live server.

    The account is made if missing, with a random password nobody knows (it can only be
    used through tokens made here, by whoever may write to the database anyway).
    """
    user = get_user(conn, username)
    if user is None:
        user = insert_user(conn, username, hash_password(secrets.token_urlsafe(32)), role)
    session_id, _ = open_session(conn, user.id, "script", lifetime)
    token, _ = tokens.issue(secret_key, user.id, user.username, session_id, lifetime)
    return token


def end_session(conn: Connection, session_id: str) -> None:
    conn.execute(
        text("UPDATE user_session SET revoked_at = now() WHERE id = :sid AND revoked_at IS NULL"),
        {"sid": session_id},
    )


def end_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(
        text(
            "UPDATE user_session SET revoked_at = now() WHERE user_id = :u AND revoked_at IS NULL"
        ),
        {"u": user_id},
    )


__all__ = [
    "SessionCheck",
    "User",
    "check_codes",
    "count_users",
    "create_user",
    "end_session",
    "end_sessions",
    "get_user",
    "insert_user",
    "is_locked",
    "list_users",
    "open_session",
    "record_failure",
    "require_user",
    "service_token",
    "touch_session",
    "update_user",
]
