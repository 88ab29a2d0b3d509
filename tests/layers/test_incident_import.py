"""Batch import of incidents: formats, CRS, encodings, idempotence and every bad row."""

from __future__ import annotations

import codecs
import csv
import itertools
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from openpyxl import Workbook
from pyproj import Transformer
from sqlalchemy import Connection, MetaData, text
from typer.testing import CliRunner

from gridgov.cli import app
from gridgov.gis.coords import wgs84_to_gcj02
from gridgov.layers import incident_import, incidents
from gridgov.layers.incident_import import IncidentImportReport, import_incidents
from gridgov.layers.io.errors import ImportRefusedError, ImportUsageError, UnreadableFileError
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


def test_a_corrected_row_is_named_never_counted_unchanged_nor_written_over(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    """A row whose external id is stored with other values was counted "unchanged" while
    the stored incident kept its old values: the correction was lost without a word."""
    rows, _, _ = good_rows(6)
    path = write_csv(tmp_path / "events.csv", rows)
    run(city, registry, path)
    before = city.execute(text("SELECT * FROM incident ORDER BY id")).all()
    rows[1][3] = "安全隐患"  # category
    rows[2][6] = "补充：已联系物业"  # description
    rows[4][1] = f"{float(str(rows[4][1])) + 1e-4:.9f}"  # about 10 m east
    rows[4][5] = "2025-05-01 09:00"  # and the report time
    write_csv(path, rows)
    with pytest.raises(ImportRefusedError) as caught:
        run(city, registry, path)
    problems = caught.value.report.problems
    assert [(p.row, p.field, p.kind) for p in problems] == [
        (2, "external_id", "stored-otherwise"),
        (3, "external_id", "stored-otherwise"),
        (5, "external_id", "stored-otherwise"),
    ]
    assert "其类别与本行不同" in problems[0].reason_zh
    assert "其描述与本行不同" in problems[1].reason_zh
    assert "其位置、上报时间与本行不同" in problems[2].reason_zh
    assert "GCJ-1" in problems[0].reason_zh
    report = run(city, registry, path, skip_invalid=True)
    assert (report.rows_written, report.rows_unchanged, report.rows_rejected) == (0, 3, 3)
    assert city.execute(text("SELECT * FROM incident ORDER BY id")).all() == before


BAD: list[tuple[list[object], str]] = [
    (["B1", "nan", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "nan"),
    (["B2", "31.57", "120.305", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "swapped"),
    (["B3", "2.35", "48.85", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "outside-china"),
    (["B4", "120.305", "31.57", "外星人", "12345热线", "2025-05-01 08:00", ""], "choice"),
    (["B5", "120.305", "31.57", "矛盾纠纷", "12345热线", "昨天下午", ""], "type"),
    (["B6", "121.50", "31.20", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "outside-city"),
    (["B7", "120.305", "31.57", "矛盾纠纷", "", "2025-05-01 08:00", ""], "required"),
    (["GCJ-0", "120.305", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "duplicate"),
    (["B" * 101, "120.305", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""], "too-long"),
    (
        ["B10", "120.305", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", "长" * 4001],
        "too-long",
    ),
    (
        ["B11", "120.305", "31.57", "矛盾纠纷", "12345热线", "2052-05-01 08:00", ""],
        "reported-in-future",
    ),
    (
        ["B13", "120.305", "31.57", "矛盾纠纷", "12345热线", "0025-05-01 08:00", ""],
        "reported-too-early",
    ),
    (
        ["B14\u200b", "120.305", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""],
        "odd-external-id",
    ),
    (
        ["B8", "１２０.３０５", "31.57", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""],
        "not-a-number",
    ),
    (
        ["B9", "120°18′", "北纬31.5", "矛盾纠纷", "12345热线", "2025-05-01 08:00", ""],
        "not-a-number",
    ),
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
    words = next(p.reason_zh for p in report.problems if p.row == 5 + len(BAD))
    assert "经纬度不是数字：“120°18′”、“北纬31.5”" in words


def test_skip_invalid_writes_good_rows_and_a_rejects_file(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    twice_wrong: list[object] = ["B12", "120.305", "31.57", "外星人", "12345热线", "昨天下午", ""]
    rows = good_rows(5)[0] + [row for row, _ in BAD] + [twice_wrong]
    path = write_csv(tmp_path / "bad.csv", rows)
    rejects = tmp_path / "bad.rejects.csv"
    report = run(city, registry, path, skip_invalid=True, rejects_path=rejects)
    assert report.rows_written == 5
    assert count(city) == 5
    with rejects.open(encoding="utf-8-sig") as handle:
        listed = list(csv.DictReader(handle))
    # One line per row, all its reasons in it: the file, corrected, imports again.
    assert [int(r["row"]) for r in listed] == list(range(6, 7 + len(BAD)))
    assert all(r["reasons_zh"] and r["reasons_en"] for r in listed)
    assert listed[0]["编号"] == "B1"
    assert (listed[-1]["编号"], listed[-1]["reasons_zh"].count("；")) == ("B12", 1)


def test_the_rejects_file_once_corrected_imports_again(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    """The workflow the rejects file is for: correct its rows in Excel, import it."""
    rows = good_rows(3)[0]
    rows[1][3] = "外星人"
    rows[2][5] = "昨天下午"
    rows[2][1] = "nan"
    path = write_csv(tmp_path / "events.csv", rows)
    rejects = tmp_path / "events.rejects.csv"
    assert run(city, registry, path, skip_invalid=True, rejects_path=rejects).rows_written == 1
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert [r["编号"] for r in listed] == ["GCJ-1", "GCJ-2"]
    listed[0]["类别"] = "矛盾纠纷"
    listed[1]["上报时间"], listed[1]["经度"] = "2025-05-01 08:00", str(rows[0][1])
    with rejects.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(listed[0]))
        writer.writeheader()
        writer.writerows(listed)
    again = run(city, registry, rejects)
    assert (again.rows_written, again.rows_rejected) == (2, 0)
    assert count(city) == 3


def test_gbk_csv_is_detected(city: Connection, registry: Registry, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gbk.csv", good_rows(20)[0], encoding="gbk")
    report = run(city, registry, path)
    assert report.encoding == "gb18030"
    assert report.rows_written == 20
    assert (
        city.execute(text("SELECT DISTINCT description FROM incident")).scalar_one()
        == "邻里噪声纠纷"
    )


def test_an_arcgis_geojson_with_epoch_milliseconds_imports(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    """ArcGIS's GeoJSON (a REST query with f=geojson) gives dates as epoch milliseconds:
    JSON numbers. A number of another length is a bad row, named."""

    def feature(fid: int, at: object) -> dict[str, object]:
        return {
            "type": "Feature",
            "id": fid,
            "geometry": {"type": "Point", "coordinates": [120.305 + fid * 1e-4, 31.575]},
            "properties": {"OBJECTID": fid, "SJLB": "矛盾纠纷", "LY": "12345热线", "SBSJ": at},
        }

    path = tmp_path / "arcgis.geojson"
    mapping = ("SJLB=category", "LY=source", "SBSJ=reported_at")
    features = [feature(1, 1746064800000), feature(2, 1746064800)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    report = run(city, registry, path, crs="wgs84", mapping=mapping)
    assert report.rows_written == 2
    stored = city.execute(
        text("SELECT external_id, reported_at FROM incident ORDER BY external_id")
    ).all()
    expected = datetime.fromisoformat("2025-05-01T10:00:00+08:00")
    assert [tuple(r) for r in stored] == [("1", expected), ("2", expected)]
    features.append(feature(3, 174606480000))
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    with pytest.raises(ImportRefusedError) as caught:
        run(city, registry, path, crs="wgs84", mapping=mapping)
    assert [(p.row, p.field) for p in caught.value.report.problems] == [(3, "reported_at")]


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
    unknown = tmp_path / "events.dat"
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


def _as_if_empty(conn: Connection) -> None:
    """The table's statistics say what this transaction sees (no incident), whatever
    earlier tests left in them: a first load is told from them."""
    assert count(conn) == 0
    conn.execute(text("ANALYZE incident"))


def test_a_first_load_rebuilds_indexes_and_keys_exactly(
    city: Connection, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a million rows into an empty table take (indexes and foreign keys dropped
    and created again), taken here by a small file: same schema after, same rows."""
    from gridgov.layers import assignment

    monkeypatch.setattr(assignment, "PARALLEL_MIN_ROWS", 10)
    _as_if_empty(city)
    before = _schema_of_incident(city)
    rows, lon, _lat = good_rows(60)
    report = run(city, registry, write_csv(tmp_path / "first.csv", rows))
    assert report.rows_written == 60
    assert "rebuild indexes and keys" in report.seconds
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


def _held_on(conn: Connection, table: str) -> set[str]:
    """The locks this transaction holds on ``table``."""
    return set(
        conn.execute(
            text(
                "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() "
                "AND relation = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).scalars()
    )


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
def test_a_dry_run_of_a_first_load_locks_no_reader_out(
    city: Connection,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dry_run: bool,
) -> None:
    """A first load drops and rebuilds the indexes and keys under exclusive locks on the
    map's tables; a trial run, rolled back anyway, keeps them and takes none."""
    from gridgov.layers import assignment

    monkeypatch.setattr(assignment, "PARALLEL_MIN_ROWS", 10)
    _as_if_empty(city)
    rows, _lon, _lat = good_rows(30)
    path = write_csv(tmp_path / "first.csv", rows)
    report = run(city, registry, path, dry_run=dry_run)
    assert report.rows_written == count(city) == 30
    rebuilt = "rebuild indexes and keys" in report.seconds
    exclusive = "AccessExclusiveLock" in _held_on(city, "grid")
    assert (rebuilt, exclusive) == (not dry_run, not dry_run)


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
    city.execute(text("ANALYZE incident"))  # 40 rows: 300 more are a first load
    rows, _lon, _lat = good_rows(300, seed=4)
    rows = [[f"NEW-{i}", *row[1:]] for i, row in enumerate(rows)]
    report = run(city, registry, write_csv(tmp_path / "new.csv", rows))
    assert report.rows_written == 300
    assert ("rebuild indexes and keys" in report.seconds) == first_load
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
    city: Connection, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage is fed by a background COPY: when PostgreSQL refuses it (a NUL byte,
    which text columns cannot hold, let through by switching off the check that makes
    it a bad row), the error reaches the caller and nothing is written."""
    import psycopg

    from gridgov.layers import incident_import

    monkeypatch.setattr(incident_import, "unstorable_rows", lambda texts: [])
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


SPREADSHEET_TIMES = {
    # Excel and WPS write these in a CSV saved in a Chinese locale: Beijing time.
    "2025/5/1 9:05": "2025-05-01T09:05:00+08:00",
    "2025/05/01 10:30:15": "2025-05-01T10:30:15+08:00",
    "2025/5/1": "2025-05-01T00:00:00+08:00",
    "2025.5.1 9:05:03.25": "2025-05-01T09:05:03.250000+08:00",
    "2025-5-1T9:05": "2025-05-01T09:05:00+08:00",
    "2025年5月1日": "2025-05-01T00:00:00+08:00",
    "2025年05月01日 9时5分3秒": "2025-05-01T09:05:03+08:00",
    "2025年5月1日10:30": "2025-05-01T10:30:00+08:00",
    # Public-security and hotline systems' compact form (GA/T): seconds or minutes.
    "20250501090503": "2025-05-01T09:05:03+08:00",
    "202505010905": "2025-05-01T09:05:00+08:00",
    # The 12-hour clock, as cells formatted 上午/下午h:mm or h:mm AM/PM are saved.
    "2025/5/1 下午3:05": "2025-05-01T15:05:00+08:00",
    "2025/5/1 上午 9:05:03": "2025-05-01T09:05:03+08:00",
    "2025/5/1 3:05 PM": "2025-05-01T15:05:00+08:00",
    "2025-5-1 3:05:07.5pm": "2025-05-01T15:05:07.500000+08:00",
    "2025/5/1 12:30 AM": "2025-05-01T00:30:00+08:00",
    "2025/5/1 下午12:30": "2025-05-01T12:30:00+08:00",
    "2025年5月1日下午3时5分": "2025-05-01T15:05:00+08:00",
    "2025年5月1日 上午12时5分": "2025-05-01T00:05:00+08:00",
    # Refused, by both readers: no such day or hour, mixed separators, not year first.
    "20250230090503": None,
    "20250501240000": None,
    "202505010905031": None,
    "202505010905 10:00": None,
    "2025/2/30": None,
    "2025/5/1 24:00": None,
    "2025/5/1 9:5": None,
    "2025/5-1": None,
    "5/1/2025": None,
    "２０２５/5/1": None,
    "2025年5月1日 下午3点": None,
    "2025/5/1 下午13:05": None,  # no 12-hour clock shows 13 or 0: a slip, never guessed
    "2025/5/1 上午0:30": None,
    "2025/5/1 下午3:05 PM": None,
    "2025/5/1 下午": None,
    "2025-5-1T下午3:05": None,
    "20250501 下午3:05": None,
    "2025/5/1 " + "x" * 5000: None,  # too long for the character matrix: row by row
}


def _read_alike(cases: dict[str, str | None]) -> set[int]:
    """Each text read column-wise (:func:`_times`) and row by row (``values``) gives the
    expected time (ISO 8601), or is refused by both (None); the refused indices."""
    import pandas as pd

    from gridgov.layers.incident_import import _NOT_YET, _times
    from gridgov.layers.io.values import Target, convert_column
    from gridgov.layers.spec import ColumnType

    texts = list(cases)
    micros, slow = _times(pd.Series(texts))
    at = Target("t", ColumnType.TIMESTAMP, "时间")
    converted, problems = convert_column(at, texts, len(texts))
    refused = {p.index for p in problems}
    for i, (textual, expected) in enumerate(cases.items()):
        if expected is None:
            assert micros[i] == _NOT_YET, textual
            assert i in refused, textual
            continue
        moment = converted[i]
        assert isinstance(moment, datetime), textual
        assert moment.isoformat() == expected, textual
        assert micros[i] == round(moment.timestamp() * 1e6), textual
    assert [i for i, _ in slow] == sorted(refused)
    return refused


def test_spreadsheet_times_are_read_alike_column_wise_and_row_by_row() -> None:
    """The import reads a million times by shape (:func:`_times`); every other importer
    row by row (``values``): both accept the same year-first forms, with the same time."""
    from gridgov.layers.io.values import Target, convert_column
    from gridgov.layers.spec import ColumnType

    texts = list(SPREADSHEET_TIMES)
    _read_alike(SPREADSHEET_TIMES)
    dates, date_problems = convert_column(Target("d", ColumnType.DATE, "日期"), texts, len(texts))
    assert dates[2] == dates[5] == date(2025, 5, 1)
    # A date is a midnight: every accepted value but those two has a time of day.
    assert {p.index for p in date_problems} == set(range(len(texts))) - {2, 5}


def test_epoch_times_as_arcgis_exports_them_are_read_alike_column_wise_and_row_by_row() -> None:
    """13 digits are milliseconds, 10 are seconds (values.EPOCH_TIME): both readers agree;
    other lengths, signs and fractions are no time. A date must be a midnight, in Beijing
    (a date entered in China) or in UTC."""
    from gridgov.layers.io.values import Target, convert_column
    from gridgov.layers.spec import ColumnType

    ten_beijing = "2025-05-01T02:00:00+00:00"
    cases = {
        "1746064800000": ten_beijing,
        "1746064800": ten_beijing,
        "1746064800123": "2025-05-01T02:00:00.123000+00:00",
        "174606480000": None,
        "17460648000000": None,
        "-1746064800": None,
        "1746064800.5": None,
    }
    _read_alike(cases)
    beijing_midnight, utc_midnight, ten_o_clock = 1746028800000, 1746057600000, 1746064800000
    days = [beijing_midnight, utc_midnight, ten_o_clock, "1746028800"]
    dates, date_problems = convert_column(Target("d", ColumnType.DATE, "日期"), days, 4)
    assert [dates[i] for i in (0, 1, 3)] == [date(2025, 5, 1)] * 3
    assert [p.index for p in date_problems] == [2]


def test_utc_offsets_no_zone_has_are_refused_alike() -> None:
    """Real zones lie between -12:00 and +14:00; +20:00 is a typo, refused by row."""
    _read_alike(
        {
            "2025-05-01T00:00+14:00": "2025-05-01T00:00:00+14:00",
            "2025-05-01T00:00:00-12:00": "2025-05-01T00:00:00-12:00",
            "2025-05-01T00:00+20:00": None,
            "2025-05-01T00:00:00.5-12:01": None,
            "2025-05-01 08:00+23:59": None,
        }
    )


def test_a_csv_saved_by_excel_in_a_chinese_locale_imports(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    # Excel writes 2025/6/1 9:05 for every time cell; that file used to be refused whole.
    # A cell formatted on the 12-hour clock is saved as 2025/6/1 下午3:05.
    rows, _, _ = good_rows(6)
    written = [
        "2025/6/1 9:05",
        "2025/6/1",
        "2025年6月1日 9时5分",
        "x",
        "2025/6/1 下午3:05",
        "2025/6/1 下午15:05",
    ]
    for row, when in zip(rows, written, strict=True):
        row[5] = when
    path = write_csv(tmp_path / "excel.csv", rows)
    with pytest.raises(ImportRefusedError) as caught:
        run(city, registry, path)
    assert [(p.row, p.kind) for p in caught.value.report.problems] == [(4, "type"), (6, "type")]
    rows[3][5] = "2025-06-01 09:05"
    rows[5][5] = "2025/6/1 3:05 PM"
    assert run(city, registry, write_csv(path, rows)).rows_written == 6
    stored = city.execute(
        text("SELECT external_id, reported_at FROM incident ORDER BY external_id")
    ).all()
    assert [(r[0], r[1].isoformat()) for r in stored] == [
        ("GCJ-0", "2025-06-01T01:05:00+00:00"),
        ("GCJ-1", "2025-05-31T16:00:00+00:00"),
        ("GCJ-2", "2025-06-01T01:05:00+00:00"),
        ("GCJ-3", "2025-06-01T01:05:00+00:00"),
        ("GCJ-4", "2025-06-01T07:05:00+00:00"),
        ("GCJ-5", "2025-06-01T07:05:00+00:00"),
    ]


def _unicode_text(path: Path, rows: list[list[object]], codec: str, bom: bytes) -> Path:
    """What Excel saves as "Unicode 文本 (*.txt)": UTF-16 with tabs (and a BOM, which the
    caller may leave out), without a newline after the last row."""
    table: list[list[object]] = [list(HEADER), *rows]
    lines = ["\t".join(str(cell) for cell in row) for row in table]
    path.write_bytes(bom + "\r\n".join(lines).encode(codec))
    return path


@pytest.mark.parametrize(
    ("codec", "bom"),
    [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE)],
    ids=["little-endian", "big-endian"],
)
def test_excel_unicode_text_imports_without_naming_its_encoding(
    city: Connection, registry: Registry, tmp_path: Path, codec: str, bom: bytes
) -> None:
    # Excel's one export that keeps Chinese intact: it was refused twice, for its .txt
    # name and then for an encoding that could not be told.
    rows, _, _ = good_rows(3)
    # 上 is U+4E0A, a newline byte inside a character: in the last line, it was taken for
    # the end of the lines read ahead, and the cut line (five fields of seven) made the
    # separator a comma.
    rows[1][6] = "楼上噪音"
    rows[2][4], rows[2][6] = "网格员上报", ""
    report = run(city, registry, _unicode_text(tmp_path / "事件.txt", rows, codec, bom))
    assert (report.rows_written, report.encoding) == (3, "utf-16")
    stored = city.execute(text("SELECT external_id, description FROM incident")).all()
    assert sorted(tuple(r) for r in stored) == sorted((r[0], r[6] or None) for r in rows)


def test_utf16_without_its_byte_order_mark_needs_the_order_named(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    rows, _, _ = good_rows(2)
    path = _unicode_text(tmp_path / "events.csv", rows, "utf-16-le", b"")
    with pytest.raises(UnreadableFileError, match="请用 --encoding 指定"):
        run(city, registry, path)  # NUL bytes: not UTF-8, not GB18030
    with pytest.raises(ImportUsageError, match="字节顺序标记") as caught:
        run(city, registry, path, encoding="UTF-16")
    assert "utf-16-le" in caught.value.detail_en
    assert run(city, registry, path, encoding="utf_16_le").rows_written == 2
    assert city.execute(text("SELECT count(*) FROM incident")).scalar_one() == 2


def _point_feature(i: int, coordinates: list[object] | None = None, **props: object) -> dict:  # type: ignore[type-arg]
    return {
        "type": "Feature",
        "id": f"F{i}",
        "geometry": {"type": "Point", "coordinates": coordinates or [120.315, 31.565]},
        "properties": {
            "category": "public_order",
            "source": "police",
            "reported_at": "2025-06-02T22:00:00+08:00",
            **props,
        },
    }


def _write_collection(path: Path, features: list[object], **members: object) -> Path:
    document = {"type": "FeatureCollection", **members, "features": features}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("sep", ["\t", ";"], ids=["tab", "semicolon"])
def test_tab_and_semicolon_separated_files_are_read(
    city: Connection, registry: Registry, tmp_path: Path, sep: str
) -> None:
    # Saved from Excel as text, or in a European locale: the separator is sniffed as
    # gridgov layer import sniffs it (it was taken for one column, "required missing").
    rows, _, _ = good_rows(3)
    path = tmp_path / "events.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep)
        writer.writerows([HEADER, *rows])
    assert run(city, registry, path).rows_written == 3
    stored = city.execute(text("SELECT external_id, category FROM incident")).all()
    assert sorted(tuple(r) for r in stored) == sorted((r[0], "dispute") for r in rows)


def test_empty_rows_are_skipped_and_counted_and_rows_keep_their_numbers(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    # A sheet's formatted but empty rows: Excel writes them into a CSV as ",,,,,,". They
    # used to be bad rows (no coordinates, no category), refusing the whole file.
    rows, _, _ = good_rows(3)
    rows[2][3] = "外星人"  # a bad row after the empty ones keeps its number
    empty: list[object] = [""] * len(HEADER)
    csv_path = write_csv(tmp_path / "gaps.csv", [rows[0], empty, rows[1], empty, rows[2], empty])
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet_rows: list[list[object]] = [list(HEADER), rows[0], [], rows[1], [], rows[2]]
    for row in sheet_rows:
        sheet.append(row)
    sheet["C20"].number_format = "0.00"  # formatted, never filled
    book.save(tmp_path / "gaps.xlsx")
    for path in (csv_path, tmp_path / "gaps.xlsx"):
        with pytest.raises(ImportRefusedError) as caught:
            run(city, registry, path)
        assert [(p.row, p.kind) for p in caught.value.report.problems] == [(5, "choice")], path
    rows[2][3] = "矛盾纠纷"
    report = run(city, registry, write_csv(csv_path, [rows[0], empty, rows[1], rows[2], empty]))
    assert (report.rows_read, report.rows_empty, report.rows_written) == (5, 2, 3)
    assert count(city) == 3


def test_title_lines_above_the_header_are_passed_over_and_said(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    # A 台账 sheet: a title, a unit line and a blank line, then the header.
    rows, _, _ = good_rows(2)
    rows[1][3] = "外星人"
    csv_path = tmp_path / "ledger.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("2025年5月事件台账,,,,,,\n制表单位：某街道,,,,,,\n\n")
        csv.writer(handle).writerows([HEADER, *rows])
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["2025年5月事件台账"])
    sheet.merge_cells("A1:G1")
    sheet.append([])
    sheet_rows: list[list[object]] = [list(HEADER), *rows]
    for row in sheet_rows:
        sheet.append(row)
    book.save(tmp_path / "ledger.xlsx")
    for path, header_row in ((csv_path, 4), (tmp_path / "ledger.xlsx", 3)):
        with pytest.raises(ImportRefusedError) as caught:
            run(city, registry, path)
        refused = caught.value.report
        assert isinstance(refused, IncidentImportReport)
        assert refused.header_row == header_row, path
        assert [(p.row, p.kind) for p in refused.problems] == [(2, "choice")], path
    rows[1][3] = "矛盾纠纷"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("2025年5月事件台账\n")  # one field: no short-row refusal for a title
        csv.writer(handle).writerows([HEADER, *rows])
    report = run(city, registry, csv_path)
    assert (report.header_row, report.rows_written) == (2, 2)


def _monthly_ledger(path: Path) -> Path:
    """A township's workbook: instructions first, then one 台账 sheet per month."""
    rows, _, _ = good_rows(3)
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "填表说明"
    for line in ("1. 每月一个工作表", "2. 经纬度用高德坐标", "3. 时间格式 2025/5/1 9:30"):
        notes.append([line])
    may = book.create_sheet("5月")
    may.append(["2025年5月事件台账"])
    table: list[list[object]] = [list(HEADER), *rows]
    for row in table[:3]:
        may.append(row)
    june = book.create_sheet("6月")
    for row in (table[0], table[3]):
        june.append(row)
    book.save(path)
    return path


def test_a_workbook_is_read_from_its_first_data_sheet_or_the_one_named(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    """Without --sheet the first sheet with a header is read (a 填表说明 sheet first is
    common), and the report names the sheets left unread; --sheet takes a name or a
    number; a sheet the workbook lacks is refused with the ones it has."""
    path = _monthly_ledger(tmp_path / "台账.xlsx")
    report = run(city, registry, path)
    assert (report.sheet, report.other_sheets) == ("5月", ["填表说明", "6月"])
    assert (report.header_row, report.rows_written) == (2, 2)
    assert report.as_dict()["other_sheets"] == ["填表说明", "6月"]
    june = run(city, registry, path, sheet="3")
    assert (june.sheet, june.rows_written, june.rows_unchanged) == ("6月", 1, 0)
    again = run(city, registry, path, sheet="6月")
    assert (again.rows_written, again.rows_unchanged) == (0, 1)
    assert count(city) == 3
    with pytest.raises(ImportUsageError) as caught:
        run(city, registry, path, sheet="7月")
    assert "7月" in caught.value.detail_zh
    assert "1. 填表说明、2. 5月、3. 6月" in caught.value.detail_zh
    with pytest.raises(ImportUsageError, match="没有工作表或图层“4”"):
        run(city, registry, path, sheet="4")
    rows, _, _ = good_rows(1)
    with pytest.raises(ImportUsageError, match="--sheet"):
        run(city, registry, write_csv(tmp_path / "one.csv", rows), sheet="1")
    # Only the instructions: nothing to recognise, so the first sheet is read and refused.
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.append(["说明"])
    book.create_sheet("空表")
    book.save(tmp_path / "notes.xlsx")
    with pytest.raises(ImportUsageError) as missing:
        run(city, registry, tmp_path / "notes.xlsx")
    assert count(city) == 3
    assert "缺少必填列" in missing.value.detail_zh
    assert "读取的是工作表“Sheet”；另有：空表，可用 --sheet 选择" in missing.value.detail_zh


def test_the_cli_says_which_sheet_it_read_and_which_it_did_not(tmp_path: Path) -> None:
    path = _monthly_ledger(tmp_path / "台账.xlsx")
    result = CliRunner().invoke(
        app, ["incidents", "import", str(path), "--crs", "gcj02", "--sheet", "2", "--test"]
    )
    # The test database's committed tables are empty: every row is outside the city.
    assert result.exit_code == 1, result.output
    assert "读取了工作表“5月”；另有 2 个未读取：填表说明、6月" in result.output
    refused = CliRunner().invoke(
        app, ["incidents", "import", str(path), "--sheet", "十二月", "--test"]
    )
    assert refused.exit_code == 2
    assert "十二月" in refused.output


LEDGER_XLS = Path(__file__).parents[1] / "data" / "ledger.xls"  # tests/data/make_ledger_xls.py


def test_an_excel_97_2003_workbook_is_read_like_an_xlsx(
    city: Connection, registry: Registry
) -> None:
    """.xls, as many township 台账 templates still are: the 5月 sheet (past a 填表说明
    sheet and a title row), an id typed as a number, a date cell and a text time."""
    report = run(city, registry, LEDGER_XLS, crs="wgs84")
    assert (report.sheet, report.other_sheets) == ("5月", ["填表说明", "楼栋"])
    assert (report.header_row, report.rows_empty, report.rows_written) == (2, 1, 3)
    stored = city.execute(
        text(
            "SELECT external_id, category, source, grid_code, "
            "to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI') "
            "FROM incident ORDER BY external_id"
        )
    ).all()
    assert [tuple(r) for r in stored] == [
        ("12345", "dispute", "hotline", "320213001001001", "2025-05-01 09:05"),
        ("XLS-2", "safety_hazard", "grid_worker", "320213001001002", "2025-05-02 14:30"),
        ("XLS-3", "dispute", "hotline", "320213001001001", "2025-05-03 10:00"),
    ]
    again = run(city, registry, LEDGER_XLS, crs="wgs84")
    assert (again.rows_written, again.rows_unchanged) == (0, 3)


def test_two_columns_for_one_field_are_refused_until_map_chooses(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    # 时间 and 上报时间 both name reported_at: taking either silently could file the
    # incident under the wrong grid version.
    path = tmp_path / "two_times.csv"
    path.write_text(
        "编号,经度,纬度,类别,来源,时间,上报时间\n"
        "T1,120.315,31.565,矛盾纠纷,12345热线,2030-01-01 00:00,2025-05-01 08:00\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportUsageError) as caught:
        run(city, registry, path, crs="wgs84")
    assert "列 时间、上报时间 都可作为 reported_at" in caught.value.detail_zh
    assert "--map 时间=reported_at" in caught.value.detail_zh
    assert run(city, registry, path, crs="wgs84", mapping=("上报时间=reported_at",)).rows_written
    stored = city.execute(text("SELECT reported_at FROM incident")).scalar_one()
    assert stored.isoformat() == "2025-05-01T00:00:00+00:00"


def test_a_repeated_column_name_is_refused(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    header = ["编号", "经度", "纬度", "类别", "来源", "上报时间", "经度"]
    row = ["R1", "120.315", "31.565", "矛盾纠纷", "12345热线", "2025-05-01 08:00", "121.5"]
    csv_path = tmp_path / "twice.csv"
    csv_path.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    sheet.append(row)
    book.save(tmp_path / "twice.xlsx")
    for path in (csv_path, tmp_path / "twice.xlsx"):
        with pytest.raises(ImportUsageError) as caught:
            run(city, registry, path, crs="wgs84")
        assert "表头中列名 经度 重复出现" in caught.value.detail_zh, path
    assert count(city) == 0


def test_a_geojson_property_id_wins_over_the_feature_id(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    features: list[object] = [_point_feature(1, 编号="P-1"), _point_feature(2)]
    path = _write_collection(tmp_path / "ids.geojson", features)
    assert run(city, registry, path, crs="wgs84").rows_written == 2
    ids = city.execute(text("SELECT external_id FROM incident ORDER BY external_id")).scalars()
    assert list(ids) == ["F2", "P-1"]


def test_text_postgresql_cannot_store_is_a_bad_row_not_a_crash(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    # A NUL from a CSV, a lone surrogate from a JSON escape: COPY failed on both, with a
    # traceback, and the rejects file could not be written.
    csv_path = tmp_path / "nul.csv"
    rows, _, _ = good_rows(3)
    rows[1][6] = "路灯\x00损坏"
    write_csv(csv_path, rows)
    with pytest.raises(ImportRefusedError) as caught:
        run(city, registry, csv_path)
    assert [(p.row, p.field, p.kind) for p in caught.value.report.problems] == [
        (2, "description", "unstorable-text")
    ]
    assert "无法保存的字符" in caught.value.report.problems[0].reason_zh
    features = [_point_feature(1), {**_point_feature(2), "id": "F\ud800"}, _point_feature(3)]
    features[2]["properties"]["description"] = "\udc80"
    path = tmp_path / "surrogates.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    rejects = tmp_path / "rejects.csv"
    report = run(city, registry, path, crs="wgs84", skip_invalid=True, rejects_path=rejects)
    assert (report.rows_written, report.rows_rejected) == (1, 2)
    assert [(p.row, p.field) for p in report.problems] == [(2, "external_id"), (3, "description")]
    assert city.execute(text("SELECT external_id FROM incident")).scalar_one() == "F1"
    lines = rejects.read_text("utf-8-sig").splitlines()
    assert "F\\ud800" in lines[1]
    assert "\\udc80" in lines[2]


def test_geojson_features_without_a_point_are_named_by_row(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    line = {"type": "LineString", "coordinates": [[120.31, 31.56], [120.311, 31.561]]}
    features: list[object] = [
        _point_feature(1),
        {**_point_feature(2), "geometry": line},
        {**_point_feature(3), "geometry": None},
        {**_point_feature(4), "geometry": {"type": "Point", "coordinates": [120.315, 31.565, 9]}},
        {**_point_feature(5), "geometry": {"type": "Point", "coordinates": ["120.3", "31.5"]}},
        {**_point_feature(6), "type": "Topology"},
        _point_feature(7, [120.316, 31.566]),
    ]
    path = _write_collection(tmp_path / "f.geojson", features)
    with pytest.raises(ImportRefusedError) as caught:
        run(city, registry, path, crs="wgs84")
    problems = caught.value.report.problems
    assert {p.row: p.kind for p in problems} == {
        2: "not-a-point",
        3: "no-geometry",
        4: "z-value",
        5: "coordinates",
        6: "not-a-feature",
    }
    assert "LineString" in next(p.reason_zh for p in problems if p.row == 2)
    assert count(city) == 0
    rejects = tmp_path / "f.rejects.csv"
    report = run(city, registry, path, crs="wgs84", skip_invalid=True, rejects_path=rejects)
    assert report.rows_written == 2
    stored = city.execute(text("SELECT external_id FROM incident ORDER BY 1")).scalars().all()
    assert stored == ["F1", "F7"]  # the features' ids, as the properties name none
    with rejects.open(encoding="utf-8-sig") as handle:
        assert [int(r["row"]) for r in csv.DictReader(handle)] == [2, 3, 4, 5, 6]


def test_geojson_point_beats_lon_lat_properties_and_ids_make_reimports_idle(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    features: list[object] = [
        _point_feature(i, [120.315 + i * 1e-4, 31.565], lon="0", lat="0", geometry_problem="x")
        for i in range(3)
    ]
    path = _write_collection(tmp_path / "ids.geojson", features)
    assert run(city, registry, path, crs="wgs84").rows_written == 3
    xs = city.execute(text("SELECT ST_X(geom) FROM incident ORDER BY external_id")).scalars()
    assert [round(x, 6) for x in xs] == [120.315, 120.3151, 120.3152]
    again = run(city, registry, path, crs="wgs84")
    assert (again.rows_written, again.rows_unchanged) == (0, 3)


@pytest.mark.parametrize("crs_first", [True, False])
def test_a_geojson_crs_member_that_contradicts_crs_is_refused(
    city: Connection, registry: Registry, tmp_path: Path, crs_first: bool
) -> None:
    member = json.dumps({"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}})
    features = json.dumps([_point_feature(1)])
    body = (
        f'{{"type": "FeatureCollection", "crs": {member}, "features": {features}}}'
        if crs_first
        else f'{{"type": "FeatureCollection", "features": {features}, "crs": {member}}}'
    )
    path = tmp_path / "m.geojson"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ImportUsageError) as caught:
        run(city, registry, path, crs="wgs84")
    assert "EPSG:3857" in caught.value.detail_zh
    assert "wgs84" in caught.value.detail_zh
    assert count(city) == 0


@pytest.mark.parametrize(
    ("name", "crs"),
    [("urn:ogc:def:crs:OGC:1.3:CRS84", "wgs84"), ("urn:ogc:def:crs:EPSG::4490", "cgcs2000")],
)
def test_crs_members_that_agree_with_crs_are_read(
    city: Connection, registry: Registry, tmp_path: Path, name: str, crs: str
) -> None:
    member = {"type": "name", "properties": {"name": name}}
    path = _write_collection(tmp_path / "ok.geojson", [_point_feature(1)], crs=member)
    assert run(city, registry, path, crs=crs).rows_written == 1
    assert city.execute(text("SELECT grid_code FROM incident")).scalar_one() == "320213001001002"


def _mercator_member_collection(path: Path, count: int, member_first: bool) -> Path:
    """``count`` features at the test point, in Web Mercator, declared by a crs member."""
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(120.315, 31.565)
    features = [_point_feature(i, coordinates=[x, y]) for i in range(count)]
    member = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    document: dict[str, object] = {"type": "FeatureCollection"}
    if member_first:
        document |= {"crs": member, "features": features}
    else:
        document |= {"features": features, "crs": member}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.mark.parametrize("member_first", [True, False])
def test_without_a_crs_a_geojson_file_is_read_in_its_own(
    city: Connection, registry: Registry, tmp_path: Path, member_first: bool
) -> None:
    """No CRS given (the upload form's default, ``gridgov layer import incident``): the
    file's own crs member is used, as the layer import does; without one, WGS84."""
    path = _mercator_member_collection(tmp_path / "m.geojson", 1, member_first)
    report = import_incidents(city, registry, path, None, TOLERANCE)
    assert (report.crs, report.rows_written) == ("EPSG:3857", 1)
    plain = _write_collection(tmp_path / "p.geojson", [_point_feature(2)])
    assert import_incidents(city, registry, plain, None, TOLERANCE).crs == "wgs84"
    codes = city.execute(text("SELECT grid_code FROM incident")).scalars().all()
    assert codes == ["320213001001002"] * 2


def test_a_crs_member_after_features_already_read_as_wgs84_is_refused(
    city: Connection, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incident_import, "CHUNK_ROWS", 2)  # a chunk is read before the member
    path = _mercator_member_collection(tmp_path / "late.geojson", 3, member_first=False)
    with pytest.raises(ImportUsageError) as caught:
        import_incidents(city, registry, path, None, TOLERANCE)
    assert "文件的坐标系声明（EPSG:3857）在要素之后，之前的要素已按 wgs84 读取" in (
        caught.value.detail_zh
    )
    assert count(city) == 0
    assert import_incidents(city, registry, path, "EPSG:3857", TOLERANCE).rows_written == 3


def test_gbk_geojson_is_detected_and_later_bad_bytes_stop_the_import(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    feature = _point_feature(1, description="邻里噪声")
    document = {"type": "FeatureCollection", "features": [feature]}
    path = tmp_path / "gbk.geojson"
    path.write_bytes(json.dumps(document, ensure_ascii=False).encode("gbk"))
    report = run(city, registry, path, crs="wgs84")
    assert (report.encoding, report.rows_written) == ("gb18030", 1)
    assert city.execute(text("SELECT description FROM incident")).scalar_one() == "邻里噪声"
    # Plain ASCII for the first megabyte (so it is taken as UTF-8), then a Latin-1 byte.
    many = [_point_feature(i, note="x" * 300) for i in range(4000)]
    many.append(_point_feature(9999, description="café"))
    late = tmp_path / "late.geojson"
    collection = {"type": "FeatureCollection", "features": many}
    late.write_bytes(json.dumps(collection, ensure_ascii=False).encode("latin-1"))
    assert late.read_bytes().find(b"\xe9") > 1 << 20
    with pytest.raises(UnreadableFileError) as caught:
        run(city, registry, late, crs="wgs84")
    assert "utf-8" in caught.value.detail_zh
    assert count(city) == 1


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        (
            "first_row_long.csv",
            "编号,经度,纬度,类别,来源,上报时间\nA1,120.3,31.5,矛盾纠纷,12345热线,2025-05-01,多\n",
            "第 2 行（含表头）的字段比表头多",
        ),
        (
            "later_row_long.csv",
            "编号,经度,纬度,类别\nA1,120.3,31.5,矛盾纠纷\nA2,120.3,31.5,矛盾纠纷\nA3,1,2,3,4\n",
            "第 4 行（含表头）有 5 个字段，表头只有 4 个",
        ),
        ("quote.csv", '编号,经度,纬度\n"A1,120.3,31.5\n', "引号"),
        (
            "short_row.csv",
            "编号,经度,纬度,类别\nA1,120.3,31.5,矛盾纠纷\nA2,120.3,31.5\n",
            "第 3 行（含表头）只有 3 个字段，表头有 4 个",
        ),
        (
            # Unquoted, the line feed in the description makes two short rows; pandas
            # alone wrote the first half, its description cut, under --skip-invalid.
            "broken_value.csv",
            "编号,经度,纬度,类别,来源,上报时间,描述\n"
            "A1,120.3,31.5,矛盾纠纷,12345热线,2025-05-01 10:00,邻里\n噪声,,,,,\n",
            "第 3 行（含表头）只有 6 个字段，表头有 7 个",
        ),
        ("empty.csv", "", "空文件"),
        ("broken.geojson", '{"type": "FeatureCollection", "features": [{"type": ', "不完整"),
    ],
)
@pytest.mark.parametrize("skip_invalid", [False, True], ids=["strict", "skip-invalid"])
def test_files_that_cannot_be_split_into_rows_are_refused_by_name(
    city: Connection,
    registry: Registry,
    tmp_path: Path,
    name: str,
    content: str,
    words: str,
    skip_invalid: bool,
) -> None:
    """Refused whole, with or without --skip-invalid: no row of such a file can be
    trusted to be the row that was meant."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UnreadableFileError) as caught:
        run(city, registry, path, skip_invalid=skip_invalid, rejects_path=tmp_path / "r.csv")
    assert words in caught.value.detail_zh, caught.value.detail_zh
    assert count(city) == 0


def test_excel_files_that_cannot_be_read_are_refused_by_name(
    city: Connection, registry: Registry, tmp_path: Path
) -> None:
    for name, content in (
        ("broken.xlsx", b"PK\x03\x04 not really a workbook"),
        ("broken.xls", b"\xd0\xcf\x11\xe0 not really a workbook"),
        ("cut.xls", LEDGER_XLS.read_bytes()[:2000]),
    ):
        broken = tmp_path / name
        broken.write_bytes(content)
        with pytest.raises(UnreadableFileError) as caught:
            run(city, registry, broken)
        assert name in caught.value.detail_zh
    Workbook().save(tmp_path / "empty.xlsx")
    with pytest.raises(UnreadableFileError) as caught:
        run(city, registry, tmp_path / "empty.xlsx")
    assert "空的" in caught.value.detail_zh


def test_cli_names_an_unreadable_geojson_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cut.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    result = CliRunner().invoke(app, ["incidents", "import", str(path), "--test"])
    assert result.exit_code == 2, result.output
    assert "GeoJSON文件第1个要素处无法读取" in "".join(result.output.split())
    assert "Traceback" not in result.output


def test_geojson_chunks_of_other_properties_are_read_by_their_own_columns(
    city: Connection, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridgov.layers import incident_import

    monkeypatch.setattr(incident_import, "CHUNK_ROWS", 2)
    late = _point_feature(3, description="后来才有的描述")
    no_category = _point_feature(4)
    del no_category["properties"]["category"]
    features: list[object] = [_point_feature(1), _point_feature(2), late, no_category]
    path = _write_collection(tmp_path / "mixed.geojson", features)
    with pytest.raises(ImportRefusedError) as caught:
        run(city, registry, path, crs="wgs84")
    assert [(p.row, p.field, p.kind) for p in caught.value.report.problems] == [
        (4, "category", "required")
    ]
    report = run(city, registry, path, crs="wgs84", skip_invalid=True)
    assert report.rows_written == 3
    described = city.execute(text("SELECT external_id, description FROM incident ORDER BY 1"))
    assert described.all() == [("F1", None), ("F2", None), ("F3", "后来才有的描述")]


def test_cluster_cells_nest_bit_for_bit(connection: Connection) -> None:
    """The import bins points at the finest cluster zoom only and shifts the cells for the
    coarser ones; that agrees with the trigger's binning at every zoom only if each cell
    size is exactly 2^k times the finer one's, as doubles."""
    from gridgov.layers.map_support import cell_size_sql

    exact = connection.execute(
        text(
            f"""
            SELECT bool_and({cell_size_sql("z")} = {cell_size_sql("f")} * (1::bigint << (f - z)))
            FROM generate_series(0, 22) AS f, generate_series(0, 22) AS z WHERE z <= f
            """
        )
    ).scalar_one()
    assert exact is True
