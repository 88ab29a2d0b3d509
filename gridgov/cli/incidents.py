"""``gridgov incidents``: reassign after a redraw, explain an assignment."""

from __future__ import annotations

import codecs
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridgov.cli.common import (
    SheetOption,
    TestOption,
    console,
    database_url,
    err_console,
    fail,
    unread_sheets_note,
)
from gridgov.errors import GridgovError, InvalidInputError
from gridgov.layers import incidents
from gridgov.layers.assignment import atoms_fresh, refresh_grid_units
from gridgov.layers.db import check_server, connect, make_engine
from gridgov.layers.incident_import import import_incidents
from gridgov.layers.io.errors import ImportRefusedError
from gridgov.layers.io.formats import Format, named_format
from gridgov.layers.io.importer import rejects_path_for
from gridgov.layers.io.readers import choose_part
from gridgov.layers.registry import default_registry
from gridgov.settings import Settings

app = typer.Typer(help="事件 (incidents): reassign, explain, import", no_args_is_help=True)


@app.command("reassign")
def reassign(
    since: Annotated[
        datetime | None,
        typer.Option(help="Grid / unit changes since this time (default: since the last run)."),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Re-evaluate every incident, not only touched ones.")
    ] = False,
    test: TestOption = False,
) -> None:
    """Re-run the assignment for incidents whose place and time a redraw touched."""
    settings = Settings()
    try:
        engine = make_engine(settings, database_url(settings, test))
        check_server(engine)
        with connect(engine) as conn, conn.begin():
            if not atoms_fresh(conn):  # grids or units written since the pieces were cut
                refresh_grid_units(conn)
            if everything:
                ids = None
            else:
                start = since or incidents.last_assignment(conn)
                if start is None:
                    raise InvalidInputError(
                        "没有分派记录，请用 --since 或 --all",
                        "nothing assigned yet: use --since or --all",
                    )
                ids = incidents.affected_by_changes(conn, start, settings.assign_tolerance_m)
            report = incidents.reassign(conn, settings.assign_tolerance_m, ids)
        engine.dispose()
    except GridgovError as error:
        raise fail(error) from error
    console.print(
        f"重新评估 (evaluated) {report.evaluated:,} 起事件，变更 (changed) {report.moved:,} 起；"
        f"方式 (by rule): {report.by_method}"
    )
    if report.moves:
        table = Table(title="网格变化 (moves between grids)")
        for column in ("from 原网格", "to 新网格", "incidents 事件数"):
            table.add_column(column)
        for before, after, count in report.moves[:30]:
            table.add_row(before or "—", after or "—（属地兜底 fallback）", f"{count:,}")
        console.print(table)
    if report.outside:
        console.print(
            f"[yellow]{len(report.outside)} 起事件已不在本市范围内 (now outside the city), "
            f"ids: {report.outside[:20]}[/]"
        )


@app.command("explain")
def explain(incident_id: int, test: TestOption = False) -> None:
    """Which rule placed an incident, against which grid version, how far away."""
    settings = Settings()
    try:
        engine = make_engine(settings, database_url(settings, test))
        with connect(engine) as conn:
            facts = incidents.explain(conn, incident_id)
        engine.dispose()
    except GridgovError as error:
        raise fail(error) from error
    console.print(facts["explanation_zh"])
    console.print(facts["explanation_en"])
    console.print_json(json.dumps(facts, default=str, ensure_ascii=False))


def _count_rows(path: Path, sheet: str | None = None) -> int | None:
    """About how many rows the file holds, for the progress bar (None: not known cheaply).

    CSV: its lines but the header (a line end is two bytes in UTF-16). GeoJSON: its
    ``"Feature"`` values (a property that says ``"Feature"`` would count too: it is only a
    progress bar). Excel: the sheet's recorded dimension, which openpyxl reads without
    reading the rows.
    """
    fmt = named_format(path)
    if not path.is_file():  # the import names the missing file
        return None
    if fmt is not None and fmt.excel:
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True)
            if sheet is None and len(book.sheetnames) > 1:
                book.close()
                return None  # the import picks the sheet by its header
            rows = book[choose_part(path, book.sheetnames, sheet, None)].max_row
            book.close()
        except Exception:  # unreadable: the import itself will say why
            return None
        return max(0, rows - 1) if rows else None
    if fmt not in (Format.CSV, Format.GEOJSON):
        return None
    token, header = (b"\n", 1) if fmt is Format.CSV else (b'"Feature"', 0)
    found, tail = 0, b""
    with path.open("rb") as handle:
        mark = handle.read(2)
        if fmt is Format.CSV and mark in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            token = b"\n\x00" if mark == codecs.BOM_UTF16_LE else b"\x00\n"
        handle.seek(0)
        for block in iter(lambda: handle.read(1 << 20), b""):
            joined = tail + block  # a token cut between two blocks is counted once
            found += joined.count(token)
            tail = joined[len(joined) - len(token) + 1 :]
    return max(0, found - header)


@app.command("import")
def import_command(
    path: Annotated[
        Path, typer.Argument(help="CSV (.csv, .txt), Excel (.xlsx, .xls) or GeoJSON file.")
    ],
    crs: Annotated[
        str | None,
        typer.Option(
            help="wgs84, cgcs2000, gcj02 (高德/腾讯/微信), bd09 (百度) or EPSG:n; default: a "
            "GeoJSON file's own, else wgs84"
        ),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="utf-8 / gbk / gb18030 / utf-16-le (else detected)")
    ] = None,
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="SRC=DEST, e.g. 事件类型=category")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Write the valid rows; list the rest.")
    ] = False,
    sheet: SheetOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="试导入：读取、检查、分派并写入后回滚，不留数据 (check everything, keep nothing).",
        ),
    ] = False,
    test: TestOption = False,
) -> None:
    """Import incidents of any size and assign each to its grid and units (one transaction)."""
    settings = Settings()
    rejects = rejects_path_for(path)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} 行"),
        TimeElapsedColumn(),
    )
    try:
        engine = make_engine(settings, database_url(settings, test))
        check_server(engine)
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("导入并分派 (importing)", total=_count_rows(path, sheet))
            with connect(engine) as conn, conn.begin() as transaction:
                report = import_incidents(
                    conn,
                    default_registry(),
                    path,
                    crs,
                    settings.assign_tolerance_m,
                    encoding=encoding,
                    mapping=tuple(mapping or ()),
                    skip_invalid=skip_invalid,
                    rejects_path=rejects,
                    progress=lambda n: progress.advance(task, n),
                    sheet=sheet,
                    dry_run=dry_run,
                )
                if dry_run:
                    transaction.rollback()
        engine.dispose()
    except ImportRefusedError as error:
        for problem in error.report.problems[:50]:
            err_console.print(
                f"第 {problem.row} 行 (row {problem.row}) {problem.field}: "
                f"{problem.reason_zh} ({problem.reason_en})",
                highlight=False,
            )
        more = len(error.report.problems) - 50
        if more > 0:
            err_console.print(f"……另有 {more} 个问题 (and {more} more)")
        err_console.print(f"按原因 (by reason): {error.report.by_kind()}")
        if note := unread_sheets_note(error.report):
            err_console.print(escape(note), highlight=False, soft_wrap=True)
        raise fail(error) from error
    except GridgovError as error:
        raise fail(error, code=2) from error
    if dry_run:
        console.print(
            "试导入 (dry run)：数据库未作任何改动；以下是导入将会得到的结果 "
            "(nothing was written: this is what the import would do)"
        )
    written = "将写入 (would write)" if dry_run else "写入 (written)"
    console.print(
        f"读取 (read) {report.rows_read:,} 行，{written} {report.rows_written:,}，"
        f"已存在未变 (unchanged) {report.rows_unchanged:,}，"
        f"空行跳过 (empty rows skipped) {report.rows_empty:,}，"
        f"拒绝 (rejected) {report.rows_rejected:,}；"
        f"分派方式 (by rule): {report.by_method}；"
        f"快速路径 (fast path) {report.assigned_fast:,}，精确引擎 (exact engine) "
        f"{report.assigned_exact:,}；坐标系 (CRS) {report.crs}"
    )
    if note := unread_sheets_note(report):
        console.print(escape(note), highlight=False, soft_wrap=True)
    if report.header_row > 1:
        console.print(
            f"表头在第 {report.header_row} 行，上面的标题行未导入；行号从表头下一行数起 "
            f"(the header is on line {report.header_row}; the title lines above it were "
            "not imported; rows are numbered from the line after the header)"
        )
    console.print(
        "用时 (seconds): " + "; ".join(f"{k} {v:.1f}" for k, v in report.seconds.items()),
        highlight=False,
    )
    if report.rejects_file:
        console.print(f"被拒绝的行及原因见 (rejected rows in) {report.rejects_file}")
