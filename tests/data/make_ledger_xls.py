"""Write ``ledger.xls``, the Excel 97-2003 workbook the .xls import tests read.

No library gridgov depends on writes .xls (calamine only reads it), so the file is kept
in the repository; this script is how it was made, with xlwt 1.3.0 in a scratch
environment (``pip install xlwt==1.3.0``; xlwt is unmaintained, so it is not one of
gridgov's dependencies): ``python tests/data/make_ledger_xls.py``.

Sheets: 填表说明 (instructions), 5月 (a title row, then incidents in WGS84 on the test
city of ``tests/small_city.py``: an id typed as a number, a date cell, a text time, an
empty row) and 楼栋 (buildings on the square of ``tests/io/conftest.py``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import xlwt  # type: ignore[import-not-found]


def main() -> None:
    book = xlwt.Workbook(encoding="utf-8")
    when = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm")
    notes = book.add_sheet("填表说明")
    notes.write(0, 0, "坐标为 WGS84 经纬度；每月一个工作表")
    may = book.add_sheet("5月")
    may.write_merge(0, 0, 0, 6, "2025年5月12345热线台账")
    for col, name in enumerate(["编号", "经度", "纬度", "类别", "来源", "上报时间", "描述"]):
        may.write(1, col, name)
    incidents: list[list[object]] = [
        [12345, 120.305, 31.575, "矛盾纠纷", "12345热线", datetime(2025, 5, 1, 9, 5), "噪声"],
        ["XLS-2", 120.315, 31.565, "safety_hazard", "grid_worker", "2025/5/2 14:30", "堆物"],
        [],
        ["XLS-3", 120.306, 31.576, "矛盾纠纷", "12345热线", datetime(2025, 5, 3, 10, 0), ""],
    ]
    for row, values in enumerate(incidents, start=2):
        for col, value in enumerate(values):
            may.write(
                row, col, value, when if isinstance(value, datetime) else xlwt.Style.default_style
            )
    buildings = book.add_sheet("楼栋")
    rows: list[list[object]] = [
        ["address", "households", "residents", "经度", "纬度", "community_code"],
        ["崇安寺1号", 12, 30, 120.3021, 31.5731, "320213001001"],
        ["崇安寺2号", 8, 21, 120.3022, 31.5732, 320213001001],
    ]
    for row, values in enumerate(rows):
        for col, value in enumerate(values):
            buildings.write(row, col, value)
    book.save(str(Path(__file__).with_name("ledger.xls")))


if __name__ == "__main__":
    main()
