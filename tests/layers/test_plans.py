"""Plans on the small city without HTTP: proposals from the optimiser
(:func:`gridgov.layers.plans.create_from_proposal`) and the plan write path."""

from __future__ import annotations

import pytest
from shapely.geometry import box
from sqlalchemy import Connection, MetaData, text

from gridgov.errors import ConflictError
from gridgov.gis.grid_edit import EditConflictError, InvalidEditError, Options, Update
from gridgov.layers import grid_edit, plans
from gridgov.layers.registry import Registry
from tests.small_city import HOLE, MID, TOLERANCE, E, N, S, W, build_small_city

G1, G2, G3 = "320213001001001", "320213001001002", "320213001001003"
COMMUNITY = "320213001001"


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_small_city(connection, metadata, registry)


def plan_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM plan")).scalar_one())


def test_a_proposal_becomes_a_draft_plan_and_live_grids_stay(
    city: Connection, registry: Registry
) -> None:
    live_before = {v.code: (v.etag, v.geometry.wkb) for v in grid_edit.in_force(city, COMMUNITY)}
    west = box(W, S, 120.306, N).difference(HOLE)
    middle = box(120.306, S, 120.313, N)
    east = box(120.313, S, E, N)
    plan_id = plans.create_from_proposal(
        city,
        registry,
        name="优化方案",
        actor="optimiser",
        reason="均衡工作量",
        community_code=COMMUNITY,
        grids=[west, middle, east],
    )
    plan = plans.get(city, plan_id)
    assert (plan.status, plan.origin, plan.community_code) == ("draft", "proposal", COMMUNITY)
    found = {g.version.code: g for g in plans.grids(city, plan)}
    # today's codes go to the proposed grids overlapping them most; the rest is new
    assert set(found) == {G1, G2, G3}
    assert found[G1].version.geometry.equals(west)
    assert found[G2].version.geometry.equals(east)
    assert found[G3].version.geometry.equals(middle)
    assert {c: g.change for c, g in found.items()} == {
        G1: "changed",
        G2: "changed",
        G3: "created",
    }
    live_after = {v.code: (v.etag, v.geometry.wkb) for v in grid_edit.in_force(city, COMMUNITY)}
    assert live_after == live_before
    log = plans.edit_log(city, plan_id)
    assert [(e["operation"], e["actor"]) for e in log] == [("proposal", "optimiser")]
    # the plan is a plan like any other: it can be edited further through apply_edit
    result = grid_edit.apply_edit(
        city,
        registry,
        Update(G3, attrs={"name": "中片"}),
        actor="planner",
        reason="命名",
        if_match=[found[G3].version.etag],
        options=Options(),
        tolerance_m=TOLERANCE,
        target=plans.PlanTarget(plan_id),
    )
    assert result.versions[0].attrs["name"] == "中片"


@pytest.mark.parametrize(
    ("proposal", "error", "kind"),
    [
        ([box(W, S, 120.312, N), box(MID, S, E, N)], EditConflictError, "overlap"),
        ([box(W, S, MID, N).difference(HOLE), box(120.312, S, E, N)], EditConflictError, "gap"),
        ([box(W, S, MID, N), box(MID, S, 120.33, N)], InvalidEditError, "outside-community"),
    ],
)
def test_a_bad_proposal_is_refused_and_leaves_no_plan(
    city: Connection,
    registry: Registry,
    proposal: list[object],
    error: type[Exception],
    kind: str,
) -> None:
    with pytest.raises(error) as refused:
        plans.create_from_proposal(
            city,
            registry,
            name="x",
            actor="optimiser",
            reason="y",
            community_code=COMMUNITY,
            grids=proposal,  # type: ignore[arg-type]
        )
    assert refused.value.problems[0].kind == kind  # type: ignore[attr-defined]
    assert plan_count(city) == 0


def test_edits_into_a_submitted_plan_are_refused(city: Connection, registry: Registry) -> None:
    plan_id = plans.create(city, name="p", actor="a", reason="r", community_code=COMMUNITY)
    plans.submit(city, plan_id, "a")
    tag = plans.grid(city, plans.get(city, plan_id), G2).etag
    with pytest.raises(ConflictError, match="submitted"):
        grid_edit.apply_edit(
            city,
            registry,
            Update(G2, attrs={"name": "改"}),
            actor="a",
            reason="r",
            if_match=[tag],
            options=Options(),
            tolerance_m=TOLERANCE,
            target=plans.PlanTarget(plan_id),
        )
