"""The overview map's import form (数据导入) in real Chromium: a 12345 ledger, as a township
office saves it from Excel (GBK, Chinese headers and labels), tried, then imported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser
from sqlalchemy import Engine, text

from tests.api.maps.pages import Watched, open_page
from tests.api.maps.test_overview_page import READY, overview

ANSWERED = (
    "document.querySelector('#gg-import-result .gg-import-good, #gg-import-result .gg-import-bad')"
)
__all__ = ["overview"]  # the overview page's fixture, shared


@pytest.fixture
def points(engine: Engine) -> Iterator[list[tuple[str, float, float]]]:
    """A point inside each of two current grids: (grid code, lon, lat); the incidents the
    test imports are removed afterwards (the demo city is shared by every page test)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p "
                "FROM grid WHERE valid_to IS NULL ORDER BY code LIMIT 2) g"
            )
        ).all()
    yield [(str(code), float(x), float(y)) for code, x, y in rows]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incident WHERE external_id LIKE 'WEB-%'"))


def _stored(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT external_id, grid_code, assign_method FROM incident "
                "WHERE external_id LIKE 'WEB-%'"
            )
        ).all()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def _answer(overview: Watched) -> str:
    overview.wait(ANSWERED)
    return overview.page.locator("#gg-import-result").inner_text()


def test_a_ledger_is_tried_then_imported_from_the_map(
    overview: Watched,
    engine: Engine,
    artifacts: Path,
    tmp_path: Path,
    points: list[tuple[str, float, float]],
) -> None:
    page = overview.page
    ledger = tmp_path / "12345台账.csv"
    rows = [(f"WEB-{i}", x, y) for i, (_code, x, y) in enumerate(points)]
    rows.append(("WEB-BAD", 200.0, 31.5))  # a longitude no place in China has
    lines = ["编号,经度,纬度,类别,来源,上报时间"] + [
        f"{ticket},{x},{y},矛盾纠纷,12345热线,2026/1/5 下午3:05" for ticket, x, y in rows
    ]
    ledger.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    layers = page.locator("#gg-import-layer option").all_inner_texts()
    assert layers[0] == "事件"  # the layer a township office loads daily comes first
    page.select_option("#gg-import-layer", "incident")
    page.set_input_files("#gg-import-file", str(ledger))
    page.select_option("#gg-import-crs", "cgcs2000")
    assert page.locator("#gg-import-dry").is_checked()  # a trial unless asked otherwise

    page.click("#gg-import-go")
    refused = _answer(overview)
    assert refused.startswith("导入被拒绝")
    assert "1 行有问题，未写入任何数据" in refused
    cells = page.locator(".gg-import-problems tbody tr").first.locator("td").all_inner_texts()
    assert cells[0] == "3"  # the ledger's own row number
    assert "坐标超出中国范围" in cells[2]
    assert _stored(engine) == {}
    with page.expect_download() as caught:  # the whole list, for Excel
        page.click("#gg-import-problems-csv")
    listed = Path(caught.value.path()).read_bytes().decode("utf-8-sig").splitlines()
    assert listed[0] == "行 (row),字段 (field),原因,reason"
    assert listed[1].startswith("3,lon/lat,坐标超出中国范围（东经73–136°，北纬18–54°）,")
    assert len(listed) == 2

    page.check("#gg-import-skip")
    page.click("#gg-import-go")
    tried = _answer(overview)
    assert tried.startswith("试导入完成，数据库未作改动：将写入 2 行")
    assert "拒绝 1 行" in tried
    assert "分派：网格内 2" in tried
    assert "编码 gb18030；坐标系 cgcs2000" in tried  # how the file was read
    assert _stored(engine) == {}
    overview.screenshot(artifacts, "map-import-dry-run.png")

    page.uncheck("#gg-import-dry")
    page.click("#gg-import-go")
    done = _answer(overview)
    assert done.startswith("导入完成：已写入 2 行")
    assert _stored(engine) == {
        f"WEB-{i}": (code, "inside") for i, (code, _x, _y) in enumerate(points)
    }
    overview.screenshot(artifacts, "map-import-done.png")

    page.click("#gg-import-go")  # the same ledger again changes nothing
    assert "已写入 0 行" in _answer(overview)
    assert "已存在未变 2 行" in _answer(overview)
    # The one HTTP error is the refused upload (which the browser logs); nothing else.
    assert [e.split()[0] for e in overview.http_errors] == ["422"], overview.http_errors
    assert [e for e in overview.console_errors if "status of 422" not in e] == []
    overview.http_errors.clear()
    overview.console_errors.clear()
    overview.assert_clean()


def test_only_accounts_that_may_change_a_layer_get_the_form_and_token(
    browser: Browser, live_url: str, viewer_token: str, live_auth: dict[str, str]
) -> None:
    viewer = open_page(browser, live_url, "/map", token=viewer_token)
    viewer.wait(READY)
    assert viewer.page.locator("#gg-import").count() == 0
    assert viewer_token not in viewer.page.content()
    viewer.page.context.close()
    page = httpx2.get(f"{live_url}/map", headers=live_auth)
    assert page.status_code == 200
    assert 'id="gg-import"' in page.text
    assert page.headers["cache-control"] == "no-store"  # it carries the session's token
