"""Loading the demo city: all layers in one transaction, only into an empty database."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
from sqlalchemy import Connection, MetaData, func, select, text

from gridgov.errors import ConflictError
from gridgov.layers import aggregates, vault
from gridgov.layers.assignment import refresh_grid_units
from gridgov.layers.bulk import copy_frame
from gridgov.layers.incidents import reassign
from gridgov.layers.registry import Registry
from gridgov.settings import Settings

Progress = Callable[[str, int], None]


def layer_counts(conn: Connection, registry: Registry, metadata: MetaData) -> dict[str, int]:
    return {
        spec.id: conn.execute(
            select(func.count()).select_from(metadata.tables[spec.table_name])
        ).scalar_one()
        for spec in registry
    }


def is_empty(conn: Connection, registry: Registry, metadata: MetaData) -> bool:
    """True when no layer holds a single row (a fresh database)."""
    return not any(layer_counts(conn, registry, metadata).values())


def load_city(
    conn: Connection,
    registry: Registry,
    metadata: MetaData,
    city: dict[str, gpd.GeoDataFrame],
    tolerance_m: float,
    progress: Progress = lambda _layer, _n: None,
    data_key: bytes | None = None,
) -> dict[str, int]:
    """Write every layer of ``city`` (parents first); refuses a database that holds data.

    The caller owns the transaction, so a failure leaves the database as it was.
    """
    if not is_empty(conn, registry, metadata):
        raise ConflictError(
            "数据库中已有数据，演示数据只能载入空数据库",
            "the database already holds data; the demo loads only into an empty database",
        )
    # A batch job: assigning 200,000 incidents and cutting the grid pieces take longer
    # than the per-statement limit meant for API requests, on a slow or busy machine.
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    written: dict[str, int] = {}
    for spec in registry:
        frame = city.get(spec.id)
        if frame is not None:
            table = metadata.tables[spec.table_name]
            written[spec.id] = copy_frame(conn, table, frame, _reporter(progress, spec.id))
    for spec in registry:
        if spec.personal_data and spec.id in written:
            vault.seal(conn, spec, data_key or Settings().require_data_key())
    # The demo's incidents go through the real assignment engine, like any others.
    refresh_grid_units(conn)
    reassign(conn, tolerance_m)
    aggregates.refresh(conn)  # so that the first heatmap request is already fast
    # Planner statistics now, not whenever autovacuum gets round to it: without them the
    # docking query over the fresh tables takes seconds instead of a tenth of one.
    tables = [spec.table_name for spec in registry] + ["grid_unit", "incident_agg", "tile_cluster"]
    conn.execute(text("ANALYZE " + ", ".join(tables)))
    return written


def _reporter(progress: Progress, layer: str) -> Callable[[int], None]:
    return lambda rows: progress(layer, rows)
