"""``gridgov plan`` on committed data (the CLI commits): list, show, export, publish."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyogrio
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridgov.cli import app as cli
from gridgov.gis.grid_edit import Options, Update
from gridgov.layers import grid_edit, plans
from gridgov.layers.registry import Registry
from tests.layers.test_grid_edit_concurrency import COMMUNITY, A, committed_city

__all__ = ["committed_city"]  # the fixture, shared
runner = CliRunner()


def test_plan_cli_lists_shows_exports_and_publishes(
    committed_city: Engine, registry: Registry, tmp_path: Path
) -> None:
    engine = committed_city
    with engine.begin() as conn:
        plan_id = plans.create(
            conn, name="改名方案", actor="p", reason="r", community_code=COMMUNITY
        )
        plan = plans.get(conn, plan_id)
        grid_edit.apply_edit(
            conn,
            registry,
            Update(A, attrs={"name": "西片"}),
            actor="p",
            reason="命名",
            if_match=[plans.grid(conn, plan, A).etag],
            options=Options(),
            tolerance_m=50.0,
            target=plans.PlanTarget(plan_id),
        )
    try:
        listed = runner.invoke(cli, ["plan", "list", "--test"])
        assert listed.exit_code == 0, listed.output
        assert "改名方案" in listed.output
        shown = runner.invoke(cli, ["plan", "show", str(plan_id), "--json", "--test"])
        assert shown.exit_code == 0, shown.output
        body = json.loads(shown.output)
        assert {g["code"]: g["change"] for g in body["grids"]}[A] == "changed"
        out = tmp_path / "plan.gpkg"
        exported = runner.invoke(cli, ["plan", "export", str(plan_id), str(out), "--test"])
        assert exported.exit_code == 0, exported.output
        assert {name for name, _ in pyogrio.list_layers(out)} == {
            "plan_grids",
            "today_grids",
            "moves",
        }
        today = datetime.now(plans.LOCAL_TIME).date().isoformat()
        args = ["plan", "publish", str(plan_id), "--date", today, "--actor", "ops", "--test"]
        draft = runner.invoke(cli, args)
        assert draft.exit_code == 1  # not approved
        assert "draft" in draft.output
        with engine.begin() as conn:
            plans.submit(conn, plan_id, "p")
            plans.approve(conn, plan_id, "reviewer")
        published = runner.invoke(cli, args)
        assert published.exit_code == 0, published.output
        with engine.connect() as conn:
            assert grid_edit.current(conn, A).attrs["name"] == "西片"
            assert plans.get(conn, plan_id).status == "published"
            row = conn.execute(
                text("SELECT actor, operation FROM grid_edit WHERE community_code = :c"),
                {"c": COMMUNITY},
            ).one()
            assert (row.actor, row.operation) == ("ops", "publish")
        missing = runner.invoke(cli, ["plan", "show", "999999999", "--test"])
        assert missing.exit_code == 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM plan WHERE id = :id"), {"id": plan_id})
