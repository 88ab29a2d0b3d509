"""Two planners editing neighbouring grids at once, on real connections with committed data.

Community 320205001001 holds grid A (west) and grid B (east) with an ungridded strip
between them. Each planner grows a grid over the strip; without serialisation both
would see the strip free and commit an overlap. The rows are committed (each writer has
its own connection and transaction) and removed again after each test.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, box, mapping
from sqlalchemy import Connection, Engine, MetaData, text

from gridgov.api.app import create_app
from gridgov.errors import PreconditionFailedError
from gridgov.gis.grid_edit import EditConflictError, Operation, Options, Replace, Update
from gridgov.layers import accounts, grid_edit
from gridgov.layers.registry import Registry
from gridgov.security import tokens
from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.factories import insert_row, valid_row
from tests.layers.concurrency import WAIT_S, committed, second_waits_for_first

DISTRICT, TOWNSHIP, COMMUNITY = "320205", "320205001", "320205001001"
A, B = COMMUNITY + "001", COMMUNITY + "002"
W, MIDW, MIDE, E, S, N = 120.40, 120.41, 120.412, 120.42, 31.60, 31.62
GROW_A = box(W, S, MIDE, N)  # A over the strip
GROW_B = box(MIDW, S, E, N)  # B over the strip


def _cleanup(conn: Connection) -> None:
    conn.execute(text("DELETE FROM grid_edit WHERE community_code = :c"), {"c": COMMUNITY})
    conn.execute(text("DELETE FROM grid WHERE community_code = :c"), {"c": COMMUNITY})
    conn.execute(text("DELETE FROM community WHERE code = :c"), {"c": COMMUNITY})
    conn.execute(text("DELETE FROM township WHERE code = :c"), {"c": TOWNSHIP})
    conn.execute(text("DELETE FROM district WHERE code = :c"), {"c": DISTRICT})


@pytest.fixture
def committed_city(engine: Engine, metadata: MetaData, registry: Registry) -> Iterator[Engine]:
    codes = {"district_code": DISTRICT, "township_code": TOWNSHIP}

    def fill(conn: Connection) -> None:
        def add(layer: str, **kw: Any) -> None:
            insert_row(conn, metadata, layer, valid_row(registry.get(layer), **kw))

        add("district", code=DISTRICT, geom=MultiPolygon([box(120.3, 31.5, 120.5, 31.7)]))
        add("township", code=TOWNSHIP, district_code=DISTRICT, geom=MultiPolygon([box(W, S, E, N)]))
        add("community", code=COMMUNITY, **codes, geom=MultiPolygon([box(W, S, E, N)]))
        for code, shape in ((A, box(W, S, MIDW, N)), (B, box(MIDE, S, E, N))):
            add("grid", code=code, community_code=COMMUNITY, **codes, geom=MultiPolygon([shape]))

    yield from committed(engine, _cleanup, fill)


def _edit(conn: Connection, registry: Registry, operation: Operation, tags: list[str]) -> Any:
    return grid_edit.apply_edit(
        conn,
        registry,
        operation,
        actor="planner",
        reason="并发测试",
        if_match=tags,
        options=Options(),
        tolerance_m=50.0,
    )


def _overlap_m2(engine: Engine) -> float:
    with engine.connect() as conn:
        value = conn.execute(
            text(
                """
                SELECT COALESCE(
                    sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 4549))), 0)
                FROM grid a JOIN grid b ON a.code < b.code AND ST_Intersects(a.geom, b.geom)
                WHERE a.community_code = :c AND b.community_code = :c
                  AND a.valid_to IS NULL AND b.valid_to IS NULL
                """
            ),
            {"c": COMMUNITY},
        ).scalar_one()
    return float(value)


def _tags(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {code: grid_edit.current(conn, code).etag for code in (A, B)}


def test_second_planner_waits_and_then_sees_the_overlap(
    committed_city: Engine, registry: Registry
) -> None:
    engine = committed_city
    tags = _tags(engine)
    outcome = second_waits_for_first(  # the first holds the community lock
        engine,
        lambda first: _edit(first, registry, Replace(A, GROW_A), [tags[A]]),
        lambda second: _edit(second, registry, Replace(B, GROW_B), [tags[B]]),
    )
    error = outcome.get("error")
    assert isinstance(error, EditConflictError), outcome
    assert error.problems[0].kind == "overlap"
    assert error.problems[0].codes == (A,)
    assert _overlap_m2(engine) < 1.0
    with engine.connect() as conn:
        assert grid_edit.current(conn, A).geometry.equals(MultiPolygon([GROW_A]))
        assert grid_edit.current(conn, B).etag == tags[B]  # B untouched


def test_two_writers_with_one_etag_only_one_wins(
    committed_city: Engine, registry: Registry
) -> None:
    engine = committed_city
    tag = _tags(engine)[A]
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def planner(name: str) -> None:
        with engine.connect() as conn, conn.begin():
            barrier.wait(WAIT_S)
            try:
                outcomes.append(_edit(conn, registry, Update(A, attrs={"name": name}), [tag]))
            except Exception as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=planner, args=(n,)) for n in ("甲", "乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) == 2
    assert len(failures) == 1, outcomes
    assert isinstance(failures[0], PreconditionFailedError)
    with engine.connect() as conn:
        versions = grid_edit.history(conn, A)
    assert len(versions) == 2  # one new version, not two


def test_concurrent_http_edits_never_overlap(
    committed_city: Engine, registry: Registry, settings: Settings, password_hash: str
) -> None:
    """Through the API, real pool connections: exactly one of the two growths commits."""
    engine = committed_city
    tags = _tags(engine)
    app = create_app(settings)
    suffix = uuid.uuid4().hex[:8]
    tokens_of: dict[str, str] = {}
    names: dict[str, str] = {}
    with engine.begin() as conn:  # committed accounts: each writer has its own connection
        for code in (A, B):
            names[code] = f"planner_{code[-3:]}_{suffix}"
            user = accounts.insert_user(
                conn, names[code], password_hash, Role.PLANNER, (TOWNSHIP,), ()
            )
            session_id, _ = accounts.open_session(conn, user.id, "test", timedelta(hours=1))
            tokens_of[code], _ = tokens.issue(
                settings.require_secret_key(),
                user.id,
                user.username,
                session_id,
                timedelta(hours=1),
            )
    barrier = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def planner(code: str, shape: Any) -> None:
        client = TestClient(app)
        body = {"type": "Feature", "geometry": mapping(shape), "reason": "并发"}
        barrier.wait(WAIT_S)
        response = client.put(
            f"/grids/{code}",
            json=body,
            headers={"If-Match": tags[code], "Authorization": f"Bearer {tokens_of[code]}"},
        )
        statuses[code] = response.status_code

    threads = [
        threading.Thread(target=planner, args=(A, GROW_A)),
        threading.Thread(target=planner, args=(B, GROW_B)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert sorted(statuses.values()) == [200, 409], statuses
    assert _overlap_m2(engine) < 1.0
    with engine.connect() as conn:
        log = grid_edit.edit_log(conn, COMMUNITY, None, 10)
    assert len(log) == 1
    winner = next(code for code, status in statuses.items() if status == 200)
    assert log[0]["actor"] == names[winner]
