"""Heatmap aggregates equal a plain GROUP BY over the raw incidents, for the same filters."""

from __future__ import annotations

from typing import Any

import h3.api.basic_int as h3i
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from gridgov.api.app import create_app
from gridgov.gis import cube as cube_mod
from gridgov.layers import aggregates, migrate
from gridgov.settings import Settings
from tests.live import committed_login

OVERDUE_SQL = "deadline_at < now() AND status NOT IN ('closed', 'evaluated')"
DAY = "(reported_at AT TIME ZONE 'Asia/Shanghai')::date"
FILTERS: list[tuple[dict[str, str], str]] = [
    ({}, "true"),
    ({"category": "dispute,safety_hazard"}, "category IN ('dispute', 'safety_hazard')"),
    (
        {"status": "reported,handling", "township_code": "320213002"},
        "status IN ('reported', 'handling') AND township_code = '320213002'",
    ),
    (
        {"from": "2025-03-01", "to": "2025-06-30"},
        f"{DAY} BETWEEN DATE '2025-03-01' AND DATE '2025-06-30'",
    ),
    (
        {"status": "overdue", "community_code": "320213001001"},
        f"{OVERDUE_SQL} AND community_code = '320213001001'",
    ),
    (
        {"overdue": "true", "police_station_code": "PCS2"},
        f"{OVERDUE_SQL} AND police_station_code = 'PCS2'",
    ),
    (
        {"category": "city_management", "urban_unit_code": "CG2"},
        "category = 'city_management' AND urban_unit_code = 'CG2'",
    ),
    ({"emergency_unit_code": "YJ1"}, "emergency_unit_code = 'YJ1'"),
]


def raw(conn: Connection, key: str, where: str) -> dict[Any, tuple[int, int]]:
    rows = conn.execute(
        text(
            f"SELECT {key} AS k, count(*), count(*) FILTER (WHERE {OVERDUE_SQL}) "
            f"FROM incident WHERE {where} GROUP BY 1"
        )
    ).all()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


@pytest.mark.parametrize(("params", "where"), FILTERS)
@pytest.mark.parametrize("level", cube_mod.LEVELS)
def test_by_level_equals_group_by(
    client: TestClient,
    connection: Connection,
    city: list[int],
    level: str,
    params: dict[str, str],
    where: str,
) -> None:
    response = client.get(f"/aggregates/incidents/by/{level}", params=params)
    assert response.status_code == 200, response.text
    got = {i["code"]: (i["count"], i["overdue"]) for i in response.json()["items"]}
    assert got == raw(connection, f"{level}_code", where)
    assert got


@pytest.mark.parametrize(("params", "where"), FILTERS[:4])
@pytest.mark.parametrize("interval", ["day", "week", "month"])
def test_trend_equals_group_by(
    client: TestClient,
    connection: Connection,
    city: list[int],
    interval: str,
    params: dict[str, str],
    where: str,
) -> None:
    response = client.get("/aggregates/incidents/trend", params={**params, "interval": interval})
    items = response.json()["items"]
    got = {i["period"]: (i["count"], i["overdue"]) for i in items if i["count"]}
    expected = raw(connection, f"date_trunc('{interval}', {DAY})::date::text", where)
    assert got == expected
    assert sum(i["count"] for i in items) == sum(c for c, _ in expected.values())


@pytest.mark.parametrize("resolution", [7, 8, 9, 10])
def test_h3_equals_cells_of_raw_points(
    client: TestClient, connection: Connection, city: list[int], resolution: int
) -> None:
    params, where = FILTERS[1]
    rows = connection.execute(
        text(f"SELECT ST_X(geom), ST_Y(geom), ({OVERDUE_SQL}) FROM incident WHERE {where}")
    ).all()
    expected: dict[str, list[int]] = {}
    for lon, lat, overdue in rows:
        cell = h3i.int_to_str(h3i.latlng_to_cell(lat, lon, resolution))
        counts = expected.setdefault(cell, [0, 0])
        counts[0] += 1
        counts[1] += int(bool(overdue))
    response = client.get(
        "/aggregates/incidents/h3", params={**params, "resolution": str(resolution)}
    )
    assert response.status_code == 200
    body = response.json()
    got = {
        f["properties"]["cell"]: [f["properties"]["count"], f["properties"]["overdue"]]
        for f in body["features"]
    }
    assert got == expected
    ring = body["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]
    assert 120 < ring[0][0] < 121
    assert 31 < ring[0][1] < 32


def test_aggregates_follow_changes(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    before = client.get("/aggregates/incidents/by/district").json()["items"][0]["count"]
    connection.execute(text("DELETE FROM incident WHERE id = :id"), {"id": city[0]})
    after = client.get("/aggregates/incidents/by/district").json()["items"][0]["count"]
    assert after == before - 1
    connection.execute(
        text(
            "UPDATE incident SET status = 'reported', deadline_at = "
            "now() - interval '1 hour' WHERE id = :id"
        ),
        {"id": city[1]},
    )
    overdue = client.get("/aggregates/incidents/by/district?overdue=true").json()["items"][0]
    assert overdue["count"] == raw(connection, "district_code", OVERDUE_SQL)["320213"][0]


def test_department_units_are_named(client: TestClient, city: list[int]) -> None:
    named: dict[str, dict[str | None, str]] = {
        "urban_unit": {"CG1": "城管一中队", "CG2": "城管二中队"},
        "emergency_unit": {"YJ1": "南片应急", "YJ2": "北片应急"},
    }
    for level, names in named.items():
        items = client.get(f"/aggregates/incidents/by/{level}").json()["items"]
        assert {i["code"]: i["name"] for i in items} == {**names, None: "未分派 (unassigned)"}


def test_migration_0017_recomputes_every_stored_day(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    """Rows stored before 0017 have no department codes: the upgrade marks their days dirty,
    and the next refresh fills the new columns exactly."""
    assert client.get("/aggregates/incidents/by/grid").status_code == 200  # rows stored
    migrate.downgrade(connection, "0016_code_checks")
    connection.execute(text("DELETE FROM incident_agg_dirty_day"))  # as if refreshed then
    migrate.upgrade(connection, "0017_agg_units")
    stored = set(connection.execute(text("SELECT DISTINCT day FROM incident_agg")).scalars())
    dirty = set(connection.execute(text("SELECT day FROM incident_agg_dirty_day")).scalars())
    assert stored
    assert dirty == stored
    assert aggregates.refresh(connection) == len(stored)
    for column in ("urban_unit_code", "emergency_unit_code"):
        rows = connection.execute(
            text(f"SELECT {column}, sum(n) FROM incident_agg GROUP BY 1")
        ).all()
        expected = raw(connection, column, "true")
        assert {r[0]: int(r[1]) for r in rows} == {k: v[0] for k, v in expected.items()}


@pytest.mark.parametrize(
    "url",
    [
        "/aggregates/incidents/h3?resolution=6",
        "/aggregates/incidents/h3?resolution=x",
        "/aggregates/incidents/trend?interval=year",
        "/aggregates/incidents/by/grid?from=2025-13-01",
        "/aggregates/incidents/by/grid?from=2025-06-01&to=2025-01-01",
        "/aggregates/incidents/by/grid?category=nonsense",
        "/aggregates/incidents/by/grid?district_code=3202",
        "/aggregates/incidents/by/grid?bogus=1",
    ],
)
def test_bad_aggregate_parameters(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.text


def test_unknown_level_is_404(client: TestClient) -> None:
    assert client.get("/aggregates/incidents/by/planet").status_code == 404


def test_start_up_warm_up_builds_the_cube_before_the_first_request(
    settings: Settings, engine: Engine
) -> None:
    """With the warm-up (the default) the cube exists once the app has started, and the
    first request uses it as it is (no rebuild); without it, the first request builds it."""
    with committed_login(engine, settings) as token:
        _warm_and_cold(settings, {"Authorization": f"Bearer {token}"})


def _warm_and_cold(settings: Settings, headers: dict[str, str]) -> None:
    app = create_app(settings)
    with TestClient(app, headers=headers) as client:
        cube = app.state.incident_cube.cube
        assert cube is not None
        response = client.get("/aggregates/incidents/by/grid")
        assert response.status_code == 200, response.text
        assert app.state.incident_cube.cube is cube
    cold = create_app(settings.model_copy(update={"warm_up": False}))
    with TestClient(cold, headers=headers) as client:
        assert getattr(cold.state, "incident_cube", None) is None
        assert client.get("/aggregates/incidents/by/grid").status_code == 200
        assert cold.state.incident_cube.cube is not None


def test_writes_reload_only_their_days_and_counts_stay_exact(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    """After each write the cube is spliced (not rebuilt) and still equals GROUP BY, for
    every level, the trend and the overdue counts: a new day, a moved status and a
    removed incident."""
    assert client.get("/aggregates/incidents/by/grid").status_code == 200
    cache = client.app.state.incident_cube  # type: ignore[attr-defined]
    first = cache.cube
    connection.execute(
        text(
            "INSERT INTO incident (category, status, source, reported_at, deadline_at, geom, "
            "district_code, township_code, community_code, grid_code, police_station_code) "
            "SELECT 'livelihood', 'dispatched', 'hotline', TIMESTAMPTZ '2026-02-03 23:30+08', "
            "now() - interval '2 hours', geom, district_code, township_code, community_code, "
            "grid_code, police_station_code FROM incident WHERE id = :id"
        ),
        {"id": city[2]},
    )
    connection.execute(
        text("UPDATE incident SET status = 'closed' WHERE id = :id"), {"id": city[3]}
    )
    connection.execute(text("DELETE FROM incident WHERE id = :id"), {"id": city[4]})
    reloaded = connection.execute(text("SELECT count(*) FROM incident_agg_dirty_day")).scalar()
    assert reloaded is not None
    assert 1 <= reloaded <= 3  # only the touched days are recomputed
    for level in ("grid", "community", "township", "district", "police_station"):
        response = client.get(f"/aggregates/incidents/by/{level}")
        got = {i["code"]: (i["count"], i["overdue"]) for i in response.json()["items"]}
        assert got == raw(connection, f"{level}_code", "true"), level
    assert cache.cube is not first  # a new cube object ...
    assert cache.cube.code_values["grid"][: len(first.code_values["grid"])] == list(
        first.code_values["grid"]
    )  # ... spliced: the old encoding kept, not rebuilt from scratch
    items = client.get("/aggregates/incidents/trend", params={"interval": "day"}).json()["items"]
    got = {i["period"]: (i["count"], i["overdue"]) for i in items if i["count"]}
    assert got == raw(connection, f"{DAY}::text", "true")
    assert "2026-02-03" in got
    late = client.get("/aggregates/incidents/by/district?overdue=true").json()["items"]
    assert {i["code"]: i["count"] for i in late} == {
        k: v[0] for k, v in raw(connection, "district_code", OVERDUE_SQL).items()
    }


def test_requests_do_not_queue_behind_another_cube_update(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    """While one request of the process updates the cube (its lock held), another answers
    from the cube it has, one update behind, instead of waiting; once the lock is free the
    next request brings the cube up to date."""
    before = client.get("/aggregates/incidents/by/district").json()["items"][0]["count"]
    cache = client.app.state.incident_cube  # type: ignore[attr-defined]
    held = cache.cube
    connection.execute(text("DELETE FROM incident WHERE id = :id"), {"id": city[0]})
    with cache._lock:  # another request's update in progress
        stale = client.get("/aggregates/incidents/by/district")
        assert stale.status_code == 200, stale.text
        assert stale.json()["items"][0]["count"] == before
        assert cache.cube is held
    fresh = client.get("/aggregates/incidents/by/district").json()["items"][0]["count"]
    assert fresh == before - 1
    assert cache.cube is not held
