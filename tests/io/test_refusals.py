"""Every kind of bad input is refused with its row and reason; the table is unchanged."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
from openpyxl import Workbook
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Point, Polygon, box
from sqlalchemy import Connection, MetaData

from gridgov.errors import ConflictError
from gridgov.layers.io.errors import ImportRefusedError, UnreadableFileError
from gridgov.layers.registry import Registry
from tests.factories import WUXI_LAT, WUXI_LON
from tests.io.conftest import (
    CODES_COMMUNITY,
    count,
    grid_box,
    insert_grids,
    run_import,
    table_rows,
)

Row = dict[str, Any]


def _good_rows() -> list[Row]:
    """Grids 002–004 (001 is already stored), each on its own cell of the community."""
    return [
        {
            "code": f"{CODES_COMMUNITY}{k + 1:03d}",
            "name": f"网格{k + 1}",
            "kind": "base",
            "households": 300,
            "geometry": grid_box(k),
        }
        for k in (1, 2, 3)
    ]


def _bowtie() -> MultiPolygon:
    x, y = WUXI_LON + 0.001, WUXI_LAT + 0.001
    ring = [(x, y), (x + 0.001, y + 0.001), (x + 0.001, y), (x, y + 0.001), (x, y)]
    return MultiPolygon([Polygon(ring)])


def _with_z() -> MultiPolygon:
    x, y = WUXI_LON + 0.003, WUXI_LAT + 0.001
    return MultiPolygon(
        [Polygon([(x, y, 5), (x + 0.001, y, 5), (x + 0.001, y + 0.001, 5), (x, y, 5)])]
    )


def _swapped() -> MultiPolygon:
    g = grid_box(2)
    return MultiPolygon([Polygon([(yy, xx) for xx, yy in g.geoms[0].exterior.coords])])


CASES: dict[str, tuple[Callable[[Row], None], str, str]] = {
    "invalid geometry": (
        lambda r: r.update(geometry=_bowtie()),
        "geometry-invalid",
        "Self-intersection",
    ),
    "empty geometry": (lambda r: r.update(geometry=MultiPolygon()), "geometry-", "几何图形"),
    "wrong type": (
        lambda r: r.update(geometry=Point(120.305, 31.575)),
        "geometry-type",
        "只接受多面",
    ),
    "z coordinates": (lambda r: r.update(geometry=_with_z()), "geometry-zm", "Z"),
    "outside China": (
        lambda r: r.update(geometry=translate(grid_box(2), -100)),
        "coordinates-outside",
        "中国范围",
    ),
    "swapped": (lambda r: r.update(geometry=_swapped()), "coordinates-swapped", "颠倒"),
    "missing required": (lambda r: r.update(code=None), "required", "缺少必填字段"),
    "bad type": (lambda r: r.update(households="很多"), "type", "不是有效的整数"),
    "bad choice": (lambda r: r.update(kind="special"), "choice", "取值不在允许范围内"),
    "below minimum": (lambda r: r.update(households=-5), "minimum", "不能小于 0"),
    "code format": (lambda r: r.update(code="3202130010010"), "code-format", "应为 15 位数字"),
    "codes do not nest": (
        lambda r: r.update(community_code="320213001002"),
        "code-nesting",
        "不以村社区代码",
    ),
    "unknown parent": (lambda r: r.update(code="320213001009001"), "unknown-parent", "不存在"),
    "outside its community": (
        lambda r: r.update(
            geometry=MultiPolygon(
                [box(WUXI_LON + 0.005, WUXI_LAT + 0.005, WUXI_LON + 0.011, WUXI_LAT + 0.008)]
            )
        ),
        "outside-parent",
        "米",
    ),
    "duplicate in file": (
        lambda r: r.update(code=f"{CODES_COMMUNITY}002"),
        "duplicate-in-file",
        "与第 1 行重复",
    ),
    "clash with stored version": (
        lambda r: r.update(code=f"{CODES_COMMUNITY}001"),
        "exists",
        "在用的版本",
    ),
}


def _write_geojson(path: Path, rows: list[Row]) -> None:
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != "geometry"} for r in rows],
        geometry=[r["geometry"] for r in rows],
        crs="EPSG:4490",
    )
    pyogrio.write_dataframe(frame, path, driver="GeoJSON")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_row_is_refused_and_nothing_is_written(
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    pyramid: None,
    tmp_path: Path,
    case: str,
) -> None:
    insert_grids(connection, metadata, registry, n=1)
    before = table_rows(connection, metadata, "grid")
    rows = _good_rows()
    change, kind, fragment = CASES[case]
    change(rows[1])
    path = tmp_path / "grids.geojson"
    _write_geojson(path, rows)
    with pytest.raises(ImportRefusedError) as info:
        run_import(connection, registry, "grid", path)
    report = info.value.report
    assert report.rejected_rows == [2], report.problems
    assert any(
        p.kind.startswith(kind) and fragment in p.reason_zh + p.reason_en for p in report.problems
    ), report.problems
    assert all(p.reason_zh and p.reason_en for p in report.problems)
    assert report.rows_written == 0
    after = table_rows(connection, metadata, "grid")
    assert count(connection, metadata, "grid") == 1
    assert [r.pop("geom").wkb for r in after] == [r.pop("geom").wkb for r in before]
    assert after == before


def _buildings_csv(tmp_path: Path, *lines: str) -> Path:
    """A building CSV with the given data lines (each ending with a line break)."""
    path = tmp_path / "buildings.csv"
    header = "address,households,residents,lon,lat,community_code\n"
    path.write_text(header + "".join(lines), encoding="utf-8")
    return path


def _ledger_csv_and_sheet(tmp_path: Path, lines: list[str]) -> tuple[Path, Path]:
    """The same 台账 lines as a CSV and as an Excel sheet (an all-blank line: no cells)."""
    path = tmp_path / "楼栋.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for line in lines:
        sheet.append(line.split(",") if line.strip(",") else [])
    book.save(tmp_path / "楼栋.xlsx")
    return path, tmp_path / "楼栋.xlsx"


def test_a_ledger_title_and_empty_rows_are_passed_over(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    # A 台账 exported from Excel: a title line, a blank line, the header, a sheet's empty
    # rows written as ",,,,,". Before: the title was taken for the header and the empty
    # rows for bad rows.
    lines = [
        "2026年11月楼栋台账,,,,,",
        "",
        "address,households,residents,经度,纬度,community_code",
        f"好楼,1,1,120.301,31.571,{CODES_COMMUNITY}",
        ",,,,,",
        f"新楼,2,3,120.302,31.572,{CODES_COMMUNITY}",
        ",,,,,",
    ]
    path, sheet = _ledger_csv_and_sheet(tmp_path, lines)
    # The sheet keeps no trailing empty row: one empty row there, two in the CSV.
    for source, empty in ((path, 2), (sheet, 1)):
        report = run_import(connection, registry, "building", source, crs="wgs84")
        assert (report.header_row, report.rows_read, report.rows_empty) == (3, 2, empty)
        assert report.rows_written == 2
    assert sorted(r["address"] for r in table_rows(connection, metadata, "building")) == [
        "好楼",
        "好楼",
        "新楼",
        "新楼",
    ]


def test_problems_name_the_files_own_rows_when_empty_rows_were_skipped(
    connection: Connection, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    """Empty rows are left out but still counted: a bad row is named by the number people
    see (from the line after the header), in the report and in the rejects file."""
    lines = [
        "address,households,residents,经度,纬度,community_code",
        f"好楼,1,1,120.301,31.571,{CODES_COMMUNITY}",
        ",,,,,",
        f"坏楼,x,1,120.302,31.572,{CODES_COMMUNITY}",
        ",,,,,",
        ",,,,,",
        "错楼,1,1,120.303,31.573,999",
    ]
    for source in _ledger_csv_and_sheet(tmp_path, lines):
        rejects = tmp_path / f"{source.suffix}.rejects.csv"
        report = run_import(
            connection,
            registry,
            "building",
            source,
            crs="wgs84",
            skip_invalid=True,
            rejects_path=rejects,
        )
        assert (report.rows_read, report.rows_empty, report.rows_written) == (3, 3, 1), source
        assert report.rejected_rows == [3, 6], source
        with rejects.open(encoding="utf-8-sig", newline="") as handle:
            listed = [(r["row"], r["address"]) for r in csv.DictReader(handle)]
        assert listed == [("3", "坏楼"), ("6", "错楼")], source


def test_nan_coordinates_and_every_problem_reported(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = _buildings_csv(
        tmp_path,
        f"好楼,1,1,120.301,31.571,{CODES_COMMUNITY}\n"
        f"坏楼,,-1,nan,31.572,{CODES_COMMUNITY}\n"
        f"错楼,x,1,120.303,31.573,999\n",
    )
    with pytest.raises(ImportRefusedError) as info:
        run_import(connection, registry, "building", path, crs="wgs84")
    found = {(p.row, p.kind) for p in info.value.report.problems}
    assert {
        (2, "coordinates-nan"),
        (2, "required"),
        (2, "minimum"),
        (3, "type"),
        (3, "code-format"),
    } <= found
    assert count(connection, metadata, "building") == 0


@pytest.mark.parametrize(
    ("data", "words"),
    [
        # pandas alone would read 好楼 as the index and shift every value one column left.
        (
            f"好楼,1,1,120.301,31.571,{CODES_COMMUNITY},多出的值\n",
            "第 2 行（含表头）的字段比表头多",
        ),
        # pandas alone would read the missing community_code as blank, like an empty value.
        (
            f"好楼,1,1,120.301,31.571,{CODES_COMMUNITY}\n短楼,1,1,120.302,31.572\n",
            "第 3 行（含表头）只有 5 个字段，表头有 6 个",
        ),
    ],
    ids=["first-row-long", "row-short"],
)
def test_a_row_of_another_length_than_the_header_is_refused_not_shifted_or_padded(
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    pyramid: None,
    tmp_path: Path,
    data: str,
    words: str,
) -> None:
    path = _buildings_csv(tmp_path, data)
    with pytest.raises(UnreadableFileError) as info:
        run_import(connection, registry, "building", path, crs="wgs84", skip_invalid=True)
    assert words in info.value.detail_zh
    assert count(connection, metadata, "building") == 0


def test_a_nul_character_is_a_bad_row_not_a_crash(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = _buildings_csv(
        tmp_path,
        f"好楼,1,1,120.301,31.571,{CODES_COMMUNITY}\n"
        f"坏\x00楼,1,1,120.302,31.572,{CODES_COMMUNITY}\n",
    )
    with pytest.raises(ImportRefusedError) as info:
        run_import(connection, registry, "building", path, crs="wgs84")
    assert [(p.row, p.field, p.kind) for p in info.value.report.problems] == [
        (2, "address", "unstorable-text")
    ]
    assert count(connection, metadata, "building") == 0


def test_skip_invalid_writes_good_rows_and_the_rejects_file(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    rows = _good_rows()
    rows[1]["households"] = -1
    rows[2]["geometry"] = _bowtie()
    path = tmp_path / "grids.geojson"
    _write_geojson(path, rows)
    rejects = tmp_path / "grids.rejects.csv"
    report = run_import(connection, registry, "grid", path, skip_invalid=True, rejects_path=rejects)
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (3, 1, 2)
    assert [r["code"] for r in table_rows(connection, metadata, "grid")] == [rows[0]["code"]]
    data = rejects.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    lines = list(csv.DictReader(data.decode("utf-8-sig").splitlines()))
    assert [line["row"] for line in lines] == ["2", "3"]
    assert "不能小于 0" in lines[0]["reasons_zh"]
    assert "Self-intersection" in lines[1]["reasons_en"]
    assert lines[0]["name"] == rows[1]["name"] == "网格3"
    assert lines[1]["wkt"].startswith("MULTIPOLYGON")


def test_replace_mode_replaces_the_rows(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    insert_grids(connection, metadata, registry, n=3)
    rows = _good_rows()[:1]
    rows[0]["code"] = f"{CODES_COMMUNITY}009"
    path = tmp_path / "grids.geojson"
    _write_geojson(path, rows)
    report = run_import(connection, registry, "grid", path, mode="replace")
    assert report.rows_written == 1
    assert [r["code"] for r in table_rows(connection, metadata, "grid")] == [rows[0]["code"]]


def test_replace_refuses_when_other_layers_refer_to_the_rows(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    insert_grids(connection, metadata, registry, n=1)
    frame = gpd.GeoDataFrame(
        {"code": [CODES_COMMUNITY], "name": ["新社区"], "kind": ["urban"]},
        geometry=[MultiPolygon([box(WUXI_LON, WUXI_LAT, WUXI_LON + 0.01, WUXI_LAT + 0.01)])],
        crs="EPSG:4490",
    )
    path = tmp_path / "community.gpkg"
    pyogrio.write_dataframe(frame, path)
    with pytest.raises(ConflictError, match="grid"):
        run_import(connection, registry, "community", path, mode="replace")
    assert [r["name"] for r in table_rows(connection, metadata, "community")] == ["测试"]


def test_unknown_reference_to_another_layer_is_refused(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = tmp_path / "incidents.csv"
    path.write_text(
        "category,status,source,reported_at,police_station_code,lon,lat,community_code\n"
        f"dispute,reported,hotline,2026-05-01 08:00,PCS-404,120.301,31.571,{CODES_COMMUNITY}\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRefusedError) as info:
        run_import(connection, registry, "incident", path, crs="cgcs2000")
    [problem] = info.value.report.problems
    assert (problem.row, problem.field, problem.kind) == (
        1,
        "police_station_code",
        "unknown-reference",
    )
    assert "PCS-404" in problem.reason_zh
    assert count(connection, metadata, "incident") == 0
