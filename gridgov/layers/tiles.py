"""Mapbox Vector Tiles from PostGIS (``ST_AsMVT``) and their cache in PostgreSQL.

Why the cache lives in PostgreSQL (an UNLOGGED table) and not in the process: every writer
of a layer (API, importers, the CLI, psql) fires the layer's triggers, which delete exactly
the cached tiles whose envelope the old or new rows touch, so invalidation is correct for
every writer and every server process at once. A cached tile costs one primary-key lookup.

A tile is stored only if the layer's generation (bumped by the same triggers) is still the
one the tile was rendered at and no writer holds the layer (``FOR SHARE SKIP LOCKED``), so
a tile rendered while a write was in flight is served but never cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from gridgov.layers.scope import AreaScope, scope_sql
from gridgov.layers.spec import SRID, AdminLevel, ColumnType, GeometryKind, LayerSpec

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


def _tile_sql(spec: LayerSpec, scope_condition: str = "true") -> str:
    # Clip in CGCS2000 before reprojecting, so that only the part inside the tile (plus
    # its buffer) is transformed: much less work for big polygons at low zoom.
    clip = (
        "ST_ClipByBox2D(t.geom, env.box)" if spec.geometry is not GeometryKind.POINT else "t.geom"
    )
    return f"""
        WITH env AS (
            SELECT ST_TileEnvelope(:z, :x, :y) AS tile,
                   ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), {SRID}) AS box
        )
        SELECT
            (SELECT generation FROM layer_state WHERE layer = :layer) AS generation,
            {_next_change(spec)} AS expires_at,
            (SELECT ST_AsMVT(q, :layer, {EXTENT}, 'geom', 'id') FROM (
                SELECT {_select_list(spec)},
                       ST_AsMVTGeom(ST_Transform({clip}, 3857), env.tile,
                                    {EXTENT}, {BUFFER}, true) AS geom
                FROM {spec.table_name} t, env
                WHERE t.geom && env.box {_in_force(spec)} AND {scope_condition}
            ) q WHERE q.geom IS NOT NULL) AS mvt
    """


@dataclass(frozen=True)
class Rendered:
    mvt: bytes
    generation: int | None
    expires_at: datetime | None


def render(
    conn: Connection, spec: LayerSpec, z: int, x: int, y: int, scope: AreaScope | None = None
) -> Rendered:
    """Render one tile of one layer (only rows in ``scope``); empty bytes for no features."""
    condition, params = scope_sql(spec, scope or AreaScope.everything(), "t")
    row = conn.execute(
        text(_tile_sql(spec, condition)),
        {"z": z, "x": x, "y": y, "margin": MARGIN, "layer": spec.id, **params},
    ).one()
    return Rendered(bytes(row.mvt or b""), row.generation, row.expires_at)


def cached(conn: Connection, layer: str, z: int, x: int, y: int) -> bytes | None:
    """The cached tile, or None on a miss (or when it has expired)."""
    value = conn.execute(
        text(
            "SELECT mvt FROM tile_cache WHERE layer = :layer AND z = :z AND x = :x AND y = :y "
            "AND (expires_at IS NULL OR expires_at > now())"
        ),
        {"layer": layer, "z": z, "x": x, "y": y},
    ).scalar_one_or_none()
    return bytes(value) if value is not None else None


def store(conn: Connection, layer: str, z: int, x: int, y: int, tile: Rendered) -> bool:
    """Cache ``tile`` unless its layer changed (or is being changed) since it was rendered."""
    if tile.generation is None:
        return False
    conn.execute(text("SET LOCAL synchronous_commit = off"))
    result = conn.execute(
        text(
            f"""
            INSERT INTO tile_cache (layer, z, x, y, mvt, bounds, expires_at)
            SELECT :layer, :z, :x, :y, :mvt,
                   ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), {SRID}),
                   :expires_at
            WHERE EXISTS (SELECT 1 FROM layer_state
                          WHERE layer = :layer AND generation = :generation
                          FOR SHARE SKIP LOCKED)
            ON CONFLICT (layer, z, x, y) DO UPDATE
               SET mvt = EXCLUDED.mvt, bounds = EXCLUDED.bounds,
                   expires_at = EXCLUDED.expires_at, created_at = now()
            """
        ),
        {
            "layer": layer,
            "z": z,
            "x": x,
            "y": y,
            "mvt": tile.mvt,
            "margin": MARGIN,
            "expires_at": tile.expires_at,
            "generation": tile.generation,
        },
    )
    return bool(result.rowcount)


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


def tile(
    conn: Connection,
    spec: LayerSpec,
    z: int,
    x: int,
    y: int,
    use_cache: bool,
    scope: AreaScope | None = None,
) -> bytes:
    """The tile of one layer, from the cache when possible; empty bytes for no features.

    The cache holds whole tiles only: a tile for an account limited to some areas is
    rendered with the scope predicate and never cached (nor served from the cache).
    """
    if scope is not None and not scope.unrestricted:
        return render(conn, spec, z, x, y, scope).mvt
    if use_cache:
        hit = cached(conn, spec.id, z, x, y)
        if hit is not None:
            return hit
    rendered = render(conn, spec, z, x, y)
    if use_cache:
        store(conn, spec.id, z, x, y, rendered)
    return rendered.mvt


__all__ = [
    "MEDIA_TYPE",
    "Rendered",
    "TileField",
    "cached",
    "clear",
    "prune",
    "render",
    "store",
    "tile",
    "tile_fields",
]
