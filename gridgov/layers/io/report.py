"""What an import found and did: every problem with its row, field and reason."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One reason a row (1-based record number, header not counted) cannot be stored.

    ``row`` is None for problems of the whole file; ``kind`` is a short stable key used
    to count problems by reason in summaries.
    """

    row: int | None
    field: str | None
    kind: str
    reason_zh: str
    reason_en: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "field": self.field,
            "kind": self.kind,
            "reason_zh": self.reason_zh,
            "reason_en": self.reason_en,
        }


@dataclass
class ImportReport:
    layer: str
    mode: str
    rows_read: int = 0
    rows_written: int = 0
    problems: list[Problem] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)
    encoding: str | None = None
    crs: str | None = None
    rejects_file: str | None = None
    header_row: int = 1  # line (CSV) or sheet row (Excel) of the header; above it a title
    rows_empty: int = 0  # rows with every cell blank: skipped
    sheet: str | None = None  # the Excel sheet (or GeoPackage layer) read
    other_sheets: list[str] = field(default_factory=list)  # the file's sheets not read

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems if p.row is not None})

    @property
    def rows_rejected(self) -> int:
        return len(self.rejected_rows)

    def by_kind(self) -> dict[str, int]:
        """Rejected problems counted by reason, most common first."""
        return dict(Counter(p.kind for p in self.problems).most_common())

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "mode": self.mode,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "problems_by_kind": self.by_kind(),
            "ignored_fields": self.ignored_fields,
            "header_row": self.header_row,
            "rows_empty": self.rows_empty,
            "sheet": self.sheet,
            "other_sheets": self.other_sheets,
            "encoding": self.encoding,
            "crs": self.crs,
            "problems": [p.as_dict() for p in self.problems],
        }


REJECTS_HEADER = ["row", "reasons_zh", "reasons_en"]  # then the row's own columns


def rejects_line(row: int, problems: list[Problem], values: Iterable[object]) -> list[object]:
    """One refused row of a rejects file: its number, all its reasons, its values (one
    line per row, so that the file, once corrected, can be imported again)."""
    return [
        row,
        "；".join(p.reason_zh for p in problems),
        "; ".join(p.reason_en for p in problems),
        *values,
    ]


def write_rejects_file(path: Path, header: list[str], rows: Iterable[list[object]]) -> None:
    """A rejects file: CSV in UTF-8 with a BOM, so that Excel shows the Chinese; a lone
    surrogate (refused for it) is written as its escape, ``\\ud800``; None as blank."""
    with path.open("w", encoding="utf-8-sig", errors="backslashreplace", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if c is None else c for c in row] for row in rows)
