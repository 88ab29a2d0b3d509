"""Domain errors shared by every package.

They carry a Chinese message for users and an English one for logs and engineers; the
web layer maps each class to an HTTP status in one table (``gridgov.api.errors``). They
must never carry SQL text or row data.
"""

from __future__ import annotations


class GridgovError(Exception):
    """Base of every error gridgov raises on purpose."""

    code = "error"
    title_zh = "错误"
    title_en = "Error"

    def __init__(
        self,
        detail_zh: str,
        detail_en: str = "",
        *,
        public: dict[str, str | int | float | bool] | None = None,
        **private: object,
    ) -> None:
        """``public`` members may be shown to API clients; ``private`` ones only in logs/CLI."""
        super().__init__(detail_en or detail_zh)
        self.detail_zh = detail_zh
        self.detail_en = detail_en
        self.public = dict(public or {})
        self.private = private

    def __str__(self) -> str:
        context = ", ".join(f"{k}={v}" for k, v in {**self.public, **self.private}.items())
        return f"{self.detail}" + (f" [{context}]" if context else "")

    def members(self) -> dict[str, object]:
        """Extension members of the problem+json body (the ``public`` ones by default)."""
        return dict(self.public)

    @property
    def detail(self) -> str:
        """User-facing text: Chinese first, English after it."""
        if self.detail_en:
            return f"{self.detail_zh} ({self.detail_en})"
        return self.detail_zh


class ConfigurationError(GridgovError):
    code = "configuration"
    title_zh = "配置错误"
    title_en = "Configuration error"


class DatabaseUnavailableError(GridgovError):
    code = "database-unavailable"
    title_zh = "数据库不可用"
    title_en = "Database unavailable"


class PostgisMissingError(GridgovError):
    code = "postgis-missing"
    title_zh = "缺少 PostGIS 扩展"
    title_en = "PostGIS extension missing"


class NotFoundError(GridgovError):
    code = "not-found"
    title_zh = "未找到"
    title_en = "Not found"


class AuthenticationError(GridgovError):
    """No valid session: not logged in, token forged or expired, session idle or revoked."""

    code = "unauthenticated"
    title_zh = "未登录或登录已失效"
    title_en = "Authentication required"


class AccountLockedError(AuthenticationError):
    code = "account-locked"
    title_zh = "账户已锁定"
    title_en = "Account locked"


class PageLoginRequiredError(AuthenticationError):
    """A map page asked for without a session: the browser is sent to the login page."""


class PermissionDeniedError(GridgovError):
    """Logged in, but the role or area scope does not allow this."""

    code = "forbidden"
    title_zh = "无权操作"
    title_en = "Forbidden"


class OutOfScopeError(NotFoundError):
    """A row outside the caller's area: answered exactly like a missing one (404)."""


class InvalidInputError(GridgovError):
    code = "invalid-input"
    title_zh = "输入无效"
    title_en = "Invalid input"


class InvalidParameterError(InvalidInputError):
    """A query parameter that cannot be honoured: OGC APIs answer these with 400, not 422."""

    code = "invalid-parameter"
    title_zh = "请求参数无效"
    title_en = "Invalid parameter"


class ConflictError(GridgovError):
    code = "conflict"
    title_zh = "冲突"
    title_en = "Conflict"


class RegistryError(GridgovError):
    code = "registry"
    title_zh = "图层注册表错误"
    title_en = "Layer registry error"


class PreconditionFailedError(GridgovError):
    """The client's ETag is stale: someone changed the resource since it was read (412)."""

    code = "precondition-failed"
    title_zh = "数据已被他人修改"
    title_en = "Precondition failed"


class PreconditionRequiredError(GridgovError):
    """A write without ``If-Match``: refused so that no edit can overwrite an unseen one (428)."""

    code = "precondition-required"
    title_zh = "缺少 If-Match"
    title_en = "Precondition required"
