"""``gridgov incidents`` on committed data (the CLI commits): import, explain, reassign."""

from __future__ import annotations

import codecs
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridgov.cli import app as cli
from tests.layers.test_grid_edit_concurrency import (
    MIDW,
    TOWNSHIP,
    A,
    B,
    E,
    N,
    S,
    W,
    committed_city,
)

__all__ = ["committed_city"]  # the fixture, shared
runner = CliRunner()
MIDDLE_OF_A = ((W + MIDW) / 2, (S + N) / 2)
NEAR_A_EAST = (MIDW - 0.001, (S + N) / 2)  # ~95 m inside A, west of its east edge


def _pieces_cut_by(engine: Engine) -> set[str]:
    """The transactions that last recorded which grids and units the pieces were cut from."""
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT xmin::text FROM grid_atom_state")).scalars())


def test_import_explain_and_reassign_after_a_redraw(committed_city: Engine, tmp_path: Path) -> None:
    engine = committed_city
    path = tmp_path / "events.csv"
    rows = [("CLI-1", *MIDDLE_OF_A), ("CLI-2", *NEAR_A_EAST)]
    now = datetime.now(UTC).isoformat()  # the grids are in force from their creation on
    path.write_text(
        "编号,经度,纬度,类别,来源,上报时间\n"
        + "".join(f"{i},{x},{y},矛盾纠纷,网格员上报,{now}\n" for i, x, y in rows),
        encoding="utf-8",
    )
    try:
        imported = runner.invoke(cli, ["incidents", "import", str(path), "--test"])
        assert imported.exit_code == 0, imported.output
        with engine.connect() as conn:
            ids: dict[str, int] = dict(
                conn.execute(
                    text("SELECT external_id, id FROM incident WHERE external_id LIKE 'CLI-%'")
                ).all()
            )
        explained = runner.invoke(cli, ["incidents", "explain", str(ids["CLI-2"]), "--test"])
        assert explained.exit_code == 0, explained.output
        facts = json.loads(explained.output[explained.output.index("{") :])
        assert (facts["codes"]["grid_code"], facts["method"]) == (A, "inside")
        assert facts["grid_version"]["code"] == A
        assert A in explained.output.splitlines()[0]  # the Chinese explanation comes first

        # The first run cuts the grid pieces; the second, nothing changed since, keeps them.
        for run in range(2):
            quiet = runner.invoke(cli, ["incidents", "reassign", "--all", "--test"])
            assert quiet.exit_code == 0, quiet.output
            assert "重新评估 (evaluated) 2 起事件，变更 (changed) 0 起" in quiet.output
            if run == 0:
                pieces = _pieces_cut_by(engine)
        assert _pieces_cut_by(engine) == pieces

        # B takes A's eastern strip (a redraw outside the editor): CLI-2 moves, CLI-1 stays.
        with engine.begin() as conn:
            for code, shape in ((A, box(W, S, MIDW - 0.002, N)), (B, box(MIDW - 0.002, S, E, N))):
                conn.execute(
                    text(
                        "UPDATE grid SET geom = ST_GeomFromText(:g, 4490), "
                        "updated_at = clock_timestamp() WHERE code = :c"
                    ),
                    {"g": MultiPolygon([shape]).wkt, "c": code},
                )
        moved = runner.invoke(cli, ["incidents", "reassign", "--test"], env={"COLUMNS": "200"})
        assert moved.exit_code == 0, moved.output
        # Both were in the changed grid A, so both are evaluated again; one moved.
        assert "重新评估 (evaluated) 2 起事件，变更 (changed) 1 起" in moved.output
        assert f"{A} │ {B}" in moved.output  # the table of moves: from A to B
        assert _pieces_cut_by(engine) != pieces  # cut again for the new grids
        with engine.connect() as conn:
            codes: dict[str, str] = dict(
                conn.execute(
                    text("SELECT external_id, grid_code FROM incident WHERE id = ANY(:ids)"),
                    {"ids": list(ids.values())},
                ).all()
            )
        assert codes == {"CLI-1": A, "CLI-2": B}
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE township_code = :t"), {"t": TOWNSHIP})


def test_the_progress_bar_knows_how_many_rows_are_coming(tmp_path: Path) -> None:
    from openpyxl import Workbook

    from gridgov.cli.incidents import _count_rows

    csv_file = tmp_path / "a.csv"
    csv_file.write_text(
        "编号,经度\n" + "".join(f"{i},120.3\n" for i in range(2500)), encoding="utf-8"
    )
    # A feature cut between two of the 1 MiB blocks the counter reads is counted once.
    padding = " " * ((1 << 20) - len('{"type": "FeatureCollection", "features": [{"type": "Feat'))
    features = ", ".join(
        '{"type": "Feature", "geometry": null, "properties": {}}' for _ in range(70)
    )
    geojson = tmp_path / "a.geojson"
    geojson.write_text(
        '{"type": "FeatureCollection", "features": [' + padding + features + "]}", encoding="utf-8"
    )
    first = geojson.read_bytes().index(b'"Feature"', 1 << 19)
    assert first < 1 << 20 < first + len(b'"Feature"')
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for i in range(31):
        sheet.append([i, 120.3])
    book.save(tmp_path / "a.xlsx")
    march = book.create_sheet("3月")
    for i in range(11):
        march.append([i, 120.3])
    book.save(tmp_path / "b.xlsx")
    assert _count_rows(tmp_path / "b.xlsx", "3月") == 10
    assert _count_rows(tmp_path / "b.xlsx", "2") == 10
    assert _count_rows(tmp_path / "b.xlsx") is None  # the import picks a sheet by its header
    assert _count_rows(csv_file) == 2500
    assert _count_rows(geojson) == 70
    assert _count_rows(tmp_path / "a.xlsx") == 30
    assert _count_rows(tmp_path / "a.dat") is None
    assert _count_rows(tmp_path / "missing.csv") is None  # the import names it
    # Excel's "Unicode 文本": UTF-16 with a BOM, where a line end is two bytes and 上
    # (U+4E0A) holds a newline byte.
    for codec in ("utf-16-le", "utf-16-be"):
        unicode_text = tmp_path / f"{codec}.txt"
        bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
        lines = "编号\t描述\n" + "".join(f"{i}\t楼上噪音\n" for i in range(40))
        unicode_text.write_bytes(bom + lines.encode(codec))
        assert _count_rows(unicode_text) == 40


@pytest.mark.parametrize("command", [("incidents", "import"), ("layer", "import", "incident")])
def test_a_dry_run_reports_the_import_and_keeps_nothing(
    committed_city: Engine, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """``--dry-run`` (试导入) checks, assigns and writes, then rolls back: the counts and
    the rejects file are the import's own, the database is as before. ``gridgov layer
    import incident`` is the same import (the layer import stored incidents unassigned)."""
    engine = committed_city
    path = tmp_path / "events.csv"
    now = datetime.now(UTC).isoformat()
    rows = [("DRY-1", *MIDDLE_OF_A, "矛盾纠纷"), ("DRY-2", *NEAR_A_EAST, "外星人")]
    path.write_text(
        "编号,经度,纬度,类别,来源,上报时间\n"
        + "".join(f"{i},{x},{y},{c},网格员上报,{now}\n" for i, x, y, c in rows),
        encoding="utf-8",
    )
    rejects = tmp_path / "events.rejects.csv"

    def stored() -> int:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM incident WHERE external_id LIKE 'DRY-%'")
                ).scalar_one()
            )

    args = [*command, str(path), "--skip-invalid", "--test"]
    try:
        trial = runner.invoke(cli, [*args, "--dry-run"], env={"COLUMNS": "200"})
        assert trial.exit_code == 0, trial.output
        assert "试导入 (dry run)：数据库未作任何改动" in trial.output
        assert "将写入 (would write) 1，" in trial.output
        assert "拒绝 (rejected) 1" in trial.output
        assert "'inside': 1" in trial.output
        assert "坐标系 (CRS) wgs84" in trial.output  # none given: a table is WGS84
        assert "DRY-2" in rejects.read_text(encoding="utf-8-sig")
        assert stored() == 0
        rejects.unlink()
        # A refused dry run refuses as the import does.
        refused = runner.invoke(cli, [*args[:-2], "--test", "--dry-run"])
        assert refused.exit_code == 1, refused.output
        assert "按原因 (by reason): {'choice': 1}" in refused.output
        assert stored() == 0

        imported = runner.invoke(cli, args, env={"COLUMNS": "200"})
        assert imported.exit_code == 0, imported.output
        assert "写入 (written) 1，" in imported.output
        assert "试导入" not in imported.output
        assert rejects.exists()
        assert stored() == 1
        with engine.connect() as conn:
            placed = conn.execute(
                text("SELECT grid_code, assign_method FROM incident WHERE external_id = 'DRY-1'")
            ).one()
        assert tuple(placed) == (A, "inside")
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE external_id LIKE 'DRY-%'"))


def test_the_layer_import_never_replaces_incidents(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("编号,经度,纬度,类别,来源,上报时间\n", encoding="utf-8")
    refused = runner.invoke(cli, ["layer", "import", "incident", str(path), "--mode", "replace"])
    assert refused.exit_code == 2, refused.output
    assert "事件只能追加导入，不能整体替换" in refused.output
