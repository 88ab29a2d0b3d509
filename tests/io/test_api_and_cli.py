"""The HTTP routes and the `gridgov layer` commands: same code paths, thin wrappers."""

from __future__ import annotations

import codecs
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import Connection, Engine, MetaData, text
from typer.testing import CliRunner

from gridgov.api.app import create_app
from gridgov.api.deps import get_connection
from gridgov.cli import app as cli
from gridgov.layers.accounts import User
from gridgov.layers.registry import Registry
from gridgov.settings import Settings
from tests.conftest import ClientAs, TokenFor
from tests.factories import insert_row, valid_row
from tests.io.conftest import CODES_COMMUNITY, count, grid_box, table_rows

runner = CliRunner()


def _grid_geojson(codes: list[str], households: int = 300) -> bytes:
    frame = gpd.GeoDataFrame(
        {"网格编码": codes, "名称": [f"网格{c[-3:]}" for c in codes], "households": households},
        geometry=[grid_box(k) for k in range(len(codes))],
        crs="EPSG:4326",
    )
    buffer = io.BytesIO()
    pyogrio.write_dataframe(frame, buffer, driver="GeoJSON")
    return buffer.getvalue()


def test_api_import_then_export(
    client: TestClient, connection: Connection, metadata: MetaData, pyramid: None
) -> None:
    body = _grid_geojson([f"{CODES_COMMUNITY}001", f"{CODES_COMMUNITY}002"])
    response = client.post(
        "/layers/grid/import",
        files={"file": ("网格.geojson", body, "application/geo+json")},
        data={"crs": "wgs84", "map": ["名称=name"]},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (2, 2, 0)
    assert [r["name"] for r in table_rows(connection, metadata, "grid")] == ["网格001", "网格002"]

    exported = client.get("/layers/grid/export", params={"format": "geojson", "crs": "gcj02"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/geo+json")
    assert 'filename="grid.geojson"' in exported.headers["content-disposition"]
    features = json.loads(exported.content)["features"]
    assert [f["properties"]["code"] for f in features] == [
        f"{CODES_COMMUNITY}001",
        f"{CODES_COMMUNITY}002",
    ]
    # GCJ-02 is offset from the stored CGCS2000 by hundreds of metres in Wuxi.
    x0 = features[0]["geometry"]["coordinates"][0][0][0][0]
    assert abs(x0 - grid_box(0).bounds[0]) > 0.003 or abs(x0 - grid_box(0).bounds[2]) > 0.003

    shp = client.get("/layers/grid/export", params={"format": "shp", "encoding": "gbk"})
    assert shp.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(shp.content)) as archive:
        assert archive.read("grid.cpg").decode().upper().startswith(("GBK", "CP936", "936"))
        assert {"grid.shp", "grid.dbf", "grid.shx", "grid.prj"} <= set(archive.namelist())


def test_api_dry_run_answers_the_report_and_keeps_nothing(
    client: TestClient, connection: Connection, metadata: MetaData, pyramid: None
) -> None:
    body = _grid_geojson([f"{CODES_COMMUNITY}001", f"{CODES_COMMUNITY}002"])
    upload = {"file": ("网格.geojson", body, "application/geo+json")}
    trial = client.post(
        "/layers/grid/import", files=upload, data={"crs": "wgs84", "dry_run": "true"}
    )
    assert trial.status_code == 200, trial.text
    report = trial.json()
    assert (report["rows_written"], report["dry_run"]) == (2, True)
    assert count(connection, metadata, "grid") == 0
    logged = connection.execute(
        text("SELECT detail FROM audit_log WHERE action = 'import' ORDER BY id DESC LIMIT 1")
    ).scalar_one()
    assert (logged["rows_written"], logged["dry_run"]) == (2, True)
    imported = client.post("/layers/grid/import", files=upload, data={"crs": "wgs84"})
    assert imported.status_code == 200, imported.text
    assert (imported.json()["rows_written"], imported.json()["dry_run"]) == (2, False)
    assert count(connection, metadata, "grid") == 2


def test_api_refusal_is_422_with_every_problem_and_nothing_written(
    client: TestClient, connection: Connection, metadata: MetaData, pyramid: None
) -> None:
    body = _grid_geojson([f"{CODES_COMMUNITY}001", "12345"], households=-1)
    response = client.post("/layers/grid/import", files={"file": ("g.geojson", body)})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["rows_rejected"] == 2
    rows = {(e["row"], e["field"]) for e in problem["errors"]}
    assert {(1, "households"), (2, "households"), (2, "code")} <= rows
    assert all(e["reason_zh"] and e["reason_en"] for e in problem["errors"])
    assert "SELECT" not in response.text
    assert count(connection, metadata, "grid") == 0


def test_api_refusal_names_a_missing_column(
    client: TestClient, connection: Connection, metadata: MetaData, pyramid: None
) -> None:
    """A problem of the whole file is the refusal's message; it said "0 rows have
    problems"."""
    frame = gpd.GeoDataFrame(
        {"名称": ["无编码网格"]}, geometry=[grid_box(0)], crs="EPSG:4326"
    )  # no 网格编码
    buffer = io.BytesIO()
    pyogrio.write_dataframe(frame, buffer, driver="GeoJSON")
    response = client.post("/layers/grid/import", files={"file": ("g.geojson", buffer.getvalue())})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["detail"].startswith("文件缺少必填列网格代码（code）")
    assert "个文件问题），未写入任何数据" in problem["detail"]  # the codes it derives from it
    assert "0 行有问题" not in problem["detail"]
    assert count(connection, metadata, "grid") == 0


def _building_workbook() -> bytes:
    """A 楼栋台账 workbook whose first sheet is instructions, then two data sheets."""
    book = Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "填表说明"
    notes.append(["坐标为 WGS84 经纬度"])
    for name, number in (("一期", 1), ("二期", 3)):
        sheet = book.create_sheet(name)
        sheet.append(["address", "households", "residents", "lon", "lat", "community_code"])
        for k in range(number):
            sheet.append([f"{name}{k}号", 10, 20, 120.3021 + k * 1e-4, 31.5731, CODES_COMMUNITY])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("sheet", "read", "others", "rows"),
    [
        (None, "一期", ["填表说明", "二期"], 1),  # the first sheet with a header
        ("二期", "二期", ["填表说明", "一期"], 3),
        ("3", "二期", ["填表说明", "一期"], 3),
    ],
)
def test_api_import_reads_the_sheet_asked_for_and_names_the_others(
    client: TestClient,
    connection: Connection,
    metadata: MetaData,
    pyramid: None,
    sheet: str | None,
    read: str,
    others: list[str],
    rows: int,
) -> None:
    response = client.post(
        "/layers/building/import",
        files={"file": ("楼栋.xlsx", _building_workbook())},
        data={"crs": "wgs84"} | ({} if sheet is None else {"sheet": sheet}),
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["sheet"], report["other_sheets"], report["rows_written"]) == (read, others, rows)
    assert count(connection, metadata, "building") == rows


def test_api_imports_a_sheet_of_an_excel_97_2003_workbook(
    client: TestClient, connection: Connection, metadata: MetaData, pyramid: None
) -> None:
    ledger = Path(__file__).parents[1] / "data" / "ledger.xls"  # make_ledger_xls.py
    response = client.post(
        "/layers/building/import",
        files={"file": ("台账.xls", ledger.read_bytes())},
        data={"crs": "wgs84", "sheet": "楼栋"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows_written"] == 2
    rows = table_rows(connection, metadata, "building")
    assert sorted((r["address"], r["households"], r["community_code"]) for r in rows) == [
        ("崇安寺1号", 12, CODES_COMMUNITY),
        ("崇安寺2号", 8, CODES_COMMUNITY),  # typed as a number in the sheet
    ]


def test_api_imports_excel_unicode_text(
    client: TestClient, connection: Connection, metadata: MetaData, pyramid: None
) -> None:
    # Excel's "Unicode 文本 (*.txt)": UTF-16 with a BOM, tabs; it was refused by its name.
    lines = ["address\thouseholds\tresidents\tlon\tlat\tcommunity_code"]
    lines += [f"崇安寺{k}号\t10\t20\t120.302{k}\t31.5731\t{CODES_COMMUNITY}" for k in (1, 2)]
    body = codecs.BOM_UTF16_LE + "\r\n".join(lines).encode("utf-16-le")
    response = client.post(
        "/layers/building/import", files={"file": ("楼栋.txt", body)}, data={"crs": "wgs84"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows_written"] == 2
    rows = table_rows(connection, metadata, "building")
    assert sorted(r["address"] for r in rows) == ["崇安寺1号", "崇安寺2号"]
    refused = client.post(
        "/layers/building/import", files={"file": ("楼栋.dbf", b"x")}, data={"crs": "wgs84"}
    )
    assert refused.status_code == 422, refused.text
    assert ".txt" in refused.json()["detail"]


def test_a_sheet_or_layer_the_file_lacks_is_refused_with_the_ones_it_has(
    client: TestClient, connection: Connection, metadata: MetaData, pyramid: None, tmp_path: Path
) -> None:
    refused = client.post(
        "/layers/building/import",
        files={"file": ("楼栋.xlsx", _building_workbook())},
        data={"crs": "wgs84", "sheet": "三期"},
    )
    assert refused.status_code == 422, refused.text
    assert "1. 填表说明、2. 一期、3. 二期" in refused.json()["detail"]
    not_a_workbook = client.post(
        "/layers/grid/import",
        files={"file": ("g.geojson", _grid_geojson([f"{CODES_COMMUNITY}001"]))},
        data={"sheet": "1"},
    )
    assert not_a_workbook.status_code == 422
    assert "--sheet" in not_a_workbook.json()["detail"]
    # A GeoPackage's layers are chosen the same way.
    package = tmp_path / "grids.gpkg"
    for name, codes in (("old", ["001"]), ("new", ["001", "002"])):
        frame = gpd.read_file(io.BytesIO(_grid_geojson([CODES_COMMUNITY + c for c in codes])))
        pyogrio.write_dataframe(frame, package, layer=name, driver="GPKG")
    answer = client.post(
        "/layers/grid/import",
        files={"file": ("grids.gpkg", package.read_bytes())},
        data={"sheet": "new", "crs": "wgs84"},
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["sheet"], answer.json()["other_sheets"]) == ("new", ["old"])
    assert count(connection, metadata, "grid") == 2
    assert count(connection, metadata, "building") == 0


def test_api_unknown_layer_is_404(client: TestClient) -> None:
    response = client.post("/layers/nope/import", files={"file": ("a.geojson", b"{}")})
    assert response.status_code == 404
    assert client.get("/layers/nope/export").status_code == 404


def test_api_upload_over_the_limit_is_413(
    settings: Settings, connection: Connection, admin_user: User, token_for: TokenFor
) -> None:
    application: FastAPI = create_app(settings.model_copy(update={"max_upload_bytes": 2000}))

    def shared() -> Iterator[Connection]:
        with connection.begin_nested():
            yield connection

    application.dependency_overrides[get_connection] = shared
    headers = {"Authorization": f"Bearer {token_for(admin_user)}"}
    with TestClient(application, headers=headers) as client:
        response = client.post("/layers/grid/import", files={"file": ("big.geojson", b" " * 5000)})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert "上限" in response.json()["detail"]


def test_api_export_masks_personal_data_by_default(
    client: TestClient,
    client_as: ClientAs,
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    pyramid: None,
) -> None:
    insert_row(
        connection,
        metadata,
        "rental_housing",
        valid_row(
            registry.get("rental_housing"),
            grid_code=None,
            landlord_name="张三",
            landlord_id_number="320202198001011234",
            landlord_phone="13812345678",
        ),
    )
    response = client.get("/layers/rental_housing/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    text_body = response.content.decode("utf-8-sig")
    assert "张*" in text_body
    assert "3202**********1234" in text_body
    assert "138****5678" in text_body
    assert "320202198001011234" not in text_body
    unmasked: dict[str, str | bool] = {"format": "csv", "include_personal": True}
    # Admins too need the personal_data grant to see personal data in clear.
    assert client.get("/layers/rental_housing/export", params=unmasked).status_code == 403
    granted = client_as("admin", grants=["personal_data"])
    full = granted.get("/layers/rental_housing/export", params=unmasked)
    assert "320202198001011234" in full.content.decode("utf-8-sig")


@pytest.fixture
def committed(committed_pyramid: Engine) -> Engine:
    return committed_pyramid


def test_cli_import_and_export(committed: Engine, metadata: MetaData, tmp_path: Path) -> None:
    source = tmp_path / "网格.geojson"
    source.write_bytes(_grid_geojson([f"{CODES_COMMUNITY}001", f"{CODES_COMMUNITY}002"]))
    result = runner.invoke(cli, ["layer", "import", "grid", str(source), "--test"])
    assert result.exit_code == 0, result.output
    assert "写入 rows written" in result.output
    with committed.connect() as conn:
        assert count(conn, metadata, "grid") == 2

    out = tmp_path / "export.gpkg"
    result = runner.invoke(
        cli,
        [
            "layer",
            "export",
            "grid",
            str(out),
            "--crs",
            "EPSG:4549",
            "--test",
            "--where-code",
            "320213001",
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pyogrio.read_dataframe(out)
    assert len(frame) == 2
    assert frame.crs.to_epsg() == 4549
    assert frame.total_bounds[0] > 100_000  # metres, not degrees


def test_cli_dry_run_reports_the_import_and_keeps_nothing(
    committed: Engine, metadata: MetaData, tmp_path: Path
) -> None:
    source = tmp_path / "网格.geojson"
    source.write_bytes(_grid_geojson([f"{CODES_COMMUNITY}001", f"{CODES_COMMUNITY}002"]))
    args = ["layer", "import", "grid", str(source), "--test"]
    trial = runner.invoke(cli, [*args, "--dry-run"])
    assert trial.exit_code == 0, trial.output
    assert "试导入 (dry run)：数据库未作任何改动" in trial.output
    assert re.search(r"将写入 rows it would write\s+2\s", trial.output), trial.output
    with committed.connect() as conn:
        assert count(conn, metadata, "grid") == 0
    imported = runner.invoke(cli, args)
    assert imported.exit_code == 0, imported.output
    assert re.search(r"\s写入 rows written\s+2\s", imported.output), imported.output
    assert "试导入" not in imported.output
    with committed.connect() as conn:
        assert count(conn, metadata, "grid") == 2


def test_cli_exit_codes(committed: Engine, metadata: MetaData, tmp_path: Path) -> None:
    source = tmp_path / "grids.geojson"
    source.write_bytes(_grid_geojson([f"{CODES_COMMUNITY}001"], households=-3))
    refused = runner.invoke(cli, ["layer", "import", "grid", str(source), "--test"])
    assert refused.exit_code == 1, refused.output
    assert "不能小于 0" in refused.output
    unknown = runner.invoke(cli, ["layer", "import", "nope", str(source), "--test"])
    assert unknown.exit_code == 2
    missing = runner.invoke(cli, ["layer", "import", "grid", str(tmp_path / "x.shp"), "--test"])
    assert missing.exit_code == 2
    bad_map = runner.invoke(
        cli, ["layer", "import", "grid", str(source), "--map", "名称=nonsense", "--test"]
    )
    assert bad_map.exit_code == 2
    assert "nonsense" in bad_map.output
    with committed.connect() as conn:
        assert count(conn, metadata, "grid") == 0


def test_cli_skip_invalid_writes_rejects_beside_the_input(
    committed: Engine, metadata: MetaData, tmp_path: Path
) -> None:
    frame = gpd.read_file(io.BytesIO(_grid_geojson([f"{CODES_COMMUNITY}001", "999"])))
    source = tmp_path / "grids.gpkg"
    pyogrio.write_dataframe(frame, source)
    result = runner.invoke(
        cli, ["layer", "import", "grid", str(source), "--skip-invalid", "--test"]
    )
    assert result.exit_code == 0, result.output
    rejects = tmp_path / "grids.rejects.csv"
    assert rejects.is_file()
    assert "应为 15 位数字" in rejects.read_text("utf-8-sig")
    with committed.connect() as conn:
        assert count(conn, metadata, "grid") == 1
