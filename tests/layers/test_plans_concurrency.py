"""Two planners editing one plan at once, on real connections with committed data (the
community of ``test_grid_edit_concurrency``): the per-plan lock makes the second wait,
then see the first one's edit, so the plan never holds an overlap; live grids stay."""

from __future__ import annotations

from typing import Any

from shapely.geometry import MultiPolygon
from sqlalchemy import Connection, Engine, text

from gridgov.gis.grid_edit import EditConflictError, Options, Replace
from gridgov.layers import grid_edit, plans
from gridgov.layers.registry import Registry
from tests.layers.concurrency import second_waits_for_first
from tests.layers.test_grid_edit_concurrency import (
    COMMUNITY,
    GROW_A,
    GROW_B,
    A,
    B,
    committed_city,
)

__all__ = ["committed_city"]  # the fixture, shared


def _edit(conn: Connection, registry: Registry, plan_id: int, op: Replace, tag: str) -> Any:
    return grid_edit.apply_edit(
        conn,
        registry,
        op,
        actor="planner",
        reason="并发测试",
        if_match=[tag],
        options=Options(),
        tolerance_m=50.0,
        target=plans.PlanTarget(plan_id),
    )


def test_edits_of_one_plan_are_serialised(committed_city: Engine, registry: Registry) -> None:
    engine = committed_city
    with engine.begin() as conn:
        live = {code: grid_edit.current(conn, code).etag for code in (A, B)}
        plan_id = plans.create(conn, name="并发", actor="p", reason="r", community_code=COMMUNITY)
        plan = plans.get(conn, plan_id)
        tags = {code: plans.grid(conn, plan, code).etag for code in (A, B)}
    try:
        outcome = second_waits_for_first(  # the first holds the plan lock
            engine,
            lambda first: _edit(first, registry, plan_id, Replace(A, GROW_A), tags[A]),
            lambda second: _edit(second, registry, plan_id, Replace(B, GROW_B), tags[B]),
        )
        error = outcome.get("error")
        assert isinstance(error, EditConflictError), outcome
        assert error.problems[0].kind == "overlap"
        with engine.connect() as conn:
            plan = plans.get(conn, plan_id)
            assert plans.grid(conn, plan, A).geometry.equals(MultiPolygon([GROW_A]))
            assert plans.grid(conn, plan, B).etag == tags[B]
            assert {c: grid_edit.current(conn, c).etag for c in (A, B)} == live
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM plan WHERE id = :id"), {"id": plan_id})
