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
# Edges are straight in lon/lat; cut them (degrees, about 20 m) before projecting so that a
# thin sliver between collinear points keeps its near-zero area (gis.measures does the same).
DENSIFY_DEGREES = 0.0002


def _m2(expression: str) -> str:
    """SQL: the area in m² of a CGCS2000 geometry expression."""
    return f"ST_Area(ST_Transform(ST_Segmentize({expression}, {DENSIFY_DEGREES}), {METRIC_SRID}))"


@dataclass(frozen=True)
class Coverage:
    """How the children of one parent cover it (all in m²)."""

    parent_code: str
    gap_m2: float  # parent area no child covers
    overlap_m2: float  # area covered by more than one child
    outside_m2: float  # child area outside the parent


def coverage(
    conn: Connection, registry: Registry, child: AdminLevel, parent_code: str | None = None
) -> list[Coverage]:
    """For every parent of ``child``'s level: gaps, overlaps and spill-over of its children.

    Only grid versions in force now are counted (``parent_code``: that parent only).
    """
    parent = child.parent
    if parent is None:
        raise ValueError("the top level has no parent")
    child_spec, parent_spec = registry.for_level(child), registry.for_level(parent)
    if child_spec is None or parent_spec is None:
        raise ValueError(f"no layer for level {child} or {parent}")
    parent_column = child_spec.admin_column(parent)
    # statement_timestamp(), not now(): an edit earlier in the same transaction counts.
    in_force = (
        "c.valid_from <= statement_timestamp() "
        "AND (c.valid_to IS NULL OR c.valid_to > statement_timestamp())"
        if child_spec.versioned
        else "TRUE"
    )
    # Overlays run in the stored coordinates, where shared edges coincide exactly; only
    # the results are projected to be measured (projecting first bends long edges apart
    # by centimetres, which shows up as square metres of false gaps and overlaps).
    # Identifiers come from the registry, never from a request.
    statement = text(
        f"""
        WITH kids AS (
            SELECT c.{parent_column} AS parent, c.geom AS g
            FROM {child_spec.table_name} c
            WHERE {in_force} AND (CAST(:parent AS text) IS NULL OR c.{parent_column} = :parent)
        ), agg AS (
            SELECT parent, ST_Union(g) AS u, SUM({_m2("g")}) AS total
            FROM kids GROUP BY parent
        ), parents AS (
            SELECT code, geom AS g FROM {parent_spec.table_name}
            WHERE CAST(:parent AS text) IS NULL OR code = :parent
        )
        SELECT p.code,
               COALESCE({_m2("ST_Difference(p.g, a.u)")}, {_m2("p.g")}) AS gap,
               COALESCE(a.total - {_m2("a.u")}, 0) AS overlap,
               COALESCE({_m2("ST_Difference(a.u, p.g)")}, 0) AS outside
        FROM parents p LEFT JOIN agg a ON a.parent = p.code
        ORDER BY p.code
        """
    )
    rows = conn.execute(statement, {"parent": parent_code})
    return [Coverage(r.code, r.gap, r.overlap, r.outside) for r in rows]
