"""Dependencies shared by routes; tests override ``get_connection`` to share a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Request
from sqlalchemy import Connection, Engine

from gridgov.layers.db import connect
from gridgov.layers.registry import Registry
from gridgov.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def get_connection(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Connection]:
    """One connection and transaction per request, committed only if the route succeeds.

    Used with ``scope="function"``: the commit runs before the response is sent, so that
    a commit that fails (a killed connection, a restarted server) is answered 503, never
    a 201 for a write that was lost.
    """
    with connect(engine) as conn, conn.begin():
        yield conn


def get_actor(
    x_gridgov_actor: Annotated[
        str | None,
        Header(
            max_length=200,
            description="操作人 (who makes the change); until accounts land, a header",
        ),
    ] = None,
) -> str:
    """Who makes a write: the one place the API learns it (accounts will replace the header
    with the authenticated user). Non-ASCII names come percent-encoded (UTF-8)."""
    actor = unquote(x_gridgov_actor or "").strip()
    return actor or "anonymous"


SettingsDep = Annotated[Settings, Depends(get_settings)]
ActorDep = Annotated[str, Depends(get_actor)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
ConnectionDep = Annotated[Connection, Depends(get_connection, scope="function")]
