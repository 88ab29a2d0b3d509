"""Mapbox Vector Tiles from PostGIS (``ST_AsMVT``) and their cache in PostgreSQL.

Why the cache lives in PostgreSQL (an UNLOGGED table) and not in the process: every writer
of a layer (API, importers, the CLI, psql) fires the layer's triggers, which delete exactly
the cached tiles whose envelope the old or new rows touch, so invalidation is correct for
every writer and every server process at once. A cached tile costs one primary-key lookup.

A tile is stored only if the layer's generation (bumped by the same triggers) is still the
one the tile was rendered at and no writer holds the layer (``FOR SHARE SKIP LOCKED``), so
a tile rendered while a write was in flight is served but never cached. Lookup, render and
store are one statement (:func:`served`): one round trip per tile, hit or miss.

Point layers with ``cluster_max_zoom`` serve clusters up to that zoom: one point per
non-empty 1/64-tile cell of ``tile_cluster`` (kept exact by the layer's triggers, migration
``0006_map_speed``) with its ``count``, instead of every point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect, text

from gridgov.layers.db import BINARY_RESULTS
from gridgov.layers.scope import AreaScope, scope_sql
from gridgov.layers.spec import SRID, AdminLevel, ColumnType, GeometryKind, LayerSpec
from gridgov.layers.tables import TILE_GEOMETRY, has_tile_geometry

EXTENT = 4096  # MVT coordinate units per tile side
BUFFER = 64  # of those, drawn beyond the edge so that strokes join across tiles
MARGIN = BUFFER / EXTENT
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


@dataclass(frozen=True)
class TileField:
    name: str
    type: str  # TileJSON / MVT value type: String, Number or Boolean
    description: str


def tile_fields(spec: LayerSpec) -> list[TileField]:
    """Properties a tile carries: id, admin codes, name and filterable columns.

    Personal-data columns never go into tiles; timestamps travel as ISO text.
    """
    fields = [TileField("id", "Number", "编号 (id)")]
    for level in spec.admin_levels:
        fields.append(
            TileField(spec.admin_column(level), "String", f"{AdminLevel(level).title_zh}代码")
        )
    for col in spec.columns:
        if col.personal or not (col.filterable or col.name == "name"):
            continue
        if col.type in (ColumnType.TEXT, ColumnType.DATE, ColumnType.TIMESTAMP):
            kind = "String"
        elif col.type is ColumnType.BOOLEAN:
            kind = "Boolean"
        else:
            kind = "Number"
        fields.append(TileField(col.name, kind, f"{col.title_zh} ({col.title_en})"))
    return fields


def _select_list(spec: LayerSpec) -> str:
    """SQL select list from the registry (identifiers only, never request values)."""
    parts = []
    for field in tile_fields(spec):
        column_type = None if field.name == "id" else _column_type(spec, field.name)
        if column_type in (ColumnType.DATE, ColumnType.TIMESTAMP):
            parts.append(
                f"to_char(t.{field.name} AT TIME ZONE 'UTC', "
                f'\'YYYY-MM-DD"T"HH24:MI:SS"Z"\') AS {field.name}'
            )
        else:
            parts.append(f"t.{field.name}")
    return ", ".join(parts)


def _column_type(spec: LayerSpec, name: str) -> ColumnType | None:
    for col in spec.columns:
        if col.name == name:
            return col.type
    return None  # admin codes


def _in_force(spec: LayerSpec) -> str:
    return (
        "AND t.valid_from <= now() AND (t.valid_to IS NULL OR t.valid_to > now())"
        if spec.versioned
        else ""
    )


def _next_change(spec: LayerSpec) -> str:
    """When the versions in force inside the tile change by themselves (time passing)."""
    if not spec.versioned:
        return "NULL::timestamptz"
    return (
        "(SELECT min(LEAST(CASE WHEN t.valid_from > now() THEN t.valid_from END, "
        "CASE WHEN t.valid_to > now() THEN t.valid_to END)) "
        f"FROM {spec.table_name} t, env WHERE t.geom && env.box)"
    )


CELL_BITS = 6  # clusters: 64 × 64 cells per tile (one cell = the tile buffer)
ORIGIN = 20037508.3427892  # half the equator in EPSG:3857 metres (as migration 0006)


def clustered(spec: LayerSpec, z: int) -> bool:
    """Whether tiles of ``spec`` at zoom ``z`` carry clusters instead of every point."""
    return spec.cluster_max_zoom is not None and z <= spec.cluster_max_zoom


def _tile_geometry_sql(spec: LayerSpec) -> str:
    """The feature's geometry in EPSG:3857, cut to the tile and its buffer when it spills over.

    Non-point layers read their stored Web Mercator copy (``geom_3857``, migration
    ``0010_tile_speed``): no reprojection per request. A polygon that lies inside the
    buffered tile (most grids from zoom 13 on) goes to ``ST_AsMVTGeom`` as it is; a bigger
    one is clipped first, so that only the part inside is simplified and encoded.
    """
    if spec.geometry is GeometryKind.POINT:
        return "ST_Transform(t.geom, 3857)"
    if has_tile_geometry(spec):
        g = f"t.{TILE_GEOMETRY}"
        return f"CASE WHEN {g} @ env.tile_box THEN {g} ELSE ST_ClipByBox2D({g}, env.tile_box) END"
    # Clip in CGCS2000 before reprojecting: only the part inside the tile is transformed.
    return "ST_Transform(ST_ClipByBox2D(t.geom, env.box), 3857)"


def _features_sql(spec: LayerSpec, scope_condition: str = "true") -> str:
    """The MVT of every feature of the tile (``env`` in scope) that meets the area scope.

    No ``WHERE geom IS NOT NULL`` around ``ST_AsMVTGeom``: ``ST_AsMVT`` skips rows whose
    geometry is NULL (features that fall outside the buffered tile), and PostgreSQL pushed
    such a filter into the scan, so every clip and simplification ran twice (a dense grid
    tile at z12: 11.8 ms, 7.3 ms without; the same bytes)."""
    return f"""
        SELECT ST_AsMVT(q, :layer, {EXTENT}, 'geom', 'id') FROM (
            SELECT {_select_list(spec)},
                   ST_AsMVTGeom({_tile_geometry_sql(spec)}, env.tile,
                                {EXTENT}, {BUFFER}, true) AS geom
            FROM {spec.table_name} t, env
            WHERE t.geom && env.box {_in_force(spec)} AND {scope_condition}
        ) q
    """


def _clusters_sql() -> str:
    """The MVT of the tile's clusters: one point per non-empty cell, at its points' mean,
    with ``count``; the ring of cells around the tile fills the buffer."""
    return f"""
        SELECT ST_AsMVT(q, :layer, {EXTENT}, 'geom') FROM (
            SELECT c.n AS count,
                   ST_AsMVTGeom(ST_Point(c.sx / c.n, c.sy / c.n, 3857), env.tile,
                                {EXTENT}, {BUFFER}, true) AS geom
            FROM tile_cluster c, env
            WHERE c.layer = :layer AND c.z = :z
              AND c.cx / 64 BETWEEN :x - 1 AND :x + 1 AND c.cy / 64 BETWEEN :y - 1 AND :y + 1
              AND c.cx BETWEEN :x * 64 - 1 AND :x * 64 + 64
              AND c.cy BETWEEN :y * 64 - 1 AND :y * 64 + 64
              AND c.n > 0
        ) q
    """


def _live_clusters_sql(spec: LayerSpec, condition: str) -> str:
    """Clusters of only the rows meeting ``condition`` (an area scope or filter), counted
    from the layer itself: the same cells, points and ``count`` as :func:`_clusters_sql`
    (whose table counts the whole city), so clusters follow the area chosen."""
    cell = f"(2 * {ORIGIN} / (1::bigint << (:z + {CELL_BITS})))"
    return f"""
        SELECT ST_AsMVT(q, :layer, {EXTENT}, 'geom') FROM (
            SELECT count(*)::int AS count,
                   ST_AsMVTGeom(ST_Point(avg(ST_X(p.p)), avg(ST_Y(p.p)), 3857), env.tile,
                                {EXTENT}, {BUFFER}, true) AS geom
            FROM (SELECT ST_Transform(t.geom, 3857) AS p FROM {spec.table_name} t, env
                  WHERE t.geom && env.box {_in_force(spec)} AND {condition}) p,
                 LATERAL (SELECT floor((ST_X(p.p) + {ORIGIN}) / {cell})::int AS cx,
                                 floor(({ORIGIN} - ST_Y(p.p)) / {cell})::int AS cy) c,
                 env
            WHERE c.cx BETWEEN :x * 64 - 1 AND :x * 64 + 64
              AND c.cy BETWEEN :y * 64 - 1 AND :y * 64 + 64
            GROUP BY c.cx, c.cy, env.tile
        ) q
    """


def _body_sql(spec: LayerSpec, z: int, condition: str) -> str:
    """The MVT of one tile: stored clusters for the whole city, live clusters for a part of
    it, every feature above the cluster zooms."""
    if not clustered(spec, z):
        return _features_sql(spec, condition)
    return _clusters_sql() if condition == "true" else _live_clusters_sql(spec, condition)


def _render_sql(spec: LayerSpec, z: int, scope_condition: str = "true") -> str:
    """generation, expires_at and mvt of one tile (``env`` in scope)."""
    return f"""
        SELECT (SELECT generation FROM layer_state WHERE layer = :layer) AS generation,
               {_next_change(spec)} AS expires_at,
               ({_body_sql(spec, z, scope_condition)}) AS mvt
    """


_ENV = f"""
    env AS (
        SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
               ST_TileEnvelope(:z, :x, :y, margin => :margin) AS tile_box,
               ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), {SRID}) AS box
    )
"""


def _tile_sql(spec: LayerSpec, z: int, scope_condition: str = "true") -> str:
    return f"WITH {_ENV} {_render_sql(spec, z, scope_condition)}"


def _mvt_sql(spec: LayerSpec, z: int, scope_condition: str = "true") -> str:
    """Only the tile, for tiles that are not cached: no generation, no expiry to compute."""
    return f"WITH {_ENV} {_body_sql(spec, z, scope_condition)}"


def _served_sql(spec: LayerSpec, z: int) -> str:
    """One round trip for a cached tile or a fresh one: the cached tile if there is one;
    else render it and store it, unless the layer changed (or is being changed) since the
    generation read in this statement (``FOR SHARE SKIP LOCKED`` sees committed and
    in-flight writers). The cache needs no synchronous commit: it is only a cache."""
    return f"""
        WITH {_ENV},
        hit AS (
            SELECT mvt FROM tile_cache
            WHERE layer = :layer AND z = :z AND x = :x AND y = :y
              AND (expires_at IS NULL OR expires_at > now())
        ),
        fresh AS MATERIALIZED (
            SELECT r.* FROM ({_render_sql(spec, z)}) r WHERE NOT EXISTS (SELECT FROM hit)
        ),
        stored AS (
            INSERT INTO tile_cache (layer, z, x, y, mvt, bounds, expires_at)
            SELECT :layer, :z, :x, :y, COALESCE(f.mvt, ''::bytea), env.box, f.expires_at
            FROM fresh f, env
            WHERE set_config('synchronous_commit', 'off', true) = 'off'
              AND EXISTS (SELECT FROM layer_state
                          WHERE layer = :layer AND generation = f.generation
                          FOR SHARE SKIP LOCKED)
            ON CONFLICT (layer, z, x, y) DO UPDATE
               SET mvt = EXCLUDED.mvt, bounds = EXCLUDED.bounds,
                   expires_at = EXCLUDED.expires_at, created_at = now()
        )
        SELECT COALESCE((SELECT mvt FROM hit), (SELECT mvt FROM fresh)) AS mvt
    """


@lru_cache(maxsize=512)
def _driver_sql(dialect: Dialect, sql: str) -> str:
    """The statement as the driver takes it (``%(name)s``), compiled once per text."""
    return str(text(sql).compile(dialect=dialect))


def _run(conn: Connection, sql: str, params: dict[str, Any]) -> CursorResult[Any]:
    """A tile statement, with binary results and without compiling it per call: SQLAlchemy's
    ``text()`` compilation and statement cache cost about 0.25 ms of Python per tile (a fifth
    of gridgov's own CPU per tile); ``exec_driver_sql`` keeps its errors and events."""
    return conn.exec_driver_sql(
        _driver_sql(conn.dialect, sql), params, execution_options=BINARY_RESULTS
    )


@dataclass(frozen=True)
class Rendered:
    mvt: bytes
    generation: int | None
    expires_at: datetime | None


def _params(spec: LayerSpec, z: int, x: int, y: int) -> dict[str, object]:
    return {"z": z, "x": x, "y": y, "margin": MARGIN, "layer": spec.id}


def render(
    conn: Connection, spec: LayerSpec, z: int, x: int, y: int, scope: AreaScope | None = None
) -> Rendered:
    """Render one tile of one layer (only rows in ``scope``); empty bytes for no features."""
    condition, params = scope_sql(spec, scope or AreaScope.everything(), "t")
    row = _run(conn, _tile_sql(spec, z, condition), {**_params(spec, z, x, y), **params}).one()
    return Rendered(bytes(row.mvt or b""), row.generation, row.expires_at)


def served(conn: Connection, spec: LayerSpec, z: int, x: int, y: int) -> bytes:
    """The tile from the cache, or rendered and cached, in one statement."""
    value = _run(conn, _served_sql(spec, z), _params(spec, z, x, y)).scalar_one()
    return bytes(value or b"")


def prune(conn: Connection, keep: int) -> int:
    """Drop the oldest cached tiles beyond ``keep``; returns how many were dropped."""
    result = conn.execute(
        text(
            "DELETE FROM tile_cache WHERE ctid IN (SELECT ctid FROM tile_cache "
            "ORDER BY created_at DESC OFFSET :keep)"
        ),
        {"keep": keep},
    )
    return int(result.rowcount or 0)


def clear(conn: Connection, layer: str | None = None) -> None:
    """Empty the cache (of one layer): for benchmarks and operators, never needed for truth."""
    if layer is None:
        conn.execute(text("DELETE FROM tile_cache"))
    else:
        conn.execute(text("DELETE FROM tile_cache WHERE layer = :layer"), {"layer": layer})


def _condition(
    spec: LayerSpec, scope: AreaScope | None, area: AreaScope | None
) -> tuple[str, dict[str, object]]:
    """The caller's area scope AND the area chosen on the map, as one SQL condition."""
    condition, params = scope_sql(spec, scope or AreaScope.everything(), "t")
    if area is not None and not area.unrestricted:
        chosen, chosen_params = scope_sql(spec, area, "t", prefix="area")
        condition = chosen if condition == "true" else f"{condition} AND {chosen}"
        params.update(chosen_params)
    return condition, params


def tile(
    conn: Connection,
    spec: LayerSpec,
    z: int,
    x: int,
    y: int,
    use_cache: bool,
    scope: AreaScope | None = None,
    area: AreaScope | None = None,
) -> bytes:
    """The tile of one layer, from the cache when possible; empty bytes for no features.

    ``scope`` is the caller's area scope, ``area`` the area chosen on the map (both limit
    the rows, clusters included). The cache holds whole tiles only: a tile limited to some
    areas is rendered with the predicate and never cached (nor served from the cache).
    """
    condition, params = _condition(spec, scope, area)
    if use_cache and condition == "true":
        return served(conn, spec, z, x, y)
    value = _run(
        conn, _mvt_sql(spec, z, condition), {**_params(spec, z, x, y), **params}
    ).scalar_one()
    return bytes(value or b"")


__all__ = [
    "MEDIA_TYPE",
    "Rendered",
    "TileField",
    "clear",
    "clustered",
    "prune",
    "render",
    "served",
    "tile",
    "tile_fields",
]
