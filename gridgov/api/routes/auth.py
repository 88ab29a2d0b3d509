"""Login and logout: a token for API clients, an HttpOnly cookie for the map pages.

Bad credentials answer 401 without saying whether the user exists; the fifth failure in a
row locks the account (423) for ``login_lock_minutes``. Every attempt is audited.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from gridgov.api.auth import COOKIE, PrincipalDep, client_ip, session_cache
from gridgov.api.deps import ConnectionDep, SettingsDep
from gridgov.api.errors import problem
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.layers import accounts, audit
from gridgov.security import tokens
from gridgov.security.passwords import verify_password
from gridgov.security.roles import READ
from gridgov.settings import Settings

router = APIRouter(tags=["auth 登录"], route_class=StrictJSONRoute)


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@dataclass(frozen=True)
class LoginResult:
    status: int  # 200, 401, 403 (disabled), 423 (locked) or 429 (this address throttled)
    detail_zh: str
    detail_en: str
    token: str | None = None
    expires_at: datetime | None = None
    user: accounts.User | None = None
    retry_after_s: int | None = None


BAD_CREDENTIALS = ("用户名或密码错误", "wrong user name or password")


def attempt_login(
    conn: Connection, settings: Settings, username: str, password: str, ip: str | None
) -> LoginResult:
    """Check the credentials, keep the failure count, open a session; audit the outcome."""
    user = accounts.get_user(conn, username)

    def note(outcome: audit.Outcome, status: int, reason: str) -> None:
        audit.record(
            conn,
            audit.AuditEvent(
                action="login",
                outcome=outcome,
                username=username[:64],
                user_id=user.id if user else None,
                role=user.role.value if user else None,
                ip=ip,
                status=status,
                detail={"reason": reason},
            ),
        )

    if ip is not None:
        # Per address, over every account: the per-account lock alone lets one client
        # try a password against every user name (password spraying).
        window = timedelta(minutes=settings.login_ip_window_minutes)
        failures, wait_s = accounts.failures_from(conn, ip, window)
        if failures >= settings.login_ip_max_failures:
            note("refused", 429, "too many failures from this address")
            return LoginResult(
                429,
                "该地址登录失败次数过多，请稍后再试",
                f"too many failed logins from this address; retry in {max(1, int(wait_s))} s",
                retry_after_s=max(1, int(wait_s) + 1),
            )
    if user is None:
        verify_password(None, password)  # same time as a real check: no user enumeration
        note("failed", 401, "unknown user")
        return LoginResult(401, *BAD_CREDENTIALS)
    if accounts.is_locked(conn, user):
        note("refused", 423, "locked")
        return LoginResult(
            423,
            f"连续登录失败 {settings.login_max_failures} 次，账户已锁定，请稍后再试",
            "too many failed logins: the account is locked for a while",
        )
    if not verify_password(user.password_hash, password):
        lock = timedelta(minutes=settings.login_lock_minutes)
        locked = accounts.record_failure(conn, user.id, settings.login_max_failures, lock)
        note(
            "failed",
            423 if locked else 401,
            "wrong password, locked" if locked else "wrong password",
        )
        if locked:
            return LoginResult(
                423,
                f"连续登录失败 {settings.login_max_failures} 次，账户已锁定 "
                f"{settings.login_lock_minutes} 分钟",
                f"{settings.login_max_failures} failed logins: the account is locked for "
                f"{settings.login_lock_minutes} minutes",
            )
        return LoginResult(401, *BAD_CREDENTIALS)
    if user.disabled:
        note("refused", 403, "disabled")
        return LoginResult(403, "账户已停用", "the account is disabled")
    session_id, _ = accounts.open_session(
        conn, user.id, ip, timedelta(hours=settings.session_max_hours)
    )
    token, expires = tokens.issue(
        settings.require_secret_key(),
        user.id,
        user.username,
        session_id,
        timedelta(hours=settings.session_max_hours),
    )
    note("ok", 200, "password")
    return LoginResult(200, "登录成功", "logged in", token, expires, user)


def _set_cookie(response: Response, result: LoginResult, settings: Settings) -> None:
    assert result.token is not None
    response.set_cookie(
        COOKIE,
        result.token,
        max_age=settings.session_max_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        path="/",
    )


def _user_body(user: accounts.User) -> dict[str, Any]:
    readable = sorted(READ[user.role])
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "role_zh": user.role.title_zh,
        "area_codes": list(user.area_codes),
        "all_areas": user.scope.unrestricted,
        "grants": sorted(user.grants),
        "layers": readable,
    }


@router.post(
    "/auth/login",
    summary="登录，取得令牌 (log in: a bearer token, and a cookie for the map pages)",
    responses={
        401: {"description": "用户名或密码错误"},
        423: {"description": "账户已锁定"},
        429: {
            "description": "该地址登录失败过多 (too many failed logins from this address)",
            "headers": {
                "Retry-After": {
                    "description": "秒 (seconds until logins from this address are taken again)",
                    "schema": {"type": "integer"},
                }
            },
        },
    },
)
def login(body: LoginIn, request: Request, conn: ConnectionDep, settings: SettingsDep) -> Response:
    result = attempt_login(conn, settings, body.username, body.password, client_ip(request))
    if result.token is None or result.user is None:
        # Returned, not raised: the failure count and the audit record must be committed.
        response: Response = problem(
            result.status,
            "登录失败 (Login failed)",
            f"{result.detail_zh} ({result.detail_en})",
            code="login-failed",
            instance=request.url.path,
        )
        if result.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gridgov"'
        if result.retry_after_s is not None:
            response.headers["Retry-After"] = str(result.retry_after_s)
        return response
    assert result.expires_at is not None
    response = JSONResponse(
        {
            "access_token": result.token,
            "token_type": "bearer",
            "expires_at": result.expires_at.isoformat(),
            "idle_timeout_s": settings.session_idle_minutes * 60,
            "user": _user_body(result.user),
        }
    )
    _set_cookie(response, result, settings)
    return response


@router.post("/auth/logout", summary="退出登录 (log out: the session ends)")
def logout(request: Request, principal: PrincipalDep, conn: ConnectionDep) -> Response:
    accounts.end_session(conn, principal.session_id)
    session_cache(request).forget(principal.session_id)
    audit.record(conn, principal.event("logout", "ok"))
    response = JSONResponse({"status": "logged out"})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/auth/me", summary="当前用户 (who am I: role, area scope, readable layers)")
def me(principal: PrincipalDep) -> dict[str, Any]:
    return _user_body(principal.user)


def _safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/map"


LOGIN_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录 · gridgov 网格化服务管理</title>
<style>
body{{margin:0;font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;background:#eef2f6;
display:flex;align-items:center;justify-content:center;min-height:100vh;color:#1f2d3d}}
form{{background:#fff;padding:32px 36px;border-radius:8px;box-shadow:0 2px 12px rgba(0,0,0,.12);
width:320px}}
h1{{font-size:20px;margin:0 0 4px}} p.sub{{margin:0 0 20px;color:#667;font-size:13px}}
label{{display:block;font-size:14px;margin:12px 0 4px}}
input{{width:100%;box-sizing:border-box;padding:8px;font-size:15px;border:1px solid #c8d0da;
border-radius:4px}}
button{{margin-top:20px;width:100%;padding:10px;font-size:16px;background:#1f6fd1;color:#fff;
border:0;border-radius:4px;cursor:pointer}}
.error{{background:#fdecea;color:#b3261e;padding:8px 10px;border-radius:4px;font-size:14px}}
.note{{font-size:12px;color:#889;margin-top:16px}}
</style></head>
<body><form method="post" action="/login" id="login-form">
<h1>网格化服务管理</h1><p class="sub">gridgov · 请登录</p>
{error}
<label for="username">用户名</label>
<input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">密码</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<button type="submit">登录</button>
<p class="note">连续 {failures} 次密码错误将锁定账户；{idle} 分钟无操作自动退出。</p>
</form></body></html>
"""


def _login_page(settings: Settings, next_path: str, error: str = "", status: int = 200) -> Response:
    body = LOGIN_PAGE.format(
        error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
        next=html.escape(next_path, quote=True),
        failures=settings.login_max_failures,
        idle=settings.session_idle_minutes,
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(settings: SettingsDep, next: str | None = None) -> Response:
    return _login_page(settings, _safe_next(next))


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(
    request: Request,
    conn: ConnectionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    target = _safe_next(next)
    result = attempt_login(conn, settings, username, password, client_ip(request))
    if result.token is None:
        return _login_page(settings, target, result.detail_zh, result.status)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, result, settings)
    return response


__all__ = ["attempt_login", "router"]
