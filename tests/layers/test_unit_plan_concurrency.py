"""Two police officers editing one unit plan at once, on real connections with committed
data: the plan's lock makes the second wait, then find its ETags stale (412), so the
plan never holds an edit made against a state it no longer has; live units stay."""

from __future__ import annotations

from typing import Any

from shapely.geometry import box
from sqlalchemy import Engine, text

from gridgov.errors import PreconditionFailedError
from gridgov.gis.grid_edit import MoveBoundary, Options
from gridgov.layers import plans, unit_edit, unit_plan_edit
from tests.layers.concurrency import second_waits_for_first
from tests.test_unit_plan_apply import EAST, WEST, E, S, W, committed_units

__all__ = ["committed_units"]  # the fixture, shared


def _move(conn: Any, plan_id: int, lat: float, tags: list[str]) -> Any:
    return unit_plan_edit.apply(
        conn,
        plan_id,
        MoveBoundary(WEST, EAST, box(W, S, E, lat)),
        actor="police",
        reason="并发测试",
        if_match=tags,
        options=Options(),
    )


def test_edits_of_one_unit_plan_are_serialised(committed_units: Engine) -> None:
    engine = committed_units
    with engine.begin() as conn:
        live = {c: unit_edit.current(conn, "police_unit", c).etag for c in (WEST, EAST)}
        plan_id = unit_plan_edit.create(
            conn, "police_unit", WEST, name="并发", reason="r", actor="police"
        )
        plan = plans.get(conn, plan_id)
        found = unit_plan_edit.members(conn, plan, unit_plan_edit.group_of_plan(conn, plan))
        tags = [found[c].etag for c in (WEST, EAST)]
    outcome = second_waits_for_first(  # the first holds the plan's lock
        engine,
        lambda first: _move(first, plan_id, 31.605, tags),
        lambda second: _move(second, plan_id, 31.615, tags),
    )
    assert isinstance(outcome.get("error"), PreconditionFailedError), outcome
    with engine.connect() as conn:
        plan = plans.get(conn, plan_id)
        found = unit_plan_edit.members(conn, plan, unit_plan_edit.group_of_plan(conn, plan))
        west = found[WEST].geometry
        assert west is not None
        assert west.bounds[3] == 31.605
        assert {c: unit_edit.current(conn, "police_unit", c).etag for c in (WEST, EAST)} == live
        edits = conn.execute(
            text("SELECT count(*) FROM plan_edit WHERE plan_id = :p"), {"p": plan_id}
        ).scalar_one()
        assert edits == 1
