"""Chinese text in GBK / GB18030 files, and coordinates in GCJ-02, come in right."""

from __future__ import annotations

import codecs
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from openpyxl import Workbook
from pyproj import Geod
from shapely.geometry import Point
from sqlalchemy import Connection, MetaData

from gridgov.gis.coords import wgs84_to_gcj02
from gridgov.layers.io import encoding
from gridgov.layers.io.errors import (
    EncodingProblemError,
    ImportRefusedError,
    ImportUsageError,
)
from gridgov.layers.registry import Registry
from tests.io.conftest import CODES_COMMUNITY, grid_box, run_import, table_rows

NAMES = ["梁溪区崇安寺网格", "南长街清名桥网格", "惠山古镇䶮网格"]  # 䶮: GB18030 only


def _grid_frame(names: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "网格编码": [f"{CODES_COMMUNITY}{k + 1:03d}" for k in range(len(names))],
            "名称": names,
            "网格类型": ["基础网格"] * len(names),
        },
        geometry=[grid_box(k) for k in range(len(names))],
        crs="EPSG:4490",
    )


def test_gbk_shapefile_without_cpg(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = tmp_path / "网格.shp"
    pyogrio.write_dataframe(_grid_frame(NAMES[:2]), path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    report = run_import(connection, registry, "grid", path)
    assert report.encoding == "gb18030"
    assert report.problems == []
    rows = table_rows(connection, metadata, "grid")
    assert [r["name"] for r in rows] == NAMES[:2]
    assert [r["kind"] for r in rows] == ["base", "base"]
    # Upper codes were filled from the grid code's prefix.
    assert {r["community_code"] for r in rows} == {CODES_COMMUNITY}


@pytest.mark.parametrize(
    ("filename", "sep", "bom", "codec", "read_as"),
    [
        ("楼栋.csv", ",", b"", "gb18030", "gb18030"),  # Excel's CSV in a Chinese locale
        # Excel's "Unicode 文本 (*.txt)": UTF-16 with a BOM and tabs, read as any CSV is.
        ("楼栋.txt", "\t", codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
    ],
    ids=["gb18030", "excel-unicode-text"],
)
def test_chinese_csv_as_excel_saves_it(
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    pyramid: None,
    tmp_path: Path,
    filename: str,
    sep: str,
    bom: bytes,
    codec: str,
    read_as: str,
) -> None:
    path = tmp_path / filename
    lines = [sep.join(["地址", "户数", "居住人口", "经度", "纬度", "村社区代码"])]
    lines += [
        sep.join(
            [name, f"{k + 10}", f"{k + 30}", f"120.30{k + 2}", f"31.57{k + 3}", CODES_COMMUNITY]
        )
        for k, name in enumerate(NAMES)
    ]
    path.write_bytes(bom + "\r\n".join(lines).encode(codec))
    report = run_import(connection, registry, "building", path, crs="cgcs2000")
    assert report.encoding == read_as
    assert report.problems == []
    assert [r["address"] for r in table_rows(connection, metadata, "building")] == NAMES


def test_undecodable_csv_is_refused_naming_the_row(
    connection: Connection, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    body = b"address,households,residents,lon,lat\n"
    body += "甲,1,1,120.301,31.571\n".encode()
    body += b"\xff\xfe\xfa,1,1,120.302,31.572\n"
    path.write_bytes(body)
    with pytest.raises(EncodingProblemError) as info:
        run_import(connection, registry, "building", path, crs="cgcs2000")
    assert "第 2 行" in info.value.detail_zh
    assert "UTF-8" in info.value.detail_zh


def test_wrong_encoding_option_is_refused(
    connection: Connection, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(
        "address,households,residents,lon,lat\n崇安寺,1,1,120.301,31.571\n".encode("gbk")
    )
    with pytest.raises(EncodingProblemError, match="utf-8"):
        run_import(connection, registry, "building", path, crs="cgcs2000", encoding="utf-8")


def test_sniff_refuses_latin1_that_is_not_chinese() -> None:
    assert encoding.sniff("崇安寺".encode("gbk")) == "gb18030"
    assert encoding.sniff("崇安寺".encode()) == "utf-8"
    assert encoding.sniff("Café Müller, Größe".encode("latin-1")) is None


def test_gcj02_points_are_stored_at_the_wgs84_truth(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    truth_lon = np.array([120.3012, 120.3055, 120.3091])
    truth_lat = np.array([31.5723, 31.5761, 31.5788])
    gcj_lon, gcj_lat = wgs84_to_gcj02(truth_lon, truth_lat)
    assert Geod(ellps="WGS84").inv(truth_lon[0], truth_lat[0], gcj_lon[0], gcj_lat[0])[2] > 100
    path = tmp_path / "amap.csv"
    rows = ["address,households,residents,lng,lat,community_code"]
    rows += [
        f"点{k},1,1,{float(gcj_lon[k])!r},{float(gcj_lat[k])!r},{CODES_COMMUNITY}" for k in range(3)
    ]
    path.write_text("\n".join(rows), encoding="utf-8")
    report = run_import(connection, registry, "building", path, crs="gcj02")
    assert report.problems == []
    geod = Geod(ellps="GRS80")
    for k, row in enumerate(table_rows(connection, metadata, "building")):
        point = row["geom"]
        assert isinstance(point, Point)
        metres = geod.inv(point.x, point.y, truth_lon[k], truth_lat[k])[2]
        assert metres < 0.05, metres


def test_geojson_labelled_wgs84_may_be_read_as_gcj02_but_cgcs_gpkg_may_not(
    connection: Connection, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    frame = _grid_frame(NAMES[:1])
    gpkg = tmp_path / "grids.gpkg"
    pyogrio.write_dataframe(frame, gpkg)
    with pytest.raises(ImportUsageError, match="不一致"):
        run_import(connection, registry, "grid", gpkg, crs="gcj02")
    geojson = tmp_path / "grids.geojson"
    pyogrio.write_dataframe(frame.set_crs("EPSG:4326", allow_override=True), geojson)
    report = run_import(connection, registry, "grid", geojson, crs="wgs84")
    assert report.crs == "wgs84"


def test_csv_without_crs_is_a_usage_error(
    connection: Connection, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = tmp_path / "b.csv"
    path.write_text("address,households,residents,lon,lat\n甲,1,1,120.301,31.571\n")
    with pytest.raises(ImportUsageError, match="--crs"):
        run_import(connection, registry, "building", path)


def test_excel_with_numeric_codes_and_mapped_columns(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["门牌", "户数", "人口", "X坐标", "Y坐标", "社区"])
    sheet.append(["崇安寺1号", 12, 30, 120.3021, 31.5731, int(CODES_COMMUNITY)])
    sheet.append(["崇安寺2号", 8, 21.0, 120.3022, 31.5732, int(CODES_COMMUNITY)])
    path = tmp_path / "楼栋.xlsx"
    book.save(path)
    report = run_import(
        connection,
        registry,
        "building",
        path,
        crs="wgs84",
        mapping=("门牌=address", "人口=residents", "X坐标=lon", "Y坐标=lat", "社区=community_code"),
    )
    assert report.problems == []
    rows = table_rows(connection, metadata, "building")
    assert [(r["address"], r["households"], r["residents"]) for r in rows] == [
        ("崇安寺1号", 12, 30),
        ("崇安寺2号", 8, 21),
    ]
    assert rows[0]["township_code"] == "320213001"
    assert math.isclose(rows[1]["geom"].x, 120.3022, abs_tol=1e-12)


def test_arcgis_epoch_milliseconds_are_read_as_times(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    """ArcGIS's GeoJSON gives a date field as epoch milliseconds (GDAL reads an integer
    column); 13 digits are milliseconds, 10 seconds, another length is refused by row."""
    frame = _grid_frame(NAMES[:3])
    beijing_midnight = 1746028800000  # 2025-05-01T00:00+08:00
    frame["生效时间"] = np.array([beijing_midnight, beijing_midnight // 1000, 174602880000])
    path = tmp_path / "arcgis.geojson"
    pyogrio.write_dataframe(frame, path, driver="GeoJSON")
    with pytest.raises(ImportRefusedError) as caught:
        run_import(connection, registry, "grid", path, crs="cgcs2000")
    assert [(p.row, p.field) for p in caught.value.report.problems] == [(3, "valid_from")]
    frame = frame.iloc[:2]
    pyogrio.write_dataframe(frame, path, driver="GeoJSON")
    run_import(connection, registry, "grid", path, crs="cgcs2000")
    starts = {r["valid_from"].isoformat() for r in table_rows(connection, metadata, "grid")}
    assert starts == {"2025-04-30T16:00:00+00:00"}


def test_map_to_unknown_column_is_a_usage_error(
    connection: Connection, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    path = tmp_path / "b.csv"
    path.write_text("门牌,households,residents,lon,lat\n甲,1,1,120.301,31.571\n")
    with pytest.raises(ImportUsageError, match="nonsense"):
        run_import(connection, registry, "building", path, crs="wgs84", mapping=("门牌=nonsense",))


def test_gbk_shapefile_export_says_so_and_re_imports(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    from gridgov.layers.io.exporter import ExportOptions, export_layer
    from gridgov.layers.io.formats import Format

    source = tmp_path / "in.shp"
    pyogrio.write_dataframe(_grid_frame(NAMES[:2]), source, encoding="UTF-8")
    run_import(connection, registry, "grid", source)
    out = tmp_path / "gbk.shp"
    export_layer(connection, registry, "grid", out, ExportOptions(Format.SHP, encoding="gbk"))
    assert out.with_suffix(".cpg").read_text().strip().upper() in {"GBK", "CP936", "936"}
    assert "梁溪区崇安寺网格".encode("gbk") in out.with_suffix(".dbf").read_bytes()
    report = run_import(connection, registry, "grid", out, mode="replace")
    assert report.encoding == "gb18030"
    assert [r["name"] for r in table_rows(connection, metadata, "grid")] == NAMES[:2]


def test_geojson_crs_member_that_contradicts_the_crs_option_is_refused(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    """A GeoJSON *file* may still carry a ``crs`` member (GDAL and QGIS write one): it is
    read like a ``.prj``, and a file whose member says another CRS than ``--crs`` is
    refused, nothing written."""
    import json

    frame = _grid_frame(NAMES[:1]).to_crs("EPSG:4549")
    doc = json.loads(frame.to_json())
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4549"}}
    path = tmp_path / "projected.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ImportUsageError, match="不一致"):
        run_import(connection, registry, "grid", path, crs="gcj02")
    assert table_rows(connection, metadata, "grid") == []
    report = run_import(connection, registry, "grid", path)  # the member alone: honoured
    assert report.rows_written == 1
    assert report.crs == "EPSG:4549"
