"""Batch import of incidents: formats, CRS, encodings, idempotence and every bad row."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from openpyxl import Workbook
from sqlalchemy import Connection, MetaData, text
from typer.testing import CliRunner

from gridgov.cli import app
from gridgov.gis.coords import wgs84_to_gcj02
from gridgov.layers import incidents
from gridgov.layers.incident_import import import_incidents
from gridgov.layers.io.errors import ImportRefusedError
from gridgov.layers.registry import Registry
from tests.small_city import TOLERANCE, build_small_city

HEADER = ["编号", "经度", "纬度", "类别", "来源", "上报时间", "描述"]


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_small_city(connection, metadata, registry)


def write_csv(path: Path, rows: list[list[object]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def good_rows(n: int, seed: int = 1) -> tuple[list[list[object]], np.ndarray, np.ndarray]:
    """Rows in GCJ-02 (as 高德 gives them) and their WGS84 truth."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(120.305, 120.319, n)  # east of the hole in grid …001
    lat = rng.uniform(31.561, 31.579, n)
    gx, gy = wgs84_to_gcj02(lon, lat)
    rows: list[list[object]] = [
        [
            f"GCJ-{i}",
            f"{gx[i]:.9f}",
            f"{gy[i]:.9f}",
            "矛盾纠纷",
            "12345热线",
            "2025-05-01 08:30:00",
            "邻里噪声纠纷",
        ]
        for i in range(n)
    ]
    return rows, lon, lat


def count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM incident")).scalar_one())


def run(conn: Connection, registry: Registry, path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return import_incidents(conn, registry, path, str(kw.pop("crs", "gcj02")), TOLERANCE, **kw)  # type: ignore[arg-type]


def test_gcj02_csv_with_chinese_headers_lands_on_the_truth(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    rows, lon, lat = good_rows(400)
    report = run(city, registry, write_csv(tmp_path / "events.csv", rows))
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (400, 400, 0)
    stored = city.execute(
        text(
            "SELECT external_id, ST_X(geom), ST_Y(geom), category, source, grid_code, "
            "assign_method "
            "FROM incident ORDER BY id"
        )
    ).all()
    by_id = {r[0]: r for r in stored}
    for i in range(400):
        r = by_id[f"GCJ-{i}"]
        # 1e-7° is about 1 cm: the GCJ-02 inverse is exact to well under 0.05 m.
        assert abs(r[1] - lon[i]) < 5e-7
        assert abs(r[2] - lat[i]) < 5e-7
        assert (r[3], r[4]) == ("dispute", "hotline")
        assert r[5] == ("320213001001001" if lon[i] < 120.31 else "320213001001002")
    assert report.by_method.get("inside", 0) + report.by_method.get("nearest", 0) == 400
    # The small city's pieces are fresh: most rows take the fast path, the rest (near the
    # hole, the shared edge or the policing-area line) the exact engine, and both agree
    # with the truth above.
    assert report.assigned_fast > 300
    assert report.assigned_fast + report.assigned_exact == 400
    # No history row is stored per imported incident; the creation is still shown.
    assert city.execute(text("SELECT count(*) FROM incident_transition")).scalar_one() == 0
    some = city.execute(text("SELECT id, reported_at FROM incident LIMIT 1")).one()
    assert [(h["to_status"], h["at"]) for h in incidents.history(city, some.id)] == [
        ("reported", some.reported_at)
    ]


def test_reimporting_the_same_file_changes_nothing(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "events.csv", good_rows(50)[0])
    run(city, registry, path)
    snapshot = city.execute(
        text("SELECT id, grid_code, updated_at FROM incident ORDER BY id")
    ).all()
    again = run(city, registry, path)
    assert (again.rows_written, again.rows_unchanged) == (0, 50)
    assert (
        city.execute(text("SELECT id, grid_code, updated_at FROM incident ORDER BY id")).all()
        == snapshot
    )


BAD: list[tuple[list[object], str]] = [
    (["B1", "nan", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "nan"),
    (["B2", "31.57", "120.305", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "swapped"),
    (["B3", "2.35", "48.85", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "outside-china"),
    (["B4", "120.305", "31.57", "外星人", "12345热线", "2025-05-01 08:00", ""], "choice"),
    (["B5", "120.305", "31.57", "矛盾纠纷", "12345热线", "昨天下午", ""], "type"),
    (["B6", "121.50", "31.20", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "outside-city"),
    (["B7", "120.305", "31.57", "矛盾纠纷", "", "2025-05-01 08:00", ""], "required"),
    (["GCJ-0", "120.305", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "duplicate"),
]


def test_every_bad_row_is_named_and_nothing_is_written(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    rows = good_rows(5)[0] + [row for row, _ in BAD]
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ImportRefusedError) as caught:
        run(city, registry, path)
    report = caught.value.report
    kinds = {p.row: p.kind for p in report.problems}
    for n, (_, kind) in enumerate(BAD, start=6):
        assert kinds.get(n) == kind, (n, kind, kinds)
    assert report.rows_rejected == len(BAD)
    assert count(city) == 0


def test_skip_invalid_writes_good_rows_and_a_rejects_file(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    rows = good_rows(5)[0] + [row for row, _ in BAD]
    path = write_csv(tmp_path / "bad.csv", rows)
    rejects = tmp_path / "bad.rejects.csv"
    report = run(city, registry, path, skip_invalid=True, rejects_path=rejects)
    assert report.rows_written == 5
    assert count(city) == 5
    with rejects.open(encoding="utf-8-sig") as handle:
        listed = list(csv.DictReader(handle))
    assert [int(r["row"]) for r in listed] == list(range(6, 6 + len(BAD)))
    assert all(r["reason_zh"] for r in listed)
    assert listed[0]["编号"] == "B1"


def test_gbk_csv_is_detected(city: Connection, registry: Registry, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gbk.csv", good_rows(20)[0], encoding="gbk")
    report = run(city, registry, path)
    assert report.encoding == "gb18030"
    assert report.rows_written == 20
    assert (
        city.execute(text("SELECT DISTINCT description FROM incident")).scalar_one()
        == "邻里噪声纠纷"
    )


def test_excel_and_geojson_in_wgs84(city: Connection, registry: Registry, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["external_id", "lon", "lat", "category", "source", "reported_at"])
    sheet.append(
        ["X1", 120.305, 31.575, "safety_hazard", "grid_worker", "2025-06-01T10:00:00+08:00"]
    )
    book.save(tmp_path / "e.xlsx")
    assert run(city, registry, tmp_path / "e.xlsx", crs="wgs84").rows_written == 1
    features = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [120.315, 31.565]},
                "properties": {
                    "external_id": "J1",
                    "category": "public_order",
                    "source": "police",
                    "reported_at": "2025-06-02T22:00:00+08:00",
                },
            }
        ],
    }
    (tmp_path / "e.geojson").write_text(json.dumps(features), encoding="utf-8")
    assert run(city, registry, tmp_path / "e.geojson", crs="wgs84").rows_written == 1
    codes: dict[str, str] = dict(
        city.execute(text("SELECT external_id, grid_code FROM incident")).all()
    )
    assert codes == {"X1": "320213001001001", "J1": "320213001001002"}


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = tmp_path / "events.txt"
    unknown.write_text("x", encoding="utf-8")
    result = runner.invoke(app, ["incidents", "import", str(unknown), "--test"])
    assert result.exit_code == 2
    assert "不支持的文件类型" in result.output
    # The test database's committed tables are empty, so every row is outside the city.
    path = write_csv(tmp_path / "events.csv", good_rows(3)[0])
    result = runner.invoke(app, ["incidents", "import", str(path), "--crs", "gcj02", "--test"])
    assert result.exit_code == 1, result.output
    assert "outside" in result.output


def _schema_of_incident(conn: Connection) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    indexes = conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incident' ORDER BY 1")
    ).all()
    keys = conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'incident'::regclass ORDER BY 1"
        )
    ).all()
    return [tuple(r) for r in indexes], [tuple(r) for r in keys]


def test_a_first_load_rebuilds_indexes_and_keys_exactly(
    city: Connection, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a million rows into an empty table take (indexes and foreign keys dropped
    and created again), taken here by a small file: same schema after, same rows."""
    from gridgov.layers import assignment

    monkeypatch.setattr(assignment, "PARALLEL_MIN_ROWS", 10)
    before = _schema_of_incident(city)
    rows, lon, _lat = good_rows(60)
    report = run(city, registry, write_csv(tmp_path / "first.csv", rows))
    assert report.rows_written == 60
    assert _schema_of_incident(city) == before
    stored: dict[str, str] = dict(
        city.execute(text("SELECT external_id, grid_code FROM incident")).all()
    )
    for i in range(60):
        assert stored[f"GCJ-{i}"] == ("320213001001001" if lon[i] < 120.31 else "320213001001002")
    # The layer's statement trigger is back on, and the import did its work once.
    generation = city.execute(
        text("SELECT generation FROM layer_state WHERE layer = 'incident'")
    ).scalar_one()
    city.execute(text("DELETE FROM incident WHERE external_id = 'GCJ-0'"))
    assert (
        city.execute(
            text("SELECT generation FROM layer_state WHERE layer = 'incident'")
        ).scalar_one()
        == generation + 1
    )
    assert city.execute(text("SELECT count(*) FROM incident_agg_dirty_day")).scalar_one() >= 1


@pytest.mark.parametrize("first_load", [True, False])
def test_import_keeps_the_point_clusters_exact(
    city: Connection,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first_load: bool,
) -> None:
    """The import skips the cluster trigger and adds the cells itself, from the staged
    rows: afterwards ``tile_cluster`` still equals a GROUP BY over every incident, and
    the trigger is back on for the next write."""
    from gridgov.layers import assignment
    from tests.api.ogc.test_clusters import assert_same, cluster_zooms, expected_cells, stored_cells

    zooms = cluster_zooms(registry)
    # The layer's first cells (added plainly), then rows already there (an incremental
    # import adds to their cells).
    assert stored_cells(city) == {}
    run(city, registry, write_csv(tmp_path / "old.csv", good_rows(40, seed=3)[0]))
    assert stored_cells(city)
    assert_same(stored_cells(city), expected_cells(city, zooms))
    monkeypatch.setattr(assignment, "PARALLEL_MIN_ROWS", 10 if first_load else 10**9)
    rows, _lon, _lat = good_rows(300, seed=4)
    rows = [[f"NEW-{i}", *row[1:]] for i, row in enumerate(rows)]
    report = run(city, registry, write_csv(tmp_path / "new.csv", rows))
    assert report.rows_written == 300
    assert count(city) == 340
    assert_same(stored_cells(city), expected_cells(city, zooms))
    enabled = city.execute(
        text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'incident'::regclass "
            "AND tgname LIKE 'gridgov_incident_%' AND tgenabled = 'D'"
        )
    ).all()
    assert enabled == []
    city.execute(text("DELETE FROM incident WHERE external_id LIKE 'NEW-1%'"))
    assert_same(stored_cells(city), expected_cells(city, zooms))


def test_rows_are_stored_near_their_neighbours_not_in_file_order(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    """A file that alternates between two places (as a city's reports do, in time order)
    is stored place by place: the rows of one map tile share heap pages."""
    rng = np.random.default_rng(7)
    west = (120.3060, 31.5650)
    east = (120.3180, 31.5750)
    rows: list[list[object]] = []
    for i in range(200):
        lon0, lat0 = west if i % 2 == 0 else east
        rows.append(
            [
                f"Z-{i}",
                f"{lon0 + rng.uniform(0, 0.0005):.9f}",
                f"{lat0 + rng.uniform(0, 0.0005):.9f}",
                "矛盾纠纷",
                "12345热线",
                "2025-05-01 08:30:00",
                "",
            ]
        )
    report = run(city, registry, write_csv(tmp_path / "alternating.csv", rows), crs="wgs84")
    assert report.rows_written == 200
    stored = city.execute(
        text("SELECT ST_X(geom) < 120.312 AS west FROM incident ORDER BY ctid")
    ).scalars()
    places = list(stored)
    assert sum(places) == 100
    switches = sum(a != b for a, b in itertools.pairwise(places))
    assert switches <= 8, switches  # in file order: 199


def test_text_with_tabs_newlines_and_backslashes_is_stored_as_written(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    """The stage is fed COPY text built by hand: every escape must round-trip."""
    rows, _lon, _lat = good_rows(3, seed=5)
    texts = ["tab\there, back\\slash \\N", "line\nbreak\r\nand \\t", '逗号,引号"，空格  ']
    for row, description in zip(rows, texts, strict=True):
        row[0] = f"{row[0]}\\x\t"  # the external id too (stripped: trailing tab)
        row[6] = description
    run(city, registry, write_csv(tmp_path / "escapes.csv", rows))
    stored = {
        r[0]: r[1] for r in city.execute(text("SELECT external_id, description FROM incident"))
    }
    assert stored == {f"GCJ-{i}\\x": description.strip() for i, description in enumerate(texts)}


def test_a_copy_the_database_refuses_fails_the_import_without_hanging(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    """The stage is fed by a background COPY: when PostgreSQL refuses it (a NUL byte,
    which text columns cannot hold), the error reaches the caller and nothing is
    written."""
    import psycopg

    rows, _lon, _lat = good_rows(5, seed=6)
    rows[3][6] = "nul\x00byte"
    with pytest.raises(psycopg.Error):
        run(city, registry, write_csv(tmp_path / "nul.csv", rows))


def test_times_are_read_by_their_shape_as_the_pattern_says() -> None:
    """The ISO check runs once per shape of the text (digits masked): every form the
    pattern accepts, with and without a zone, and near misses and long junk refused."""
    import pandas as pd

    from gridgov.layers.incident_import import _iso_shapes

    values = pd.Series(
        [
            "2025-05-01",
            "2025-05-01 08:30",
            "2025-05-01T08:30:00",
            "2025-05-01T08:30:00.123456",
            "2025-05-01T08:30:00Z",
            "2025-05-01T08:30:00.123456+08:00",
            "2025-5-01",
            "2025-05-01T08:30:00+0800",
            "２０２５-05-01",  # full-width digits: the regex's \d accepts them too
            "",
            "x" * 5000,
            "2025-05-01T08:30:00.1234567",
        ]
    )
    iso, zone = _iso_shapes(values)
    assert iso.tolist() == [True] * 6 + [False, False, True, False, False, False]
    assert zone.tolist() == [False] * 4 + [True, True] + [False] * 6
