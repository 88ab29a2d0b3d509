"""Two police officers editing neighbouring units at once, on real connections.

District 320204 holds policing areas A (west) and B (east) with an unassigned strip
between them. Each officer grows a unit over the strip; without serialisation per layer
and district both would see the strip free and commit an overlap. The rows are committed
(each writer has its own connection and transaction) and removed after each test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Connection, Engine, MetaData, text

from gridgov.errors import PreconditionFailedError
from gridgov.gis.grid_edit import EditConflictError, Operation, Options, Replace, Update
from gridgov.layers import unit_edit
from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row
from tests.layers.concurrency import WAIT_S, committed, second_waits_for_first

DISTRICT = "320204"
A, B = "CONC-A", "CONC-B"
W, MIDW, MIDE, E, S, N = 120.40, 120.41, 120.412, 120.42, 31.60, 31.62
GROW_A = box(W, S, MIDE, N)
GROW_B = box(MIDW, S, E, N)


def _cleanup(conn: Connection) -> None:
    conn.execute(text("DELETE FROM unit_version WHERE code IN (:a, :b)"), {"a": A, "b": B})
    conn.execute(text("DELETE FROM unit_edit WHERE district_code = :d"), {"d": DISTRICT})
    conn.execute(text("DELETE FROM police_unit WHERE district_code = :d"), {"d": DISTRICT})
    conn.execute(text("DELETE FROM district WHERE code = :d"), {"d": DISTRICT})


@pytest.fixture
def committed_units(engine: Engine, metadata: MetaData, registry: Registry) -> Iterator[Engine]:
    def fill(conn: Connection) -> None:
        district = valid_row(
            registry.get("district"),
            code=DISTRICT,
            geom=MultiPolygon([box(120.3, 31.5, 120.5, 31.7)]),
        )
        insert_row(conn, metadata, "district", district)
        for code, shape in ((A, box(W, S, MIDW, N)), (B, box(MIDE, S, E, N))):
            row = valid_row(
                registry.get("police_unit"),
                code=code,
                level="policing_area",
                parent_code=None,
                district_code=DISTRICT,
                township_code=None,
                geom=MultiPolygon([shape]),
            )
            insert_row(conn, metadata, "police_unit", row)

    yield from committed(engine, _cleanup, fill)


def _edit(conn: Connection, registry: Registry, operation: Operation, tags: list[str]) -> Any:
    return unit_edit.apply_unit_edit(
        conn,
        registry,
        "police_unit",
        operation,
        actor="police",
        reason="并发测试",
        if_match=tags,
        options=Options(),
        tolerance_m=50.0,
    )


def _tags(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {code: unit_edit.current(conn, "police_unit", code).etag for code in (A, B)}


def _overlap_m2(engine: Engine) -> float:
    with engine.connect() as conn:
        value = conn.execute(
            text(
                """
                SELECT COALESCE(
                    sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 4549))), 0)
                FROM police_unit a JOIN police_unit b
                  ON a.code < b.code AND ST_Intersects(a.geom, b.geom)
                WHERE a.district_code = :d AND b.district_code = :d
                """
            ),
            {"d": DISTRICT},
        ).scalar_one()
    return float(value)


def test_second_officer_waits_and_then_sees_the_overlap(
    committed_units: Engine, registry: Registry
) -> None:
    engine = committed_units
    tags = _tags(engine)
    outcome = second_waits_for_first(  # the first holds the layer+district lock
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
        assert unit_edit.current(conn, "police_unit", A).geometry.equals(MultiPolygon([GROW_A]))
        assert unit_edit.current(conn, "police_unit", B).etag == tags[B]


def test_two_writers_with_one_etag_only_one_wins(
    committed_units: Engine, registry: Registry
) -> None:
    engine = committed_units
    tag = _tags(engine)[A]
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def officer(name: str) -> None:
        with engine.connect() as conn, conn.begin():
            barrier.wait(WAIT_S)
            try:
                outcomes.append(_edit(conn, registry, Update(A, box(W, S, MIDW, N)), [tag]))
            except Exception as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=officer, args=(n,)) for n in ("甲", "乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) == 2
    assert len(failures) == 1, outcomes
    assert isinstance(failures[0], PreconditionFailedError)
    with engine.connect() as conn:
        versions = unit_edit.history(conn, "police_unit", A)
    assert len(versions) == 2  # the state before and one new version, not two
