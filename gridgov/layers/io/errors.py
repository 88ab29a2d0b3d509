"""Errors of imports and exports; each says, Chinese first, what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridgov.errors import InvalidInputError

if TYPE_CHECKING:
    from gridgov.layers.io.report import ImportReport


class ImportUsageError(InvalidInputError):
    """The command itself is wrong (bad --map, a CRS that contradicts the file, …)."""

    code = "import-usage"
    title_zh = "导入参数错误"
    title_en = "Import usage error"


class UnreadableFileError(InvalidInputError):
    """The file cannot be read at all: unknown format, corrupt, or undecodable text."""

    code = "unreadable-file"
    title_zh = "文件无法读取"
    title_en = "Unreadable file"


class EncodingProblemError(UnreadableFileError):
    """Text that decodes neither as UTF-8 nor as GB18030 Chinese: never stored as mojibake."""

    code = "encoding"
    title_zh = "文字编码错误"
    title_en = "Text encoding problem"


class ImportRefusedError(InvalidInputError):
    """Rows failed validation and nothing was written; ``report`` lists every problem."""

    code = "import-refused"
    title_zh = "导入被拒绝"
    title_en = "Import refused"

    def __init__(self, report: ImportReport) -> None:
        # A problem of the whole file (a required column missing) is named: "0 rows have
        # problems" said nothing of it.
        whole_file = [p for p in report.problems if p.row is None]
        zh: list[str] = []
        en: list[str] = []
        if whole_file:
            more = len(whole_file) - 1
            zh.append(whole_file[0].reason_zh + (f"（另有 {more} 个文件问题）" if more else ""))
            en.append(whole_file[0].reason_en + (f" (and {more} more)" if more else ""))
        if report.rows_rejected or not whole_file:
            zh.append(f"{report.rows_rejected} 行有问题")
            en.append(f"{report.rows_rejected} rows have problems")
        super().__init__(
            "；".join(zh) + "，未写入任何数据",
            "; ".join(en) + "; nothing was written",
            public={"layer": report.layer, "rows_read": report.rows_read},
        )
        self.report = report
