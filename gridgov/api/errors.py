"""One mapping from domain errors to HTTP responses (RFC 9457 problem+json).

Bodies name the problem in Chinese first, English after; they never carry SQL text, stack
traces or row data. Unexpected errors are logged server-side and answered generically.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridgov.errors import (
    AccountLockedError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailableError,
    GridgovError,
    InvalidInputError,
    InvalidParameterError,
    NotFoundError,
    OutOfScopeError,
    PageLoginRequiredError,
    PermissionDeniedError,
    PostgisMissingError,
    PreconditionFailedError,
    PreconditionRequiredError,
    RegistryError,
)

log = logging.getLogger("gridgov.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:gridgov:problem:"
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code"})

# The one table from domain error to status; first match wins, so subclasses come first.
STATUS_OF: tuple[tuple[type[GridgovError], int], ...] = (
    (NotFoundError, 404),
    (AccountLockedError, 423),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (InvalidParameterError, 400),
    (InvalidInputError, 422),
    (ConflictError, 409),
    (PreconditionFailedError, 412),
    (PreconditionRequiredError, 428),
    (DatabaseUnavailableError, 503),
    (PostgisMissingError, 503),
    (ConfigurationError, 500),
    (RegistryError, 500),
    (GridgovError, 500),
)

# Titles of plain HTTP errors raised by the framework (unknown route, wrong method, …).
HTTP_TITLES_ZH = {
    400: "请求无效",
    401: "未登录",
    403: "无权访问",
    404: "未找到",
    405: "不支持的请求方法",
    406: "不支持的响应格式",
    409: "冲突",
    412: "数据已被他人修改",
    413: "请求体过大",
    415: "不支持的内容类型",
    422: "输入无效",
    423: "账户已锁定",
    428: "缺少 If-Match",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂不可用",
}


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error of this API is answered."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="urn:gridgov:problem:<code>")
    title: str = Field(description="标题 (Chinese first, English in brackets)")
    status: int
    detail: str = Field(description="说明 (Chinese first, English in brackets)")
    instance: str | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()
_PROBLEM_TEXT = {
    400: "请求参数无效 (invalid query parameter)",
    401: "未登录或登录已失效 (no valid session token)",
    403: "无权操作 (the role or area may not)",
    404: "未找到 (no such resource)",
    409: "冲突 (conflicts with the stored state)",
    413: "请求体过大 (request body over the limit)",
    422: "输入无效 (invalid input)",
    503: "数据库不可用，稍后重试 (database unavailable; retry after `Retry-After` seconds)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers (and 503's Retry-After)."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": _PROBLEM_TEXT.get(status, HTTP_TITLES_ZH.get(status, "错误")),
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
        }
        if status == 503:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before retrying",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            }
        documented[status] = entry
    return documented


# Every operation can answer these: bad parameters or body, unknown ids, oversized bodies,
# and a database that is unusable for the moment.
COMMON_PROBLEMS = problem_responses(400, 404, 413, 422, 503)
# Routes behind a session: no or a stale token (401), a role or area that may not (403).
SESSION_PROBLEMS = {**COMMON_PROBLEMS, **problem_responses(401, 403)}


def status_for(error: GridgovError) -> int:
    return next(status for cls, status in STATUS_OF if isinstance(error, cls))


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str = "about-blank",
    instance: str | None = None,
    **extra: object,
) -> JSONResponse:
    """A problem+json response; ``extra`` members must hold no personal or SQL data."""
    body: dict[str, object] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    # Extension members never overwrite the standard ones.
    body.update({k: v for k, v in extra.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def retry_after(request: Request, response: JSONResponse) -> JSONResponse:
    """A 503 says when to come back (RFC 9110 `Retry-After`, in seconds)."""
    if response.status_code == 503:
        settings = getattr(request.app.state, "settings", None)
        response.headers["Retry-After"] = str(getattr(settings, "retry_after_s", 5))
    return response


def _http_title(status: int) -> str:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return f"{HTTP_TITLES_ZH.get(status, '错误')} ({phrase})"


def _audit_refusal(request: Request, exc: GridgovError, status: int) -> None:
    """Refused attempts go to the audit log, in a transaction of their own."""
    from gridgov.api.auth import client_ip
    from gridgov.layers.audit import AuditEvent, record_detached

    principal = getattr(request.state, "principal", None)
    user = getattr(principal, "user", None)
    event = AuditEvent(
        action=f"{request.method} {request.url.path}",
        outcome="refused",
        username=getattr(user, "username", None),
        user_id=getattr(user, "id", None),
        role=getattr(getattr(user, "role", None), "value", None),
        ip=client_ip(request),
        target=request.url.path,
        status=status,
        detail={"reason": exc.code, "why": exc.detail_en or exc.detail_zh},
    )
    record_detached(request.app.state.engine, event)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GridgovError)
    status = status_for(exc)
    if status in (401, 403, 423) or isinstance(exc, OutOfScopeError):
        _audit_refusal(request, exc, status)
    if isinstance(exc, PageLoginRequiredError):
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
    if status >= 500:
        log.error("%s on %s: %s", exc.code, request.url.path, exc.detail_en or exc.detail_zh)
    response = problem(
        status,
        f"{exc.title_zh} ({exc.title_en})",
        exc.detail,
        code=exc.code,
        instance=request.url.path,
        **{k: v for k, v in exc.members().items() if k not in RESERVED_MEMBERS},
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gridgov"'
    return retry_after(request, response)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _http_title(exc.status_code)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"没有这个地址 (no such path): {request.url.path}"
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's words for a body that is not UTF-8, or a number too long to read.
        detail = (
            "请求体无法解析：须为 UTF-8 编码的 JSON "
            "(the body could not be parsed: send JSON in UTF-8)"
        )
    # An HTTPException may carry its own problem code and public members (see limits.py).
    code = str(getattr(exc, "problem_code", "about-blank"))
    extra: dict[str, object] = dict(getattr(exc, "problem_extra", {}))
    response = problem(
        exc.status_code,
        _http_title(exc.status_code),
        detail,
        code=code,
        instance=request.url.path,
        **{k: v for k, v in extra.items() if k not in RESERVED_MEMBERS},
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return retry_after(request, response)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Name each offending field and why, but never echo the submitted values back.
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": _message(err),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    where = "; ".join(".".join(e["loc"]) + ": " + str(e["msg"]) for e in errors)
    return problem(
        422,
        _http_title(422),
        f"请求参数无效 (invalid request): {where}",
        code="validation",
        instance=request.url.path,
        errors=errors,
    )


# Pydantic's error types in Chinese (its English message follows in brackets), with the
# limits its context gives; users read Chinese first.
_VALIDATION_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "须大于或等于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "须小于或等于 {le}",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "string_pattern_mismatch": "格式不符",
    "literal_error": "取值无效，可用：{expected}",
    "enum": "取值无效，可用：{expected}",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "finite_number": "须为有限的数（不能是 NaN 或无穷大）",
    "bool_parsing": "须为 true 或 false",
    "bool_type": "须为 true 或 false",
    "string_type": "须为文本",
    "datetime_parsing": "不是有效的时间（如 2025-05-01T09:30:00+08:00）",
    "datetime_from_date_parsing": "不是有效的时间（如 2025-05-01T09:30:00+08:00）",
    "datetime_type": "不是有效的时间（如 2025-05-01T09:30:00+08:00）",
    "date_parsing": "不是有效的日期（如 2025-05-01）",
    "date_from_datetime_parsing": "不是有效的日期（如 2025-05-01）",
    "date_type": "不是有效的日期（如 2025-05-01）",
    "json_invalid": "不是有效的 JSON",
    "json_type": "不是有效的 JSON",
    "model_type": "须为 JSON 对象",
    "model_attributes_type": "须为 JSON 对象",
    "dict_type": "须为 JSON 对象",
    "list_type": "须为数组",
    "union_tag_invalid": "类型无效",
}


def _message(err: Any) -> str:
    """Pydantic's message, Chinese first; for unparseable JSON also the parser's reason
    (never the input). Our own validators' messages (``value_error``) are Chinese already."""
    msg = str(err.get("msg", ""))
    ctx = err.get("ctx") or {}
    reason = ctx.get("error")
    kind = str(err.get("type", ""))
    if kind == "json_invalid" and isinstance(reason, str):
        msg = f"{msg}: {reason}"
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    template = _VALIDATION_ZH.get(kind)
    if template is None:
        return msg
    try:
        zh = template.format(**{k: v for k, v in ctx.items() if isinstance(v, str | int | float)})
    except KeyError:
        zh = template.split("{", 1)[0].rstrip("，：")
    return f"{zh} ({msg})"


QUERY_CANCELED = "57014"  # statement_timeout (or a cancel request)


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DataError) and "NUL" in str(exc.orig):
        # psycopg refuses a NUL character in a text value before sending the statement
        # (PostgreSQL text cannot hold one): a body value the client must fix, not our
        # fault, so no traceback in the log either.
        log.info("NUL character refused on %s", request.url.path)
        return problem(
            422,
            _http_title(422),
            "文本字段含有 NUL 字符 (a text value contains a NUL character)",
            code="nul-character",
            instance=request.url.path,
        )
    log.exception("database error on %s", request.url.path)
    # A lost connection (killed backend, restarted server) or an operational failure is
    # temporary: 503 with Retry-After. The request's transaction was rolled back with it.
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if isinstance(exc, OperationalError | PoolTimeoutError) or lost:
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        if sqlstate == QUERY_CANCELED:
            detail = "数据库查询超时，请稍后重试或缩小查询范围 (the query timed out; retry later)"
        elif isinstance(exc, PoolTimeoutError):
            detail = "数据库连接已全部占用，请稍后重试 (every database connection is busy)"
        else:
            detail = "数据库暂时无法访问，请稍后重试 (the database is unreachable; retry later)"
        response = problem(
            503,
            "数据库不可用 (Database unavailable)",
            detail,
            code=DatabaseUnavailableError.code,
            instance=request.url.path,
        )
        return retry_after(request, response)
    return problem(
        500,
        _http_title(500),
        "数据库操作失败 (a database operation failed)",
        code="database",
        instance=request.url.path,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return problem(
        500,
        _http_title(500),
        "服务器内部错误 (internal server error)",
        code="internal",
        instance=request.url.path,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GridgovError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(PoolTimeoutError, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
