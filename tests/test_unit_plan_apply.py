"""Unit plans published for a later day take force when it comes, on committed data:
``gridgov plan apply-due`` and the server's own poll write them, once, with an audit row."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Connection, Engine, MetaData, text
from typer.testing import CliRunner

from gridgov.api.app import create_app
from gridgov.cli import app as cli
from gridgov.gis.grid_edit import MoveBoundary, Options
from gridgov.layers import plans, unit_edit, unit_plan_edit
from gridgov.layers.registry import Registry
from gridgov.settings import Settings
from tests.factories import insert_row, valid_row
from tests.layers.concurrency import committed

DISTRICT, TOWNSHIP = "320297", "320297001"
W, E, S, N, MID = 120.40, 120.42, 31.60, 31.62, 31.61
WEST, EAST = "JWQ-APPLY-S", "JWQ-APPLY-N"
runner = CliRunner()


def _cleanup(conn: Connection) -> None:
    conn.execute(text("DELETE FROM plan WHERE district_code = :d"), {"d": DISTRICT})
    conn.execute(text("DELETE FROM unit_version WHERE code IN (:a, :b)"), {"a": WEST, "b": EAST})
    conn.execute(text("DELETE FROM unit_edit WHERE district_code = :d"), {"d": DISTRICT})
    conn.execute(text("DELETE FROM police_unit WHERE district_code = :d"), {"d": DISTRICT})
    conn.execute(text("DELETE FROM township WHERE code = :t"), {"t": TOWNSHIP})
    conn.execute(text("DELETE FROM district WHERE code = :d"), {"d": DISTRICT})


@pytest.fixture
def committed_units(engine: Engine, metadata: MetaData, registry: Registry) -> Iterator[Engine]:
    def fill(conn: Connection) -> None:
        def add(layer: str, **kw: object) -> None:
            insert_row(conn, metadata, layer, valid_row(registry.get(layer), **kw))

        add("district", code=DISTRICT, geom=MultiPolygon([box(W, S, E, N)]))
        add("township", code=TOWNSHIP, district_code=DISTRICT, geom=MultiPolygon([box(W, S, E, N)]))
        for code, lats in ((WEST, (S, MID)), (EAST, (MID, N))):
            add(
                "police_unit",
                code=code,
                level="policing_area",
                parent_code=None,
                district_code=DISTRICT,
                township_code=TOWNSHIP,
                geom=MultiPolygon([box(W, lats[0], E, lats[1])]),
            )

    yield from committed(engine, _cleanup, fill)


def _published_for_later(engine: Engine, registry: Registry, lat: float) -> int:
    """A plan moving the shared boundary to ``lat``, published for the day after tomorrow,
    whose moment is then made to have passed (as if the days went by)."""
    with engine.begin() as conn:
        plan_id = unit_plan_edit.create(
            conn, "police_unit", WEST, name="边界南移", reason="巡逻调整", actor="police"
        )
        plan = plans.get(conn, plan_id)
        tags = [
            unit_plan_edit.members(conn, plan, unit_plan_edit.group_of_plan(conn, plan))[c].etag
            for c in (WEST, EAST)
        ]
        unit_plan_edit.apply(
            conn,
            plan_id,
            MoveBoundary(WEST, EAST, box(W, S, E, lat)),
            actor="police",
            reason="南移",
            if_match=tags,
            options=Options(),
        )
        plans.submit(conn, plan_id, "police")
        plans.approve(conn, plan_id, "district")
        moment = plans.effective_moment(date.today() + timedelta(days=2))
        plans.publish(
            conn,
            registry,
            plan_id,
            actor="district",
            effective_from=moment,
            tolerance_m=50.0,
        )
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE plan SET effective_from = clock_timestamp() - interval '1 second' "
                "WHERE id = :p"
            ),
            {"p": plan_id},
        )
    return plan_id


def _west_top(engine: Engine) -> float:
    with engine.connect() as conn:
        return float(unit_edit.current(conn, "police_unit", WEST).geometry.bounds[3])


def _audit_rows(engine: Engine, plan_id: int) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT outcome FROM audit_log WHERE action = 'plan_apply' AND target = :t"),
            {"t": f"plan/{plan_id}"},
        )
        return [str(r) for r in rows.scalars()]


def test_apply_due_from_the_command_line(committed_units: Engine, registry: Registry) -> None:
    plan_id = _published_for_later(committed_units, registry, 31.605)
    assert _west_top(committed_units) == pytest.approx(MID)
    applied = runner.invoke(cli, ["plan", "apply-due", "--test"])
    assert applied.exit_code == 0, applied.output
    assert f"方案 {plan_id} 已施行" in applied.output
    assert _west_top(committed_units) == pytest.approx(31.605)
    assert _audit_rows(committed_units, plan_id) == ["ok"]
    again = runner.invoke(cli, ["plan", "apply-due", "--test"])
    assert again.exit_code == 0, again.output
    assert "没有到期" in again.output
    assert _audit_rows(committed_units, plan_id) == ["ok"]


def test_the_server_applies_due_plans_by_itself(
    committed_units: Engine, registry: Registry, settings: Settings
) -> None:
    plan_id = _published_for_later(committed_units, registry, 31.615)
    app = create_app(settings.model_copy(update={"warm_up": False, "unit_plan_poll_s": 0.2}))
    with TestClient(app):
        for _ in range(150):  # the first round runs at start-up; allow for a busy machine
            if _audit_rows(committed_units, plan_id):
                break
            time.sleep(0.2)
    assert _audit_rows(committed_units, plan_id) == ["ok"]
    assert _west_top(committed_units) == pytest.approx(31.615)
