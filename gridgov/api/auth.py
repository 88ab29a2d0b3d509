"""Who is asking: the session token (header or cookie), the account behind it, and refusals.

Every data route depends on :func:`get_principal` (through the router), which answers 401
for anyone without a live session. Routes then ask the principal for the layer
(:meth:`Principal.require_read` / :meth:`Principal.require_edit`, 403) and pass its area
scope down to ``gridgov.layers`` where the SQL predicate is built (``layers.scope``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from gridgov.api.deps import ConnectionDep, ReadConnectorDep, SettingsDep
from gridgov.errors import (
    AuthenticationError,
    OutOfScopeError,
    PageLoginRequiredError,
    PermissionDeniedError,
)
from gridgov.layers import accounts, audit
from gridgov.layers import scope as rls
from gridgov.layers.accounts import User
from gridgov.layers.scope import AreaScope
from gridgov.security import tokens
from gridgov.security.roles import Role, can_edit, can_read

COOKIE = "gridgov_session"
# Cookies authenticate only requests that cannot change anything (and logout), so that a
# page on another site can never make a logged-in browser write (CSRF).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    user: User
    session_id: str
    ip: str | None

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def scope(self) -> AreaScope:
        return self.user.scope

    @property
    def personal_data(self) -> bool:
        return self.user.personal_data

    def can_read(self, layer: str) -> bool:
        return can_read(self.user.role, layer)

    def require_read(self, layer: str) -> None:
        if not self.can_read(layer):
            raise PermissionDeniedError(
                f"角色 {self.role.title_zh} 无权查看图层 {layer}",
                f"role {self.role.value} may not read layer {layer}",
            )

    def require_edit(self, layer: str) -> None:
        self.require_read(layer)
        if not can_edit(self.user.role, layer):
            raise PermissionDeniedError(
                f"角色 {self.role.title_zh} 无权修改图层 {layer}",
                f"role {self.role.value} may not change layer {layer}",
            )

    def require_visible(self, layer: str, code: str) -> None:
        """404 for an area or grid code outside the scope, exactly as for a missing one."""
        self.require_read(layer)
        if not self.scope.covers_code(code):
            raise OutOfScopeError(f"没有 {code}", f"no {layer} {code}")

    def event(self, action: str, outcome: audit.Outcome, **kwargs: Any) -> audit.AuditEvent:
        """An audit event naming this principal."""
        return audit.AuditEvent(
            action=action,
            outcome=outcome,
            username=self.user.username,
            user_id=self.user.id,
            role=self.user.role.value,
            ip=self.ip,
            **kwargs,
        )


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError(
                "请使用 Bearer 令牌", "use an `Authorization: Bearer <token>` header"
            )
        return value.strip()
    cookie = request.cookies.get(COOKIE)
    if cookie and (request.method in SAFE_METHODS or request.url.path == "/auth/logout"):
        return cookie
    return None


def request_token(request: Request) -> str | None:
    """The session token this request was authenticated with (header or cookie): the
    editor page hands it to its own script, which must send it as a Bearer header to write."""
    return _token(request)


class SessionCache:
    """Sessions checked in the database in the last ``seconds``, per server process.

    Why: a map view fetches dozens of tiles per second, and checking the session row and
    the account for each one cost more than rendering most tiles. Only the tile routes use
    it (:func:`get_read_principal`). A token's signature, audience and issuer are verified
    once per ``seconds`` too (the same string always carries the same claims; decoding it
    was a tenth of a tile request's time), its expiry on every request; what may be up to
    ``seconds`` old is what only the database knows: a revoked or idle session, a disabled
    account, a changed role or area.
    A logout through this server forgets its session at once; a change made elsewhere (the
    CLI, another worker) reaches tiles within ``seconds`` (``GRIDGOV_SESSION_CACHE_SECONDS``,
    0 turns the cache off). Bounded: at most ``MAX_ENTRIES`` sessions, then it starts over.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int], tuple[float, User]] = {}
        self._tokens: dict[str, tuple[float, tokens.TokenClaims]] = {}

    def verified(self, token: str) -> tokens.TokenClaims | None:
        """The claims of ``token`` if it was verified within ``seconds`` and has not expired."""
        if self.seconds <= 0:
            return None
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or entry[0] <= self._clock() or entry[1].expires_at <= datetime.now(UTC):
            return None
        return entry[1]

    def remember(self, token: str, claims: tokens.TokenClaims) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._tokens) >= self.MAX_ENTRIES:
                self._tokens.clear()
            self._tokens[token] = (self._clock() + self.seconds, claims)

    def get(self, session_id: str, user_id: int) -> User | None:
        if self.seconds <= 0:
            return None
        with self._lock:
            entry = self._entries.get((session_id, user_id))
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[(session_id, user_id)]
                return None
            return entry[1]

    def put(self, session_id: str, user_id: int, user: User) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[(session_id, user_id)] = (self._clock() + self.seconds, user)

    def forget(self, session_id: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == session_id]:
                del self._entries[key]
            for token in [t for t, (_, c) in self._tokens.items() if c.session_id == session_id]:
                del self._tokens[token]


def session_cache(request: Request) -> SessionCache:
    cache: SessionCache = request.app.state.session_cache
    return cache


def _claims(request: Request, settings: Any) -> tokens.TokenClaims:
    """The verified claims of the request's token, or :class:`AuthenticationError`."""
    token = _token(request)
    if token is None:
        raise AuthenticationError("请先登录", "log in first (no session token)")
    try:
        return tokens.verify(settings.require_secret_key(), token)
    except tokens.TokenError as exc:
        raise AuthenticationError(
            "登录令牌无效或已过期，请重新登录", "the session token is invalid or expired"
        ) from exc


def _principal(request: Request, user: User, session_id: str) -> Principal:
    principal = Principal(user=user, session_id=session_id, ip=client_ip(request))
    request.state.principal = principal
    return principal


def _checked(
    request: Request,
    conn: Connection,
    settings: Any,
    claims: tokens.TokenClaims,
    cache: SessionCache | None,
) -> Principal:
    """The session checked in the database (and remembered in ``cache``)."""
    check = accounts.touch_session(
        conn, claims.session_id, claims.user_id, timedelta(minutes=settings.session_idle_minutes)
    )
    if check.user is None:
        zh = {
            "idle": "长时间未操作，登录已失效，请重新登录",
            "disabled": "账户已停用",
        }.get(check.reason, "登录已失效，请重新登录")
        raise AuthenticationError(zh, f"the session is no longer valid ({check.reason})")
    if cache is not None:
        cache.put(claims.session_id, claims.user_id, check.user)
    return _principal(request, check.user, claims.session_id)


def authenticate(
    request: Request, conn: Connection, settings: Any, cache: SessionCache | None = None
) -> Principal:
    """The principal of a request, or :class:`AuthenticationError` (401) saying why.

    With ``cache``, a session checked in the database within the cache's lifetime is not
    checked again (the token itself always is)."""
    claims = _claims(request, settings)
    cached = cache.get(claims.session_id, claims.user_id) if cache is not None else None
    if cached is not None:
        return _principal(request, cached, claims.session_id)
    return _checked(request, conn, settings, claims, cache)


def _bound(request: Request, conn: Connection, principal: Principal) -> bool:
    """Reads of an area-scoped account run as the row-level-security role when the
    database has it (checked once).

    A city-wide account (scope ``*``) is not bound: the policy would pass every row, but
    its mere presence keeps PostgreSQL from using the spatial index (PostGIS' ``&&`` is
    not LEAKPROOF, so no index condition may run before the policy): every ``bbox`` read
    became a scan of the whole table (12 s over a million incidents, the load
    benchmark's 503s).
    """
    if request.method not in SAFE_METHODS:
        return False  # writes are checked by the app (403) and run as the login role
    if principal.scope.codes is None:
        return False
    state = request.app.state
    ready: bool | None = getattr(state, "api_role_ready", None)
    if ready is None:
        ready = rls.api_role_ready(conn)
        state.api_role_ready = ready
    return ready


def _scoped(request: Request, conn: Connection, principal: Principal) -> Iterator[Principal]:
    rls.enter(conn, principal.scope, _bound(request, conn, principal))
    try:
        yield principal
    except Exception:
        raise  # the transaction (or savepoint) rolls back, and the settings with it
    else:
        rls.leave(conn)


# Declares the scheme in the OpenAPI document (Swagger's "Authorize" button); the header is
# read and checked by :func:`authenticate`, which also accepts the page cookie.
BEARER = HTTPBearer(
    auto_error=False,
    description="POST /auth/login → access_token; send `Authorization: Bearer <token>`",
)


def get_principal(
    request: Request,
    conn: ConnectionDep,
    settings: SettingsDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> Iterator[Principal]:
    """The caller, with their area scope set in the database for row-level security."""
    yield from _scoped(request, conn, authenticate(request, conn, settings))


async def get_read_principal(
    request: Request,
    connector: ReadConnectorDep,
    settings: SettingsDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> Principal:
    """The caller of a read-engine route (tiles, aggregates): the token verified on every
    request, the session checked in the database at most every ``session_cache_seconds``
    (:class:`SessionCache`), on a read connection, in a worker thread only then.

    No transaction and no row-level-security role: those routes apply the caller's area
    scope in their SQL (``layers.scope.scope_sql``), so nothing here depends on the session
    settings, and no main-pool connection stays open, idle in transaction, while they work
    (under load, 50 users, such idle connections exhausted the pool: 3 s waits, then 503s).
    """
    cache = session_cache(request)
    token = _token(request)
    claims = cache.verified(token) if token is not None else None
    if claims is None:
        claims = _claims(request, settings)  # 401 without a token
        if token is not None:
            cache.remember(token, claims)
    cached = cache.get(claims.session_id, claims.user_id)
    if cached is not None:
        return _principal(request, cached, claims.session_id)

    def check() -> Principal:
        with connector() as conn:
            return _checked(request, conn, settings, claims, cache)

    return await run_in_threadpool(check)


def get_page_principal(
    request: Request, conn: ConnectionDep, settings: SettingsDep
) -> Iterator[Principal]:
    """Like :func:`get_principal`, but a browser without a session goes to ``/login``."""
    try:
        principal = authenticate(request, conn, settings)
    except AuthenticationError as exc:
        raise PageLoginRequiredError(exc.detail_zh, exc.detail_en) from exc
    yield from _scoped(request, conn, principal)


PrincipalDep = Annotated[Principal, Depends(get_principal, scope="function")]
PagePrincipalDep = Annotated[Principal, Depends(get_page_principal, scope="function")]
ReadPrincipalDep = Annotated[Principal, Depends(get_read_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if principal.role is not Role.ADMIN:
        raise PermissionDeniedError("仅系统管理员可操作", "only admins may do this")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin, scope="function")]

__all__ = [
    "COOKIE",
    "AdminDep",
    "PageLoginRequiredError",
    "PagePrincipalDep",
    "Principal",
    "PrincipalDep",
    "ReadPrincipalDep",
    "SessionCache",
    "authenticate",
    "client_ip",
    "get_page_principal",
    "get_principal",
    "get_read_principal",
    "request_token",
    "session_cache",
]
