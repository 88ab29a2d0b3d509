"""Excel sheets read whole by calamine or streamed by openpyxl give the same rows."""

from __future__ import annotations

import zipfile
from datetime import date, datetime, time
from pathlib import Path

import pytest
from openpyxl import Workbook

from gridgov.layers.io import readers
from gridgov.layers.io.errors import UnreadableFileError

CELLS: list[list[object]] = [
    ["编号", "经度", "上报时间", "日期", "标志", "公式", "大编号", "文本", "零"],
    [
        12345,
        120.305,
        datetime(2025, 6, 1, 10, 0),
        date(2025, 6, 2),
        True,
        "=1+1",
        20251012000123,
        "０１ 矛盾",
        -0.0,
    ],
    [None, 120, datetime(2025, 6, 1, 10, 0, 0, 500000), None, False, "=NA()", 1e20, " x ", 0.5],
]


def _workbook(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "事件"
    for row in CELLS:
        sheet.append(row)
    sheet.append(["#N/A", "#DIV/0!"])
    for cell in sheet[4]:
        cell.data_type = "e"  # formula errors, as Excel stores them
    book.create_sheet("其他").append(["别的表"])
    book.save(path)
    return path


def test_both_readers_give_the_same_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _workbook(tmp_path / "e.xlsx")
    whole = list(readers.excel_rows(path))
    monkeypatch.setattr(readers, "EXCEL_WHOLE_BYTES", 0)  # every workbook streamed
    streamed = list(readers.excel_rows(path))
    assert whole == streamed
    assert whole[1][:5] == (
        12345,
        120.305,
        datetime(2025, 6, 1, 10, 0),
        datetime.combine(date(2025, 6, 2), time()),
        True,
    )
    assert whole[1][6:] == (20251012000123, "０１ 矛盾", 0)
    assert whole[2][:4] == (None, 120, datetime(2025, 6, 1, 10, 0, 0, 500000), None)
    assert whole[2][6:] == (1e20, " x ", 0.5)
    assert whole[3][:2] == (None, None)  # a formula's error holds no value
    # Formulas never calculated by Excel have no value to read, in either reader.
    assert whole[1][5] is None
    assert whole[2][5] is None


def test_a_named_sheet_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _workbook(tmp_path / "e.xlsx")
    assert list(readers.excel_rows(path, "其他")) == [("别的表",)]
    monkeypatch.setattr(readers, "EXCEL_WHOLE_BYTES", 0)
    assert list(readers.excel_rows(path, "其他")) == [("别的表",)]


def _damaged(tmp_path: Path, name: str) -> Path:
    """A sound zip whose first sheet's XML breaks off."""
    good = _workbook(tmp_path / "good.xlsx")
    path = tmp_path / name
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            target.writestr(item, data)
    return path


@pytest.mark.parametrize("whole_bytes", [readers.EXCEL_WHOLE_BYTES, 0])
def test_a_damaged_workbook_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(readers, "EXCEL_WHOLE_BYTES", whole_bytes)
    cut = tmp_path / "截断.xlsx"
    cut.write_bytes(_workbook(tmp_path / "good.xlsx").read_bytes()[:3000])
    for path in (_damaged(tmp_path, "坏表.xlsx"), cut):
        with pytest.raises(UnreadableFileError) as caught:
            list(readers.excel_rows(path))
        assert path.name in caught.value.detail_zh
