"""Settings from the environment (``GRIDGOV_*``, plus the conventional ``DATABASE_URL``).

``make serve`` / ``make test`` write the URLs of the local PostGIS they start into
``.gridgov/local.env``; real environment variables always win over that file.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from gridgov.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = PROJECT_ROOT / ".gridgov"
LOCAL_ENV_FILE = LOCAL_DIR / "local.env"
SECRET_KEY_FILE = LOCAL_DIR / "secret-key"
DATA_KEY_FILE = LOCAL_DIR / "data-key"
DRIVER = "postgresql+psycopg"


def normalise_database_url(raw: str) -> str:
    """Accept libpq-style URLs (``postgres://``, ``postgresql://``) and pin the psycopg 3 driver."""
    try:
        url = make_url(raw)
    except Exception as exc:
        raise ValueError("DATABASE_URL is not a valid database URL") from exc
    if url.get_backend_name() != "postgresql" and url.drivername != "postgres":
        raise ValueError(f"DATABASE_URL must point at PostgreSQL, not {url.drivername!r}")
    return url.set(drivername=DRIVER).render_as_string(hide_password=False)


class Settings(BaseSettings):
    """Runtime configuration; build one per process and pass it down (no globals)."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDGOV_",
        env_file=LOCAL_ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "GRIDGOV_DATABASE_URL"),
        description="PostGIS connection URL of the working database.",
    )
    test_database_url: str | None = Field(
        default=None,
        description="PostGIS URL for the test suite; default: the working URL with '_test' "
        "appended to the database name.",
    )
    bench_database_url: str | None = Field(
        default=None,
        description="PostGIS URL for `make bench`; default: the working URL with '_bench' "
        "appended to the database name.",
    )
    host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port of the web server.")
    db_connect_timeout_s: int = Field(default=5, ge=1, le=120)
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_read_pool_size: int = Field(
        default=16,
        ge=1,
        le=200,
        description="Kept connections of the read pool (tiles, aggregates): at least the "
        "number of concurrent map requests, or connections are opened and closed per request.",
    )
    db_statement_timeout_ms: int = Field(default=60_000, ge=0)
    db_pool_timeout_s: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="How long a request waits for a free pooled connection before a 503.",
    )
    db_max_overflow: int = Field(
        default=10, ge=0, le=100, description="Connections opened beyond the pool under load."
    )
    max_active_requests: int = Field(
        default=8,
        ge=0,
        le=1000,
        description="Requests one server process works on at once; the rest wait in line "
        "(0: no limit). Keep it at or under db_pool_size + db_max_overflow.",
    )
    request_queue_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long a request may wait in line for its turn before a 503.",
    )
    retry_after_s: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="`Retry-After` (seconds) of a 503 answered while the database is unusable.",
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1,
        description="Largest request body (bytes) of every route except layer imports: 413.",
    )
    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1,
        description="Largest layer import upload (bytes): 413.",
    )
    max_geometry_vertices: int = Field(
        default=50_000,
        ge=4,
        description="Most vertices one submitted geometry may have; more is a 422.",
    )
    max_bbox_area_km2: float = Field(
        default=100_000.0,
        gt=0,
        description="Largest area (km²) a `bbox` query may cover; larger is a 400 (leave "
        "`bbox` out to page through a whole layer).",
    )
    assign_tolerance_m: float = Field(
        default=50.0,
        ge=0,
        le=5_000,
        description="Incidents this close outside every grid go to the nearest one (米).",
    )
    max_items_limit: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Largest `limit` of an OGC API items request; a larger one is a 400.",
    )
    tile_cache_max_tiles: int = Field(
        default=200_000,
        ge=0,
        description="Vector tiles kept in the PostgreSQL tile cache (0 turns the cache off).",
    )
    warm_up: bool = Field(
        default=True,
        description="Load the incident aggregate cube at start-up, before serving, so that "
        "the first heatmap request is as fast as the others.",
    )
    unit_plan_poll_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="How often the server writes unit plans published for a later day once "
        "their day has come (部门单元方案到期生效), in seconds; 0 leaves it to "
        "`gridgov plan apply-due`.",
    )
    grid_target_households: int = Field(
        default=400, ge=50, le=5_000, description="Households a grid is sized for (网格户数)."
    )
    grid_max_vertices: int = Field(
        default=5_000,
        ge=4,
        le=1_000_000,
        description="Most vertices a grid may have after an edit (网格顶点上限).",
    )
    workload_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weights of the grid workload index (工作量指数) as JSON, overriding the "
        'defaults, e.g. {"households": 1, "incidents_per_year": 0.5, "group_rentals": 5, '
        '"hazard_major": 30}; keys: households, population, incidents_per_year, rentals, '
        "group_rentals, key_sites, hazard_major, hazard_high, hazard_moderate, hazard_low.",
    )
    basemap_url: str | None = Field(
        default=None,
        description="Base-map tile URL template ({z}/{x}/{y}, optional {s}) of the map pages, "
        "e.g. an intranet 天地图 mirror; unset: no base map (plain background).",
    )
    basemap_attribution: str = Field(
        default="", description="Attribution (HTML allowed) shown for the base map."
    )
    basemap_datum: Literal["wgs84", "cgcs2000", "gcj02"] = Field(
        default="cgcs2000",
        description="Datum of the base-map tiles; gcj02 (e.g. 高德) shifts gridgov's own data "
        "to GCJ-02 for display so that it lines up.",
    )

    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs session tokens (HS256, at least 32 characters); unset: "
        "the file .gridgov/secret-key that `make serve` generates.",
    )
    data_key: SecretStr | None = Field(
        default=None,
        description="AES-256-GCM key (base64 of 32 bytes) that encrypts personal data at rest; "
        "unset: the file .gridgov/data-key that `make serve` generates.",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A session unused this long expires (分钟)."
    )
    session_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="Tile routes re-check a session in the database at most this often (秒): "
        "a revoked session or changed account reaches tiles within this delay; 0: every time.",
    )
    session_max_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="Longest life of a session token (小时)."
    )
    login_max_failures: int = Field(
        default=5, ge=1, le=100, description="Failed logins in a row that lock an account."
    )
    login_lock_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="How long a locked account stays locked."
    )
    login_ip_max_failures: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Failed logins from one client address, over every account, within "
        "login_ip_window_minutes that make further logins from it a 429.",
    )
    login_ip_window_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="Window of login_ip_max_failures."
    )
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set it behind HTTPS)."
    )

    @field_validator("database_url", "test_database_url", "bench_database_url")
    @classmethod
    def _normalise(cls, value: str | None) -> str | None:
        return None if not value else normalise_database_url(value)

    @field_validator("workload_weights")
    @classmethod
    def _known_weights(cls, value: dict[str, float]) -> dict[str, float]:
        from gridgov.gis.measures import WorkloadWeights

        WorkloadWeights.from_mapping(value)  # raises on an unknown or negative weight
        return value

    def require_database_url(self) -> URL:
        """The working database URL, or a clear error naming how to set it."""
        if not self.database_url:
            raise ConfigurationError(
                "未配置数据库：请运行 make serve，或设置 DATABASE_URL",
                "DATABASE_URL is not set: run `make serve`, or set DATABASE_URL",
            )
        return make_url(self.database_url)

    def require_secret_key(self) -> str:
        """The token signing key: from the environment, else the local file; never a default."""
        key = _secret(self.secret_key, SECRET_KEY_FILE)
        if key is None or len(key) < 32:
            raise ConfigurationError(
                "未配置令牌签名密钥：请运行 make serve，或设置 GRIDGOV_SECRET_KEY"
                "（至少 32 个字符）",
                "no token signing key: run `make serve`, or set GRIDGOV_SECRET_KEY "
                "(at least 32 characters)",
            )
        return key

    def require_data_key(self) -> bytes:
        """The personal-data encryption key (32 bytes), from the environment or local file."""
        raw = _secret(self.data_key, DATA_KEY_FILE)
        try:
            key = base64.b64decode(raw or "", validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigurationError(
                "未配置个人信息加密密钥：请运行 make serve，或设置 GRIDGOV_DATA_KEY"
                "（32 字节的 base64）",
                "no personal-data key: run `make serve`, or set GRIDGOV_DATA_KEY "
                "(base64 of 32 bytes)",
            )
        return key

    def require_test_database_url(self) -> URL:
        """The test database: never the working one, so tests cannot touch real data."""
        return self._side_database(self.test_database_url, "_test", "测试数据库", "test")

    def require_bench_database_url(self) -> URL:
        """The benchmark database: never the working one, since benchmarks truncate tables."""
        return self._side_database(self.bench_database_url, "_bench", "基准测试数据库", "benchmark")

    def _side_database(self, explicit: str | None, suffix: str, name_zh: str, name_en: str) -> URL:
        """``explicit``, or the working URL with ``suffix`` on the database name."""
        if explicit:
            url = make_url(explicit)
        else:
            base = self.require_database_url()
            url = base.set(database=f"{base.database}{suffix}")
        if self.database_url and url == make_url(self.database_url):
            raise ConfigurationError(
                f"{name_zh}不能与工作数据库相同",
                f"the {name_en} database must differ from the working database",
            )
        return url

    def for_tests(self) -> Settings:
        """A copy whose working database is the test database."""
        url = self.require_test_database_url().render_as_string(hide_password=False)
        return self.model_copy(update={"database_url": url})


def _secret(value: SecretStr | None, path: Path) -> str | None:
    if value is not None and value.get_secret_value().strip():
        return value.get_secret_value().strip()
    if path.is_file():
        return path.read_text(encoding="utf-8").strip() or None
    return None


def libpq_url(url: URL) -> str:
    """The URL as psql and other libpq tools expect it (no SQLAlchemy driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
