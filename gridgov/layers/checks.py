"""Set-based checks of how layers nest and cover each other, measured in square metres.

Used by the demo's invariant tests, and by anyone who wants to know whether a layer
still partitions its parent (grid planning asks exactly this).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from gridgov.layers.registry import Registry
from gridgov.layers.spec import AdminLevel

METRIC_SRID = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E: metres around Wuxi


@dataclass(frozen=True)
class Coverage:
    """How the children of one parent cover it (all in m²)."""

    parent_code: str
    gap_m2: float  # parent area no child covers
    overlap_m2: float  # area covered by more than one child
    outside_m2: float  # child area outside the parent


def coverage(conn: Connection, registry: Registry, child: AdminLevel) -> list[Coverage]:
    """For every parent of ``child``'s level: gaps, overlaps and spill-over of its children.

    Only grid versions in force now are counted.
    """
    parent = child.parent
    if parent is None:
        raise ValueError("the top level has no parent")
    child_spec, parent_spec = registry.for_level(child), registry.for_level(parent)
    if child_spec is None or parent_spec is None:
        raise ValueError(f"no layer for level {child} or {parent}")
    parent_column = child_spec.admin_column(parent)
    in_force = "WHERE c.valid_to IS NULL OR c.valid_to > now()" if child_spec.versioned else ""
    # Identifiers come from the registry, never from a request.
    # Overlay in the stored lon/lat, where points are assigned, and measure the pieces in
    # metres: slivers that exist only in lon/lat (edges bent by the datum change) count.
    statement = text(
        f"""
        WITH kids AS (
            SELECT c.{parent_column} AS parent, c.geom AS g
            FROM {child_spec.table_name} c {in_force}
        ), agg AS (
            SELECT parent, ST_Union(g) AS u, SUM(ST_Area(ST_Transform(g, {METRIC_SRID}))) AS total
            FROM kids GROUP BY parent
        )
        SELECT p.code,
               ST_Area(ST_Transform(COALESCE(ST_Difference(p.geom, a.u), p.geom), {METRIC_SRID}))
                   AS gap,
               COALESCE(a.total - ST_Area(ST_Transform(a.u, {METRIC_SRID})), 0) AS overlap,
               COALESCE(ST_Area(ST_Transform(ST_Difference(a.u, p.geom), {METRIC_SRID})), 0)
                   AS outside
        FROM {parent_spec.table_name} p LEFT JOIN agg a ON a.parent = p.code
        ORDER BY p.code
        """
    )
    return [Coverage(r.code, r.gap, r.overlap, r.outside) for r in conn.execute(statement)]
