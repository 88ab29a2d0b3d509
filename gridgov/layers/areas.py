"""Admin areas for the map pages' selector, and which layers hold synthetic rows.

The selector needs names, codes and extents, not geometry: sending 1,254 community
polygons to fill a drop-down would be wasteful. Table and column names come from the
registry, never from a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from gridgov.errors import RegistryError
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope, scope_sql
from gridgov.layers.spec import AdminLevel


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    bbox: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat (CGCS2000)


def areas(
    conn: Connection,
    registry: Registry,
    level: AdminLevel,
    parent: str | None = None,
    scope: AreaScope | None = None,
) -> list[Area]:
    """Areas of ``level`` (inside ``parent``, a code of the level above) that overlap
    ``scope`` (the caller's own areas and those containing them), ordered by code."""
    spec = registry.for_level(level)
    if spec is None:
        raise RegistryError(f"没有{level.title_zh}图层", f"no layer defines level {level}")
    condition, params = scope_sql(spec, scope or AreaScope.everything(), "a")
    where = f"WHERE {condition}"
    if parent is not None and level.parent is not None:
        where += f" AND a.{spec.admin_column(level.parent)} = :parent"
        params["parent"] = parent
    rows = conn.execute(
        text(
            f"""
            SELECT code, name,
                   ST_XMin(b) AS x0, ST_YMin(b) AS y0, ST_XMax(b) AS x1, ST_YMax(b) AS y1
            FROM (SELECT code, name, geom::box2d AS b FROM {spec.table_name} a {where}) s
            ORDER BY code
            """
        ),
        params,
    )
    return [Area(r.code, r.name, (r.x0, r.y0, r.x1, r.y1)) for r in rows]


def synthetic_layers(conn: Connection, registry: Registry) -> dict[str, bool]:
    """Per layer: does it hold at least one synthetic (demo) row? One cheap probe each."""
    probes = " UNION ALL ".join(
        f"SELECT '{spec.id}' AS layer, EXISTS "
        f"(SELECT 1 FROM {spec.table_name} WHERE synthetic) AS synthetic"
        for spec in registry
    )
    return {row.layer: bool(row.synthetic) for row in conn.execute(text(probes))}
