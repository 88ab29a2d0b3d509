"""The assignment engine (事件分派): every incident to its grid and every responsible unit.

Rules (PRODUCT.md), in order, for an incident at point P reported at time t, against the
grid versions in force at t (``valid_from <= t < valid_to``):

1. ``inside``   P lies in the interior of exactly one grid: that grid.
2. ``boundary`` P lies on the boundary of one or more grids (a shared edge or vertex, or
                the outer edge of the coverage): of those grids, the one with the lowest
                code. The rule depends only on codes, so the same point always goes to the
                same grid, whatever order rows or index scans come in.
3. ``nearest``  P is in no grid but within the tolerance (default 50 m, geodesic): the
                nearest grid, with the distance stored; distances equal to the millimetre
                (a point off a shared vertex) are a tie, won by the lowest code.
4. ``fallback`` farther than that but inside a township: the township (属地兜底), lowest
                code on a township boundary; no grid.
5. otherwise    outside the city: refused.

Community, township and district follow from the grid. Department units (police station,
community policing area, urban-management unit, emergency unit) come for free from
``grid_unit`` when the grid lies wholly in one unit; otherwise, and for fallbacks, by a
point test with the same lowest-code rule on boundaries.

Everything is set-based: callers fill the temporary table ``assign_input`` (id, geom, at)
and read ``assign_output``; the single-incident path uses the same statements with one
row, so there is exactly one implementation of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from gridgov.errors import InvalidInputError

# A grid whose largest share in one unit is at least this gives that unit for free; the
# remainder (a millionth of its area) is float noise along shared edges.
WHOLE_SHARE = 0.999999
METHODS = ("inside", "boundary", "nearest", "fallback")


@dataclass(frozen=True)
class UnitTarget:
    """An incident column filled from one department layer (and level)."""

    column: str
    layer: str
    level: str
    level_filter: str  # SQL predicate on the unit table, from code (never from requests)


UNIT_TARGETS = (
    UnitTarget("police_station_code", "police_unit", "station", "u.level = 'station'"),
    UnitTarget("policing_area_code", "police_unit", "policing_area", "u.level = 'policing_area'"),
    UnitTarget("urban_unit_code", "urban_unit", "urban_unit", "TRUE"),
    UnitTarget("emergency_unit_code", "emergency_unit", "emergency_unit", "TRUE"),
)
UNIT_COLUMNS = tuple(t.column for t in UNIT_TARGETS)
OUTPUT_COLUMNS = (
    "grid_id",
    "grid_code",
    "community_code",
    "township_code",
    "district_code",
    "assign_method",
    "assign_distance_m",
    *UNIT_COLUMNS,
)


class OutsideCityError(InvalidInputError):
    code = "outside-city"
    title_zh = "位置不在本市范围内"
    title_en = "Location outside the city"


def refresh_grid_units(conn: Connection, grid_ids: list[int] | None = None) -> int:
    """Recompute which units each grid version lies in, and the share of its area.

    Call after grids or units change (the demo loader and importers do); with
    ``grid_ids`` only those grid versions are recomputed. Returns rows written.
    """
    only = "WHERE g.id = ANY(:ids)" if grid_ids is not None else ""
    params = {"ids": grid_ids} if grid_ids is not None else {}
    if grid_ids is None:
        conn.execute(text("DELETE FROM grid_unit"))
    else:
        conn.execute(text("DELETE FROM grid_unit WHERE grid_id = ANY(:ids)"), params)
    written = 0
    for layer, level in (
        ("police_unit", "u.level"),
        ("urban_unit", "'urban_unit'"),
        ("emergency_unit", "'emergency_unit'"),
    ):
        result = conn.execute(
            text(
                f"""
                INSERT INTO grid_unit (grid_id, unit_layer, unit_level, unit_code, share)
                SELECT * FROM (
                    SELECT g.id, '{layer}', {level}, u.code,
                           LEAST(1.0, ST_Area(ST_Intersection(g.geom, u.geom)) / ST_Area(g.geom))
                               AS share
                    FROM grid g JOIN {layer} u ON ST_Intersects(g.geom, u.geom)
                    {only}
                ) s
                WHERE s.share > 0  -- units that only touch the grid along an edge
                """
            ),
            params,
        )
        written += result.rowcount
    conn.execute(text("DELETE FROM grid_unit WHERE share <= 0"))
    return written


def prepare_input(conn: Connection) -> None:
    """Create (once per connection) the temporary input table, emptied at each commit."""
    conn.execute(
        text(
            """
            CREATE TEMP TABLE IF NOT EXISTS assign_input (
                id bigint PRIMARY KEY,
                geom geometry(Point, 4490) NOT NULL,
                at timestamptz NOT NULL
            ) ON COMMIT DELETE ROWS
            """
        )
    )
    conn.execute(
        text("CREATE INDEX IF NOT EXISTS assign_input_geom ON assign_input USING gist (geom)")
    )
    conn.execute(text("DROP TABLE IF EXISTS assign_output"))


def _degrees(tolerance_m: float) -> float:
    """A box half-width in degrees that surely holds ``tolerance_m`` anywhere in China."""
    return tolerance_m / 60_000.0 + 1e-9  # 1° of longitude is over 65 km up to 54°N


def run(conn: Connection, tolerance_m: float) -> None:
    """Assign every row of ``assign_input`` into the temporary table ``assign_output``.

    Rows that fall outside the city are absent from the output (see :func:`outside`).
    """
    conn.execute(text("ANALYZE assign_input"))
    # 1-2: grid hits, probing the point index once per grid polygon (an outer loop over
    # grids keeps each prepared polygon in GEOS's cache).
    conn.execute(
        text(
            """
            CREATE TEMP TABLE assign_hits ON COMMIT DROP AS
            SELECT s.id, g.id AS grid_id, g.code, ST_Contains(g.geom, s.geom) AS interior
            FROM grid g
            CROSS JOIN LATERAL (
                SELECT i.id, i.geom FROM assign_input i
                WHERE i.geom && g.geom AND ST_Intersects(g.geom, i.geom)
                  AND i.at >= g.valid_from AND (g.valid_to IS NULL OR i.at < g.valid_to)
            ) s
            """
        )
    )
    conn.execute(
        text(
            """
            CREATE TEMP TABLE assign_chosen ON COMMIT DROP AS
            SELECT DISTINCT ON (id) id, grid_id,
                   CASE WHEN n = 1 AND interior THEN 'inside' ELSE 'boundary' END AS method,
                   NULL::double precision AS distance
            FROM (SELECT h.*, count(*) OVER (PARTITION BY id) AS n FROM assign_hits h) h
            ORDER BY id, code
            """
        )
    )
    # 3: the nearest grid within the tolerance, for points in no grid.
    conn.execute(
        text(
            """
            INSERT INTO assign_chosen (id, grid_id, method, distance)
            SELECT i.id, n.grid_id, 'nearest', n.distance
            FROM assign_input i
            CROSS JOIN LATERAL (
                SELECT g.id AS grid_id,
                       ST_Distance(g.geom::geography, i.geom::geography) AS distance
                FROM grid g
                WHERE g.geom && ST_Expand(i.geom, :degrees)
                  AND i.at >= g.valid_from AND (g.valid_to IS NULL OR i.at < g.valid_to)
                ORDER BY round(ST_Distance(g.geom::geography, i.geom::geography)::numeric, 3),
                         g.code
                LIMIT 1
            ) n
            WHERE NOT EXISTS (SELECT 1 FROM assign_chosen c WHERE c.id = i.id)
              AND n.distance <= :tolerance
            """
        ),
        {"degrees": _degrees(tolerance_m), "tolerance": tolerance_m},
    )
    # 4: township fallback for the rest; the codes follow from the grid.
    conn.execute(
        text(
            """
            CREATE TEMP TABLE assign_output ON COMMIT DROP AS
            WITH placed AS (
                SELECT c.id, c.grid_id, c.method, c.distance, NULL::text AS township
                FROM assign_chosen c
                UNION ALL
                SELECT i.id, NULL, 'fallback', NULL,
                       (SELECT t.code FROM township t WHERE ST_Intersects(t.geom, i.geom)
                         ORDER BY t.code LIMIT 1)
                FROM assign_input i
                WHERE NOT EXISTS (SELECT 1 FROM assign_chosen c WHERE c.id = i.id)
            )
            SELECT c.id, c.grid_id, g.code AS grid_code,
                   g.community_code,
                   COALESCE(g.township_code, c.township) AS township_code,
                   left(COALESCE(g.township_code, c.township), 6) AS district_code,
                   c.method AS assign_method, c.distance AS assign_distance_m,
                   """
            + ", ".join(f"NULL::text AS {t.column}" for t in UNIT_TARGETS)
            + """
            FROM placed c
            LEFT JOIN grid g ON g.id = c.grid_id
            WHERE c.grid_id IS NOT NULL OR c.township IS NOT NULL
            """
        )
    )
    conn.execute(text("CREATE INDEX ON assign_output (id)"))
    for target in UNIT_TARGETS:
        _assign_unit(conn, target, tolerance_m)


def _assign_unit(conn: Connection, target: UnitTarget, tolerance_m: float) -> None:
    """Fill one unit column: free from whole grids, by point test for the rest."""
    conn.execute(
        text(
            f"""
            UPDATE assign_output o SET {target.column} = w.unit_code
            FROM grid_unit w
            WHERE w.grid_id = o.grid_id AND w.unit_layer = :layer AND w.unit_level = :level
              AND w.share >= :whole
            """
        ),
        {"layer": target.layer, "level": target.level, "whole": WHOLE_SHARE},
    )
    # Only incidents in grids that straddle units (or with no grid) need a point test;
    # as for grids, the loop runs over unit polygons probing an index on those points.
    conn.execute(text("DROP TABLE IF EXISTS assign_pending"))
    conn.execute(
        text(
            f"""
            CREATE TEMP TABLE assign_pending ON COMMIT DROP AS
            SELECT i.id, i.geom FROM assign_input i JOIN assign_output o ON o.id = i.id
            WHERE o.{target.column} IS NULL
            """
        )
    )
    conn.execute(text("CREATE INDEX ON assign_pending USING gist (geom)"))
    conn.execute(text("ANALYZE assign_pending"))
    conn.execute(
        text(
            f"""
            UPDATE assign_output o SET {target.column} = h.code
            FROM (
                SELECT DISTINCT ON (s.id) s.id, u.code
                FROM {target.layer} u
                CROSS JOIN LATERAL (
                    SELECT p.id FROM assign_pending p
                    WHERE p.geom && u.geom AND ST_Intersects(u.geom, p.geom)
                ) s
                WHERE {target.level_filter}
                ORDER BY s.id, u.code
            ) h
            WHERE h.id = o.id
            """
        )
    )
    # A point in a sliver between units (survey error, a river) takes the nearest unit
    # within the same tolerance as grids; beyond it the column stays empty.
    conn.execute(
        text(
            f"""
            UPDATE assign_output o SET {target.column} = n.code
            FROM assign_pending p
            CROSS JOIN LATERAL (
                SELECT u.code FROM {target.layer} u
                WHERE {target.level_filter} AND u.geom && ST_Expand(p.geom, :degrees)
                  AND ST_DWithin(u.geom::geography, p.geom::geography, :tolerance)
                ORDER BY ST_Distance(u.geom::geography, p.geom::geography), u.code LIMIT 1
            ) n
            WHERE p.id = o.id AND o.{target.column} IS NULL
            """
        ),
        {"degrees": _degrees(tolerance_m), "tolerance": tolerance_m},
    )


def outside(conn: Connection) -> list[int]:
    """Ids of ``assign_input`` rows that :func:`run` could not place (outside the city)."""
    rows = conn.execute(
        text(
            "SELECT i.id FROM assign_input i "
            "WHERE NOT EXISTS (SELECT 1 FROM assign_output o WHERE o.id = i.id) ORDER BY i.id"
        )
    )
    return [int(r) for r in rows.scalars()]


def finish(conn: Connection) -> None:
    """Drop the per-run tables so that the next run in this transaction starts clean."""
    for table in ("assign_hits", "assign_chosen", "assign_output", "assign_pending"):
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    conn.execute(text("DELETE FROM assign_input"))
