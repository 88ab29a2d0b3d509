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

Two drivers, one set of rules:

* **Exact engine** (:func:`run`): callers fill the temporary table ``assign_input``
  (id, geom, at) and read ``assign_output``; every rule above, step by step.
* **Fast path** (:func:`assign_table`, :func:`fast_single_sql`): ``grid_atom`` holds each
  grid version's core (minus any overlapping version in force at an overlapping time) cut,
  in every layer the grid straddles, by one unit's core, and shrunk by about a millimetre
  (:func:`refresh_atoms`). A point inside such a piece is inside exactly one grid and
  strictly inside one unit of every straddled layer (a layer the grid does not straddle
  gives its unit for free anyway), so the rules give exactly the piece's grid and units:
  one point-in-polygon test per point. Every other point (near any piece edge, in an
  overlap or a sliver between units, outside every grid, or while the pieces are stale)
  goes through the exact engine. Pieces are stale once any grid or unit is written after
  they were cut (``layer_state`` generations); stale pieces are never used.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text

from gridgov.errors import InvalidInputError
from gridgov.layers.db import transaction_failed
from gridgov.layers.scope import API_ROLE

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
    refresh_atoms(conn, grid_ids)
    return written


ATOM_LAYERS = ("grid", "police_unit", "urban_unit", "emergency_unit")
_ATOM_COLUMNS = ", ".join(UNIT_COLUMNS)
# Pieces are fresh while no grid or unit has been written since they were computed.
FRESH_SQL = f"""(
    SELECT count(*) = {len(ATOM_LAYERS)} FROM grid_atom_state s
    JOIN layer_state l ON l.layer = s.layer AND l.generation = s.generation
)"""


# A piece is shrunk by this much (degrees, about 1 mm) before use: a point within it of
# a piece's edge goes to the exact engine, so float noise along shared edges can never
# decide a fast-path answer.
INNER_DEGREES = 1e-8
# Pieces thinner than that (slivers along nearly shared unit and grid edges) are dropped.
_MIN_PIECE_AREA = 1e-13  # square degrees, about 0.001 m²


def refresh_atoms(conn: Connection, grid_ids: list[int] | None = None) -> int:
    """Cut grid versions by the units they straddle (``grid_atom``); returns pieces written.

    Needs ``grid_unit`` up to date (:func:`refresh_grid_units` calls this). With
    ``grid_ids`` only those versions are cut again; the pieces count as fresh only after
    a full refresh.

    A piece is its grid's *core* (the grid minus any other grid version in force at an
    overlapping time whose interior meets it) cut, in every layer the grid straddles, by
    one unit's core (the unit minus the other units of its layer that overlap it), then
    shrunk by :data:`INNER_DEGREES`. A point inside a piece is therefore inside exactly
    one grid and strictly inside one unit of each straddled layer, and the rules give
    exactly the piece's grid and units (in a layer the grid does not straddle, its unit
    comes for free anyway). Pieces need not cover their grid: a point in no piece goes
    through the exact engine.
    """
    params = {"ids": grid_ids} if grid_ids is not None else {}
    only = "WHERE g.id = ANY(:ids)" if grid_ids is not None else ""
    conn.execute(
        text("DELETE FROM grid_atom" + (" WHERE grid_id = ANY(:ids)" if grid_ids else "")),
        params,
    )
    conn.execute(text("DROP TABLE IF EXISTS atom_work"))
    conn.execute(
        text(
            f"""
            CREATE TEMP TABLE atom_work ON COMMIT DROP AS
            SELECT g.id AS grid_id,
                   {", ".join(f"NULL::text AS {c}" for c in UNIT_COLUMNS)},
                   FALSE AS repaired,
                   COALESCE(ST_Difference(g.geom, o.others), g.geom)::geometry AS geom
            FROM grid g
            LEFT JOIN LATERAL (
                SELECT ST_Union(h.geom) AS others FROM grid h
                WHERE h.id <> g.id AND h.geom && g.geom
                  AND tstzrange(h.valid_from, h.valid_to) && tstzrange(g.valid_from, g.valid_to)
                  AND gridgov_interiors_meet(g.geom, h.geom)
            ) o ON TRUE
            {only}
            """
        ),
        params,
    )
    for target in UNIT_TARGETS:
        column = target.column
        conn.execute(
            text(
                f"""
                UPDATE atom_work a SET {column} = w.unit_code FROM grid_unit w
                WHERE w.grid_id = a.grid_id AND w.unit_layer = :layer
                  AND w.unit_level = :level AND w.share >= :whole
                """
            ),
            {"layer": target.layer, "level": target.level, "whole": WHOLE_SHARE},
        )
        cut = ", ".join("u.code" if c == column else f"a.{c}" for c in UNIT_COLUMNS)
        conn.execute(text("DROP TABLE IF EXISTS unit_core, atom_next"))
        conn.execute(
            text(
                f"""
                CREATE TEMP TABLE unit_core ON COMMIT DROP AS
                SELECT u.code, COALESCE(ST_Difference(u.geom, o.others), u.geom) AS geom
                FROM {target.layer} u
                LEFT JOIN LATERAL (
                    SELECT ST_Union(v.geom) AS others FROM {target.layer} v
                    WHERE {target.level_filter.replace("u.", "v.")} AND v.code <> u.code
                      AND v.geom && u.geom AND gridgov_interiors_meet(u.geom, v.geom)
                ) o ON TRUE
                WHERE {target.level_filter}
                """
            )
        )
        conn.execute(
            text(
                f"""
                CREATE TEMP TABLE atom_next ON COMMIT DROP AS
                SELECT * FROM atom_work WHERE {column} IS NOT NULL
                UNION ALL
                SELECT a.grid_id, {cut}, a.repaired,
                       ST_Multi(ST_CollectionExtract(ST_Intersection(a.geom, u.geom), 3))
                FROM atom_work a JOIN unit_core u ON a.geom && u.geom
                WHERE a.{column} IS NULL
                """
            )
        )
        # Repeated overlays can leave a piece invalid: repair it so that the next cut
        # works, and keep its points on the exact engine (a repaired piece is not used).
        conn.execute(
            text(
                "UPDATE atom_next SET repaired = TRUE, "
                "geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)) "
                "WHERE NOT ST_IsValid(geom)"
            )
        )
        conn.execute(
            text("DELETE FROM atom_next WHERE ST_Area(geom) < :min"), {"min": _MIN_PIECE_AREA}
        )
        conn.execute(text("DROP TABLE atom_work, unit_core"))
        conn.execute(text("ALTER TABLE atom_next RENAME TO atom_work"))
    written = conn.execute(
        text(
            f"""
            INSERT INTO grid_atom (grid_id, {_ATOM_COLUMNS}, clean, geom)
            SELECT grid_id, {_ATOM_COLUMNS}, NOT repaired, geom
            FROM (
                SELECT grid_id, {_ATOM_COLUMNS}, repaired,
                       ST_Multi(ST_CollectionExtract(
                           ST_Buffer(geom, -:inner, 'join=mitre'), 3)) AS geom
                FROM atom_work
            ) shrunk
            WHERE NOT ST_IsEmpty(geom) AND ST_IsValid(geom)
            """
        ),
        {"inner": INNER_DEGREES},
    ).rowcount
    conn.execute(text("DROP TABLE atom_work"))
    if grid_ids is None:
        conn.execute(text("DELETE FROM grid_atom_state"))
        conn.execute(
            text(
                "INSERT INTO grid_atom_state (layer, generation) "
                "SELECT layer, generation FROM layer_state WHERE layer = ANY(:layers)"
            ),
            {"layers": list(ATOM_LAYERS)},
        )
    return written


def atoms_fresh(conn: Connection) -> bool:
    """Whether ``grid_atom`` still matches every grid and unit (see :data:`FRESH_SQL`)."""
    return bool(conn.execute(text("SELECT " + FRESH_SQL)).scalar_one())


# Below this many points, starting parallel workers costs more than it saves.
PARALLEL_MIN_ROWS = 50_000


@contextmanager
def local_settings(conn: Connection, settings: dict[str, str]) -> Iterator[None]:
    """Set ``settings`` for the duration, in the transaction only, then restore them."""
    before = {
        name: conn.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one()
        for name in settings
    }
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    try:
        yield
    finally:
        # After an error that aborted the transaction, the settings go with it; a statement
        # here would only fail again and hide that error (InFailedSqlTransaction).
        if not transaction_failed(conn):
            for name, value in before.items():
                conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


PARALLEL_SETTINGS = {
    "max_parallel_workers_per_gather": "2",
    "parallel_setup_cost": "0",
    "parallel_tuple_cost": "0.001",
    "min_parallel_table_scan_size": "0",
    "jit": "off",
    "work_mem": "256MB",
}


@contextmanager
def parallel_plan(conn: Connection, enabled: bool = True) -> Iterator[None]:
    """Let the planner use parallel workers for the duration (then restore the settings).

    The tables involved are small (grids) or just loaded (the staging table), so the
    default thresholds would keep these statements on one core. ``enabled`` False: as is.
    """
    if not enabled:
        yield
        return
    with local_settings(conn, PARALLEL_SETTINGS):
        yield


def _analyze_scratch(conn: Connection, table: str) -> None:
    """Statistics for a table just filled, from a small sample: enough for the planner to
    choose index probes and hash joins, at a tenth of the default sample's cost (0.2 s
    of a million-row import's assignment)."""
    with local_settings(conn, {"default_statistics_target": "10"}):
        conn.execute(text(f"ANALYZE {table}"))


def fast_single_sql(point: str, at: str) -> str:
    """The fast path for one point (SQL expressions ``point``, ``at``): the clean piece
    whose interior holds it, if the pieces are fresh; no row means the exact engine."""
    return f"""
        SELECT a.grid_id, g.code AS grid_code, g.community_code, g.township_code,
               g.district_code, 'inside'::text AS assign_method,
               NULL::float8 AS assign_distance_m,
               {", ".join("a." + c for c in UNIT_COLUMNS)}
        FROM grid_atom a JOIN grid g ON g.id = a.grid_id
        WHERE a.clean AND a.geom && {point} AND ST_Contains(a.geom, {point})
          AND {at} >= g.valid_from AND (g.valid_to IS NULL OR {at} < g.valid_to)
          AND {FRESH_SQL}
    """


@dataclass(frozen=True)
class BulkResult:
    """Where :func:`assign_table` put its answer, and how it got there."""

    source: str
    fast: int  # rows placed by the fast path
    exact: int  # rows that went through the exact engine
    outside: list[int]  # ids outside the city (absent from :meth:`relation`)

    @property
    def tables(self) -> tuple[str, str, str]:
        return (f"{self.source}_fast", f"{self.source}_rest", f"{self.source}_exact")

    def relation(self) -> str:
        """SQL for the answer: id + OUTPUT_COLUMNS, one row per placed source row."""
        fast, _rest, exact = self.tables
        return f"""(
            SELECT f.id, a.grid_id, g.code AS grid_code, g.community_code, g.township_code,
                   g.district_code, 'inside'::text AS assign_method,
                   NULL::float8 AS assign_distance_m,
                   {", ".join("a." + c for c in UNIT_COLUMNS)}
            FROM {fast} f JOIN grid_atom a ON a.id = f.atom_id JOIN grid g ON g.id = a.grid_id
            UNION ALL
            SELECT id, {", ".join(OUTPUT_COLUMNS)} FROM {exact}
        )"""

    def drop(self, conn: Connection) -> None:
        conn.execute(text("DROP TABLE IF EXISTS " + ", ".join(self.tables)))


def scratch_name(prefix: str) -> str:
    """A table name no other transaction can be using."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def assign_table(conn: Connection, source: str, tolerance_m: float) -> BulkResult:
    """Assign every row of ``source`` (a regular table: id bigint, unique, geom, at
    timestamptz, with a GiST index on geom); the answer is :meth:`BulkResult.relation`, in UNLOGGED
    tables named after ``source`` that the caller drops with :meth:`BulkResult.drop`.

    The fast path runs grid piece by grid piece, each probing the index on the points,
    so that the piece stays in PostGIS's prepared-geometry cache, with parallel workers
    (which a temporary table would forbid); it writes only (id, piece).
    """
    result = BulkResult(source, 0, 0, [])
    fast, rest, exact = result.tables
    fresh = atoms_fresh(conn)
    _analyze_scratch(conn, source)
    rows = conn.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": source}
    ).scalar_one()
    with parallel_plan(conn, enabled=rows >= PARALLEL_MIN_ROWS):
        placed = conn.execute(
            text(
                f"""
                CREATE UNLOGGED TABLE {fast} AS
                SELECT s.id, a.id AS atom_id
                FROM grid_atom a JOIN grid g ON g.id = a.grid_id
                CROSS JOIN LATERAL (
                    SELECT i.id FROM {source} i
                    WHERE i.geom && a.geom AND ST_Contains(a.geom, i.geom)
                      AND i.at >= g.valid_from AND (g.valid_to IS NULL OR i.at < g.valid_to)
                ) s
                WHERE a.clean AND {"TRUE" if fresh else "FALSE"}
                """
            )
        ).rowcount
        # The rows the fast path left: each id's bit XORed in once from the source and
        # once from the fast table leaves only theirs. One parallel pass over both tables
        # and a tiny hash: 0.30 s for a million points, where the anti join on the fast
        # table's ids (a hash of a million) took 0.43 s.
        left = conn.execute(
            text(
                f"""
                CREATE UNLOGGED TABLE {rest} AS
                WITH missing AS MATERIALIZED (
                    SELECT word, bits FROM (
                        SELECT id >> 6 AS word, bit_xor(1::bigint << (id & 63)::int) AS bits
                        FROM (SELECT id FROM {source} UNION ALL SELECT id FROM {fast}) ids
                        GROUP BY 1
                    ) w
                    WHERE bits <> 0
                )
                SELECT i.id, i.geom, i.at FROM {source} i
                JOIN missing m ON m.word = i.id >> 6 AND (m.bits >> (i.id & 63)::int) & 1 = 1
                """
            )
        ).rowcount
    conn.execute(text(f"CREATE UNLOGGED TABLE {exact} ({_OUTPUT_DDL})"))
    missing: list[int] = []
    if left:
        prepare_input(conn)
        conn.execute(text(f"INSERT INTO assign_input (id, geom, at) SELECT * FROM {rest}"))
        run(conn, tolerance_m)
        columns = ", ".join(OUTPUT_COLUMNS)
        conn.execute(
            text(f"INSERT INTO {exact} (id, {columns}) SELECT id, {columns} FROM assign_output")
        )
        missing = outside(conn)
        finish(conn)
    return BulkResult(source, placed, left, missing)


# The exact engine's answers, as a table.
_OUTPUT_DDL = (
    "id bigint, grid_id bigint, grid_code text, community_code text, township_code text, "
    "district_code text, assign_method text, assign_distance_m float8, "
    + ", ".join(f"{c} text" for c in UNIT_COLUMNS)
)


def prepare_input(conn: Connection) -> None:
    """Create (once per connection) the temporary input table, emptied at each commit.

    One pooled connection may serve the login role (the CLI, background jobs) and later
    the API's bound role, or both in one test: the table, when the login role creates it,
    is granted to the bound role, and its index is only created when missing (``CREATE
    INDEX … IF NOT EXISTS`` still demands to own the table).
    """
    if conn.execute(text("SELECT to_regclass('pg_temp.assign_input') IS NULL")).scalar_one():
        conn.execute(
            text(
                """
                CREATE TEMP TABLE assign_input (
                    id bigint PRIMARY KEY,
                    geom geometry(Point, 4490) NOT NULL,
                    at timestamptz NOT NULL
                ) ON COMMIT DELETE ROWS
                """
            )
        )
        conn.execute(text("CREATE INDEX assign_input_geom ON assign_input USING gist (geom)"))
        conn.execute(
            text(
                f"""
                DO $$ BEGIN
                    IF current_user <> '{API_ROLE}'
                       AND EXISTS (SELECT FROM pg_roles WHERE rolname = '{API_ROLE}') THEN
                        GRANT SELECT, INSERT, DELETE ON assign_input TO {API_ROLE};
                    END IF;
                END $$
                """
            )
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
    pending = conn.execute(
        text(
            f"""
            CREATE TEMP TABLE assign_pending ON COMMIT DROP AS
            SELECT i.id, i.geom FROM assign_input i JOIN assign_output o ON o.id = i.id
            WHERE o.{target.column} IS NULL
            """
        )
    ).rowcount
    if not pending:  # every grid lies wholly in one unit: four statements saved
        return
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
