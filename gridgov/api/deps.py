"""Dependencies shared by routes; tests override ``get_connection`` to share a transaction.

The ones that only read ``app.state`` are ``async``: FastAPI runs a plain ``def``
dependency in its thread pool, one hand-off per dependency per request, which costs more
than the lookup itself on the hot tile path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from gridgov.layers.db import connect
from gridgov.layers.registry import Registry
from gridgov.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_registry(request: Request) -> Registry:
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


def get_read_connection(request: Request) -> Iterator[Connection]:
    """An autocommit connection of the read engine (tiles, aggregates): one round trip per
    statement, nothing to commit. Tests override it to share their transaction."""
    engine: Engine = request.app.state.read_engine
    with connect(engine) as conn:
        yield conn


ReadConnector = Callable[[], AbstractContextManager[Connection]]


async def get_read_connector(request: Request) -> ReadConnector:
    """A way to check out a read connection later, inside the one worker-thread hop of an
    ``async`` route (tiles): a ``def`` generator dependency costs two hops per request, on
    a path where the hops cost more than a cached tile. Tests override it to share their
    transaction."""
    engine: Engine = request.app.state.read_engine
    return lambda: connect(engine)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
ConnectionDep = Annotated[Connection, Depends(get_connection, scope="function")]
ReadConnectionDep = Annotated[Connection, Depends(get_read_connection)]
ReadConnectorDep = Annotated[ReadConnector, Depends(get_read_connector)]
