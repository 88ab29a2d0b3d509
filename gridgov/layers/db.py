"""Connections to PostGIS and the few statements that describe the server itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import Format, TransactionStatus
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, ExecutionContext
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gridgov.errors import DatabaseUnavailableError, PostgisMissingError
from gridgov.settings import Settings

# Execution option: receive this statement's results in PostgreSQL's binary format.
BINARY_RESULTS = {"gridgov_binary_results": True}


def _binary_results(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: ExecutionContext | None,
    executemany: bool,
) -> None:
    """Why: in the text format PostgreSQL sends a ``bytea`` (a vector tile) as hex, twice
    its size, encoded by the server and decoded by the client; for tiles that was about
    half of gridgov's own CPU per tile. Binary is the exact bytes. Only for statements
    that ask (``BINARY_RESULTS``): other values keep the text loaders SQLAlchemy's types
    expect (geometry as hex EWKB)."""
    if context is not None and context.execution_options.get("gridgov_binary_results"):
        cursor.format = Format.BINARY


def _with_binary_results(engine: Engine) -> Engine:
    event.listen(engine, "before_cursor_execute", _binary_results)
    return engine


def make_engine(settings: Settings, url: URL | None = None) -> Engine:
    """An engine for the working database (or ``url``); it connects lazily.

    Every session runs in UTC with a statement timeout, so that one runaway query cannot
    hold a connection for ever. A pooled connection is pinged before use (a restarted or
    killed server costs one failed ping, not a failed request), and a request waits at most
    ``db_pool_timeout_s`` for a free one, so that an exhausted pool is a quick 503.
    """
    target = url if url is not None else settings.require_database_url()
    engine = create_engine(
        target,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "application_name": "gridgov",
            "options": f"-c timezone=UTC -c statement_timeout={settings.db_statement_timeout_ms}",
        },
    )
    return _with_binary_results(engine)


def make_read_engine(settings: Settings, url: URL | None = None) -> Engine:
    """An engine for the hot read paths (tiles, aggregates): each statement is its own
    transaction (autocommit: no BEGIN / COMMIT round trips), no ping before each checkout
    (a dead connection fails one request and the pool is refreshed), and no synchronous
    commit, since the only thing these paths write is the tile cache.

    No JIT and no parallel workers: a tile statement runs for milliseconds, and PostgreSQL
    priced the bigger incident tiles above ``jit_above_cost`` (about 100 ms compiling for a
    40 ms query) and started two workers for them (forked per statement, on a 2-core box
    serving many requests at once). Both made tiles slower, never faster.
    """
    target = url if url is not None else settings.require_database_url()
    engine = create_engine(
        target,
        pool_pre_ping=False,
        pool_recycle=600,
        pool_size=settings.db_read_pool_size,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "application_name": "gridgov-read",
            "options": f"-c timezone=UTC -c statement_timeout={settings.db_statement_timeout_ms} "
            "-c synchronous_commit=off -c jit=off -c max_parallel_workers_per_gather=0",
        },
    )
    return _with_binary_results(engine)


def connect(engine: Engine) -> Connection:
    """A connection, or :class:`DatabaseUnavailableError` naming the server (never the password)."""
    try:
        return engine.connect()
    except OperationalError as exc:
        raise DatabaseUnavailableError(
            "无法连接数据库",
            "cannot connect to the database",
            server=server_label(engine.url),
            cause=_first_line(exc.orig),
        ) from exc
    except PoolTimeoutError as exc:
        raise DatabaseUnavailableError(
            "数据库连接已全部占用，请稍后重试",
            "every database connection is busy; retry later",
            server=server_label(engine.url),
        ) from exc


def _first_line(error: BaseException | None) -> str:
    """The driver's own reason (psycopg never puts the password in it)."""
    return str(error).strip().splitlines()[0] if error else ""


def server_label(url: URL) -> str:
    """Host, port and database, for messages: no user, no password."""
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


@dataclass(frozen=True)
class ServerInfo:
    postgres_version: str
    postgis_version: str
    database: str


def server_info(conn: Connection) -> ServerInfo:
    """PostgreSQL and PostGIS versions; :class:`PostgisMissingError` if PostGIS is absent."""
    row = conn.execute(
        text(
            "SELECT current_setting('server_version') AS pg, current_database() AS db, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'postgis') AS postgis"
        )
    ).one()
    if row.postgis is None:
        raise PostgisMissingError(
            f"数据库 {row.db} 未安装 PostGIS 扩展",
            f"database {row.db} has no postgis extension: run CREATE EXTENSION postgis",
        )
    lib = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return ServerInfo(postgres_version=row.pg, postgis_version=str(lib), database=row.db)


def check_server(engine: Engine) -> ServerInfo:
    """Connect once and describe the server; the errors name what is wrong."""
    with connect(engine) as conn:
        try:
            return server_info(conn)
        except OperationalError as exc:
            raise DatabaseUnavailableError(
                "数据库连接中断",
                "the database connection was lost",
                server=server_label(engine.url),
            ) from exc
        except DBAPIError as exc:
            raise DatabaseUnavailableError(
                "数据库查询失败",
                "the database refused a status query",
                server=server_label(engine.url),
            ) from exc


REQUIRED_EXTENSIONS = ("postgis", "btree_gist")


def ensure_database(settings: Settings, url: URL) -> bool:
    """Create the database at ``url`` if missing, and its extensions; True if it was created.

    Uses the URL's own credentials against the server's ``postgres`` database, so it needs
    CREATEDB (and, for PostGIS, superuser) only when something is actually missing.
    """
    created = False
    maintenance = make_engine(settings, url.set(database="postgres"))
    try:
        with connect(maintenance).execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if not exists:
                quoted = conn.dialect.identifier_preparer.quote(str(url.database))
                try:
                    conn.execute(text(f"CREATE DATABASE {quoted} ENCODING 'UTF8'"))
                except DBAPIError as exc:
                    raise DatabaseUnavailableError(
                        f"无法创建数据库 {url.database}：权限不足",
                        f"cannot create database {url.database}: the role needs CREATEDB",
                    ) from exc
                created = True
    finally:
        maintenance.dispose()
    target = make_engine(settings, url)
    try:
        with connect(target) as conn:
            for extension in REQUIRED_EXTENSIONS:
                try:
                    with conn.begin():
                        conn.execute(text(f"CREATE EXTENSION IF NOT EXISTS {extension}"))
                except DBAPIError as exc:
                    raise PostgisMissingError(
                        f"无法在数据库 {url.database} 中创建扩展 {extension}，请由超级用户执行 "
                        f"CREATE EXTENSION {extension}",
                        f"cannot create extension {extension} in {url.database}: a superuser "
                        f"must run CREATE EXTENSION {extension}",
                    ) from exc
    finally:
        target.dispose()
    return created


def transaction_failed(conn: Connection) -> bool:
    """Whether ``conn``'s transaction is aborted: any statement now fails, and would hide
    the error that aborted it (clean-up code must not run SQL then)."""
    raw = conn.connection.driver_connection
    return isinstance(raw, psycopg.Connection) and (
        raw.info.transaction_status == TransactionStatus.INERROR
    )
