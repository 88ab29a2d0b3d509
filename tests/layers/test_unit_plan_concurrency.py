"""Two police officers editing one unit plan at once, on real connections with committed
data: the plan's lock makes the second wait, then find its ETags stale (412), so the
plan never holds an edit made against a state it no longer has; live units stay."""

from __future__ import annotations

import threading
import time
from typing import Any

from shapely.geometry import box
from sqlalchemy import Engine, text

from gridgov.errors import PreconditionFailedError
from gridgov.gis.grid_edit import MoveBoundary, Options
from gridgov.layers import plans, unit_edit, unit_plan_edit
from tests.layers.test_grid_edit_concurrency import WAIT_S, _waiting_on_advisory_lock
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
    outcome: dict[str, Any] = {}
    with engine.connect() as first:
        transaction = first.begin()
        _move(first, plan_id, 31.605, tags)  # holds the plan's lock

        def second_officer() -> None:
            with engine.connect() as second, second.begin():
                try:
                    outcome["result"] = _move(second, plan_id, 31.615, tags)
                except Exception as exc:
                    outcome["error"] = exc

        thread = threading.Thread(target=second_officer)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not _waiting_on_advisory_lock(engine) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _waiting_on_advisory_lock(engine), "the second edit did not wait"
        assert thread.is_alive()
        transaction.commit()
    thread.join(WAIT_S)
    assert not thread.is_alive()
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
