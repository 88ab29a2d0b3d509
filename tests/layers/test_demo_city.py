"""Invariants of the Wuxi demo city, checked on a database loaded with it.

The city is built with the defaults `make serve` uses, loaded inside a transaction that is
rolled back when the module ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
import shapely
from sqlalchemy import Connection, Engine, MetaData, text

from gridgov.gis import wuxi
from gridgov.gis.demo.city import DemoInputs, DemoOptions, build_city
from gridgov.gis.demo.incidents import AS_OF
from gridgov.gis.grid_edit import MoveBoundary, Options
from gridgov.layers import unit_edit
from gridgov.layers.catalog import INCIDENT_CATEGORIES, INCIDENT_STATUSES, KEY_SITE_CATEGORIES
from gridgov.layers.checks import coverage
from gridgov.layers.demo import is_empty, layer_counts, load_city
from gridgov.layers.registry import Registry
from gridgov.layers.spec import AdminLevel

TOLERANCE_M2 = 1.0


@pytest.fixture(scope="module")
def demo(engine: Engine, registry: Registry, metadata: MetaData) -> Iterator[Connection]:
    inputs = DemoInputs(wuxi.load_districts(), wuxi.load_townships(), wuxi.load_communities())
    city = build_city(inputs, DemoOptions())
    with engine.connect() as conn:
        transaction = conn.begin()
        # Whole-city checks are analytic queries, not request paths: no 60 s cap here.
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        try:
            assert is_empty(conn, registry, metadata)
            load_city(conn, registry, metadata, city, tolerance_m=50.0)
            yield conn
        finally:
            transaction.rollback()


def scalar(conn: Connection, sql: str) -> int:
    return int(conn.execute(text(sql)).scalar_one())


@pytest.mark.parametrize("level", [AdminLevel.TOWNSHIP, AdminLevel.COMMUNITY, AdminLevel.GRID])
def test_each_level_partitions_its_parent(
    demo: Connection, registry: Registry, level: AdminLevel
) -> None:
    rows = coverage(demo, registry, level)
    assert rows
    bad = [r for r in rows if max(r.gap_m2, r.overlap_m2, r.outside_m2) >= TOLERANCE_M2]
    assert bad == [], bad[:5]


def test_real_names_and_codes(demo: Connection, registry: Registry, metadata: MetaData) -> None:
    counts = layer_counts(demo, registry, metadata)
    assert counts["district"] == 7
    assert counts["township"] == len(wuxi.load_townships())
    assert counts["community"] == len(wuxi.load_communities())
    stored = pd.read_sql(text("SELECT code, name FROM community ORDER BY code"), demo)
    expected = wuxi.load_communities().sort_values("code")[["code", "name"]]
    assert stored["code"].tolist() == expected["code"].tolist()
    assert stored["name"].tolist() == expected["name"].tolist()


@pytest.mark.parametrize("layer", ["district", "township", "community", "grid"])
def test_codes_unique_and_well_formed(demo: Connection, layer: str) -> None:
    length = {"district": 6, "township": 9, "community": 12, "grid": 15}[layer]
    total = scalar(demo, f"SELECT count(*) FROM {layer}")
    assert scalar(demo, f"SELECT count(DISTINCT code) FROM {layer}") == total
    assert scalar(demo, f"SELECT count(*) FROM {layer} WHERE code ~ '^[0-9]{{{length}}}$'") == total


def test_every_incident_lies_inside_wuxi(demo: Connection) -> None:
    assert scalar(demo, "SELECT count(*) FROM incident") == DemoOptions().incidents
    outside = scalar(
        demo,
        """
        SELECT count(*) FROM incident i
        WHERE NOT EXISTS (SELECT 1 FROM district d WHERE ST_Intersects(d.geom, i.geom))""",
    )
    assert outside == 0


@pytest.mark.parametrize("layer", ["building", "incident", "rental_housing"])
def test_points_carry_the_codes_of_where_they_are(demo: Connection, layer: str) -> None:
    wrong = scalar(
        demo,
        f"""
        SELECT count(*) FROM {layer} x JOIN grid g ON g.code = x.grid_code
        WHERE NOT ST_DWithin(g.geom, x.geom, 1e-7)
           OR g.community_code <> x.community_code""",
    )
    assert wrong == 0
    assert scalar(demo, f"SELECT count(*) FROM {layer} WHERE grid_code IS NULL") == 0


def test_grid_households_are_the_sum_of_their_buildings(demo: Connection) -> None:
    mismatched = scalar(
        demo,
        """
        SELECT count(*) FROM grid g
        LEFT JOIN (SELECT grid_code, sum(households) AS h FROM building GROUP BY grid_code) b
               ON b.grid_code = g.code
        WHERE g.households <> COALESCE(b.h, 0)""",
    )
    assert mismatched == 0
    median = scalar(
        demo, "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY households) FROM grid"
    )
    assert 250 <= median <= 600, median


def test_urban_core_is_denser_than_countryside(demo: Connection) -> None:
    rows = demo.execute(
        text("""
        SELECT d.name, sum(b.households) / (ST_Area(ST_Transform(d.geom, 4549)) / 1e6) AS per_km2
        FROM district d JOIN building b ON b.district_code = d.code GROUP BY d.code, d.name, d.geom
    """)
    ).all()
    density = {r.name: float(r.per_km2) for r in rows}
    for core in ("梁溪区", "滨湖区", "新吴区"):
        for rural in ("宜兴市", "江阴市"):
            assert density[core] > density[rural], density
    assert density["梁溪区"] > 5 * density["宜兴市"]


def test_every_category_level_and_state_occurs(demo: Connection) -> None:
    def values(sql: str) -> set[str]:
        return set(demo.execute(text(sql)).scalars())

    assert values("SELECT DISTINCT category FROM key_site") == {
        c.value for c in KEY_SITE_CATEGORIES
    }
    assert values("SELECT DISTINCT risk_level FROM hazard_zone") == {
        "major",
        "high",
        "moderate",
        "low",
    }
    assert values("SELECT DISTINCT category FROM incident") == {
        c.value for c in INCIDENT_CATEGORIES
    }
    assert values("SELECT DISTINCT status FROM incident") == {c.value for c in INCIDENT_STATUSES}
    assert scalar(demo, "SELECT count(*) FROM rental_housing WHERE is_group_rental") > 500
    overdue = demo.execute(
        text(
            "SELECT count(*) FROM incident WHERE deadline_at < :as_of "
            "AND status NOT IN ('closed', 'evaluated')"
        ),
        {"as_of": AS_OF.to_pydatetime()},
    ).scalar_one()
    assert 0.005 * DemoOptions().incidents < overdue < 0.1 * DemoOptions().incidents


def test_incidents_vary_by_hour_and_cluster(demo: Connection) -> None:
    by_hour = demo.execute(
        text(
            "SELECT extract(hour FROM reported_at AT TIME ZONE 'Asia/Shanghai') AS h, count(*) "
            "FROM incident GROUP BY h"
        )
    ).all()
    counts = [c for _, c in by_hour]
    assert len(counts) == 24
    assert max(counts) > 5 * min(counts)
    # Clustered: the busiest 5 % of grids hold far more than 5 % of incidents.
    share = demo.execute(
        text("""
        WITH per AS (SELECT grid_code, count(*) AS n FROM incident GROUP BY grid_code),
             ranked AS (SELECT n, ntile(20) OVER (ORDER BY n DESC) AS tile FROM per)
        SELECT sum(n) FILTER (WHERE tile = 1)::float / sum(n) FROM ranked""")
    ).scalar_one()
    assert share > 0.15, share


def test_police_units_dock_imperfectly_with_grids(demo: Connection) -> None:
    """Most grids lie in one community policing area, some straddle two (as in real life)."""
    inside_one = demo.execute(
        text("""
        WITH overlap AS (
            SELECT g.id, max(ST_Area(ST_Intersection(g.geom, p.geom)) / ST_Area(g.geom)) AS best
            FROM grid g JOIN police_unit p
              ON p.level = 'policing_area' AND ST_Intersects(g.geom, p.geom)
            GROUP BY g.id)
        SELECT avg((best > 0.99)::int) FROM overlap""")
    ).scalar_one()
    assert 0.6 < inside_one < 0.99, inside_one


def test_synthetic_rows_are_labelled(demo: Connection) -> None:
    assert scalar(demo, "SELECT count(*) FROM district WHERE synthetic") == 0
    for layer in ("township", "community", "grid", "building", "incident", "police_unit"):
        assert scalar(demo, f"SELECT count(*) FROM {layer} WHERE NOT synthetic") == 0


def test_demo_incidents_went_through_the_assignment_engine(demo: Connection) -> None:
    methods: dict[str, int] = dict(
        demo.execute(text("SELECT assign_method, count(*) FROM incident GROUP BY 1")).all()
    )
    assert sum(methods.values()) == DemoOptions().incidents
    assert methods.get("inside", 0) > 0.99 * DemoOptions().incidents
    for column in (
        "grid_id",
        "police_station_code",
        "policing_area_code",
        "urban_unit_code",
        "emergency_unit_code",
    ):
        assert scalar(demo, f"SELECT count(*) FROM incident WHERE {column} IS NULL") == 0, column


def test_police_can_move_a_demo_policing_area_boundary(
    demo: Connection, registry: Registry
) -> None:
    """A unit edit on the real demo shapes: two adjacent policing areas of one station,
    one grown about 20 m into the other (the neighbour follows); rolled back after."""
    pair = demo.execute(
        text(
            """
            SELECT a.code AS a, b.code AS b FROM police_unit a JOIN police_unit b
              ON a.parent_code = b.parent_code AND a.code < b.code
             AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) > 0.002
            WHERE a.level = 'policing_area' AND b.level = 'policing_area'
            ORDER BY a.code, b.code LIMIT 1
            """
        )
    ).one()
    savepoint = demo.begin_nested()
    try:
        a = unit_edit.current(demo, "police_unit", pair.a)
        b = unit_edit.current(demo, "police_unit", pair.b)
        others = demo.execute(
            text(
                "SELECT ST_AsBinary(ST_Union(geom)) FROM police_unit "
                "WHERE level = 'policing_area' AND code NOT IN (:a, :b) "
                "AND ST_DWithin(geom, (SELECT geom FROM police_unit WHERE code = :b), 0.001)"
            ),
            {"a": pair.a, "b": pair.b},
        ).scalar_one()
        taken = b.geometry.intersection(a.geometry.buffer(2e-4))
        if others is not None:  # the demo units overlap by a few m² here and there
            taken = taken.difference(shapely.from_wkb(bytes(others)))
        grown = shapely.union_all([a.geometry, taken])
        result = unit_edit.apply_unit_edit(
            demo,
            registry,
            "police_unit",
            MoveBoundary(pair.a, pair.b, grown),
            actor="test-police",
            reason="演示数据上的警务区边界调整",
            if_match=[a.etag, b.etag],
            options=Options(),
            tolerance_m=50.0,
        )
        after = {u.code: u.geometry for u in result.units}
        assert after[pair.a].area > a.geometry.area
        assert after[pair.b].area < b.geometry.area
        both = a.geometry.union(b.geometry)
        assert after[pair.a].union(after[pair.b]).symmetric_difference(both).area < 1e-10
        assert after[pair.a].intersection(after[pair.b]).area < 1e-10
        assert result.grids_refreshed > 0
        shares = demo.execute(
            text(
                """
                SELECT max(total) FROM (
                    SELECT gu.grid_id, sum(gu.share) AS total FROM grid_unit gu
                    WHERE gu.unit_layer = 'police_unit' AND gu.unit_level = 'policing_area'
                      AND gu.unit_code IN (:a, :b)
                    GROUP BY gu.grid_id) s
                """
            ),
            {"a": pair.a, "b": pair.b},
        ).scalar_one()
        assert shares <= 1.0 + 1e-6  # docking shares still add up after the edit
    finally:
        savepoint.rollback()


def test_each_stage_of_a_demo_incident_follows_the_one_before(demo: Connection) -> None:
    """Durations between stages are never negative (handled was drawn apart from handling
    and came first for 535 of 200,000 incidents)."""
    import itertools

    from gridgov.gis.lifecycle import STAGE_COLUMN, STAGES

    columns = ["reported_at", *(STAGE_COLUMN[s] for s in STAGES[1:])]
    pairs = " OR ".join(f"{b} < {a}" for a, b in itertools.pairwise(columns))
    assert scalar(demo, f"SELECT count(*) FROM incident WHERE {pairs}") == 0
    assert scalar(demo, "SELECT count(*) FROM incident WHERE handled_at IS NOT NULL") > 1000
