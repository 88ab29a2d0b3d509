"""CSV records with fewer fields than the header are found, by counting or by parsing."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from gridgov.layers.io import readers
from gridgov.layers.io.csv_fields import ShortRecord, first_short_record
from gridgov.layers.io.errors import UnreadableFileError

# (text, the first short record as (line, fields) or None). Each text is also tried with
# a quoted first value, which sends it down the parsing way instead of the counting one.
CASES: dict[str, tuple[str, tuple[int, int] | None]] = {
    "full": ("a,b,c\n1,2,3\n4,5,\n", None),
    "short": ("a,b,c\n1,2,3\n4,5\n6,7,8\n", (3, 2)),
    "blank lines": ("a,b,c\n\n1,2,3\r\n\r\n \t \n4,5,6", None),
    "blank before the header": ("\n \na,b,c\n1,2,3\n", None),
    "short last line without a line break": ("a,b,c\n1,2,3\n4,5", (3, 2)),
    "a value broken by a line feed": ("a,b,c\n1,2,long\nvalue\n", (3, 1)),
    "header alone": ("a,b,c", None),
    "nothing": ("", None),
    "late short line": ("a,b,c\n" + "1,2,3\n" * 5000 + "1,2\n", (5002, 2)),
}


def _quoted(content: str) -> str:
    """The same records with the first data value quoted (line numbers unchanged)."""
    return content.replace("\n1,", '\n"1",', 1)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("quoted", [False, True], ids=["counted", "parsed"])
def test_short_records_are_found_both_ways(tmp_path: Path, case: str, quoted: bool) -> None:
    content, expected = CASES[case]
    if quoted:
        content = _quoted(content)
        assert '"' in content or "1," not in content
    path = tmp_path / "rows.csv"
    path.write_text(content, encoding="utf-8")
    found = first_short_record(path, ",", "utf-8")
    assert (None if found is None else (found.line, found.fields)) == expected
    assert first_short_record(io.StringIO(content), ",", "utf-8") == found
    if expected is None and content:
        # What passes is what pandas reads with every row whole.
        frame = pd.read_csv(io.StringIO(content), dtype=str, keep_default_na=False)
        assert len(frame.columns) == 3


def test_quoted_values_may_hold_separators_and_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('a,b,c\n"x,y",2,3\n"two\nlines",5,""\n', encoding="utf-8")
    assert first_short_record(path, ",", "utf-8") is None
    path.write_text('a,b,c\n"x,y",2,3\n"q",5\n', encoding="utf-8")
    assert first_short_record(path, ",", "utf-8") == ShortRecord(3, 2, 3, False)


def test_an_unclosed_quote_is_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "open.csv"
    path.write_text('a,b,c\n1,2,3\n"A1,120.3,31.5\n7,8,9\n', encoding="utf-8")
    assert first_short_record(path, ",", "utf-8") == ShortRecord(3, 1, 3, True)


def test_gb18030_and_other_separators(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("编号;名称;类别\n1;邻里噪声;纠纷\n2;东\n".encode("gb18030"))
    assert first_short_record(path, ";", "gb18030") == ShortRecord(3, 2, 3, False)
    assert first_short_record(path, ",", "gb18030") is None  # one field everywhere


def test_csv_chunks_refuses_a_short_record_by_line(tmp_path: Path) -> None:
    path = tmp_path / "事件.csv"
    path.write_text("编号,经度,纬度,描述\nA1,120.3,31.5,路灯\nA2,120.3,31.5\n", encoding="utf-8")
    with pytest.raises(UnreadableFileError) as caught:
        list(readers.csv_chunks(path, path.name, dtype=str, encoding="utf-8"))
    assert "事件.csv 第 3 行（含表头）只有 3 个字段，表头有 4 个" in caught.value.detail_zh
    assert "line 3 (counting the header) has 3 fields, the header 4" in caught.value.detail_en


@pytest.mark.parametrize("quote", ["", '"'])
def test_the_header_is_the_first_record_after_the_skipped_ones(tmp_path: Path, quote: str) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text(f"{quote}台账{quote}\n\na,b,c\n1,2,3\n4,5\n", encoding="utf-8")
    assert first_short_record(path, ",", "utf-8", skip=2) == ShortRecord(5, 2, 3, False)
    # Taken from the title (one field), the header would hide the short row.
    assert first_short_record(path, ",", "utf-8") is None
