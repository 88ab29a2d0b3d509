"""``gridgov layer``: import a file into any registry layer, export any layer to a file.

Exit codes: 0 done; 1 rows were refused (nothing written) or the write conflicts with other
layers; 2 usage errors (unknown layer, unreadable file, a CRS or --map that makes no sense).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Connection

from gridgov.cli import incidents
from gridgov.cli.common import (
    SheetOption,
    TestOption,
    console,
    database_url,
    err_console,
    fail,
    unread_sheets_note,
)
from gridgov.errors import GridgovError, InvalidInputError, NotFoundError
from gridgov.layers.db import connect, make_engine
from gridgov.layers.io.errors import ImportRefusedError, ImportUsageError, UnreadableFileError
from gridgov.layers.io.exporter import ExportOptions, export_layer
from gridgov.layers.io.formats import export_format
from gridgov.layers.io.importer import ImportOptions, import_file, rejects_path_for
from gridgov.layers.io.report import ImportReport
from gridgov.layers.registry import default_registry
from gridgov.settings import Settings

app = typer.Typer(help="图层导入导出 (layer import / export)", no_args_is_help=True)

USAGE_ERRORS = (ImportUsageError, UnreadableFileError, NotFoundError)
PHASES = {
    "read": "读取 read",
    "validate": "校验 validate",
    "stage": "暂存 stage",
    "check": "数据库校验 check",
    "write": "写入 write",
}


@contextmanager
def _transaction(test: bool, dry_run: bool = False) -> Iterator[Connection]:
    """One connection and one transaction: committed only if the block succeeds (and
    never for a ``dry_run``)."""
    settings = Settings()
    engine = make_engine(settings, database_url(settings, test))
    try:
        with connect(engine) as conn, conn.begin() as transaction:
            yield conn
            if dry_run:
                transaction.rollback()
    finally:
        engine.dispose()


def _exit_code(error: GridgovError) -> int:
    if isinstance(error, USAGE_ERRORS):
        return 2
    if isinstance(error, InvalidInputError) and not isinstance(error, ImportRefusedError):
        return 2
    return 1


@app.command("import")
def layer_import(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. grid (see `gridgov layers list`).")],
    path: Annotated[
        Path, typer.Argument(help="GeoJSON, GeoPackage, .shp / .zip, CSV, .xlsx or .xls")
    ],
    crs: Annotated[
        str | None, typer.Option(help="Input CRS: wgs84, cgcs2000, gcj02, bd09 or EPSG:n.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding (utf-8, gbk, gb18030); default: detect.")
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="SRC=DEST: source field SRC fills layer column DEST."),
    ] = None,
    mode: Annotated[str, typer.Option(help="append, or replace the layer's rows.")] = "append",
    skip_invalid: Annotated[
        bool, typer.Option(help="Write the valid rows; list refused ones in <stem>.rejects.csv.")
    ] = False,
    sheet: SheetOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="试导入：读取、检查并写入后回滚，不留数据 (check everything, keep nothing).",
        ),
    ] = False,
    test: TestOption = False,
) -> None:
    """Import a file into a layer: every row is checked before anything is written.

    Incidents are imported as by ``gridgov incidents import``, which assigns each one."""
    if layer == "incident":
        if mode != "append":
            raise fail(
                ImportUsageError(
                    "事件只能追加导入，不能整体替换", "incidents are appended, never replaced"
                ),
                2,
            )
        incidents.import_command(path, crs, encoding, map_, skip_invalid, sheet, dry_run, test)
        return
    options = ImportOptions(
        crs=crs,
        encoding=encoding,
        mapping=tuple(map_ or ()),
        mode="replace" if mode == "replace" else "append",
        skip_invalid=skip_invalid,
        rejects_path=rejects_path_for(path),
        max_vertices=Settings().max_geometry_vertices,
        sheet=sheet,
    )
    if mode not in ("append", "replace"):
        raise fail(ImportUsageError("--mode 须为 append 或 replace", "--mode: append|replace"), 2)
    try:
        with (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            ) as bar,
            _transaction(test, dry_run) as conn,
        ):
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(PHASES.get(phase, phase), total=max(total, 1))
                bar.update(tasks[phase], completed=done, total=max(total, 1))

            report = import_file(conn, default_registry(), layer, path, options, progress)
    except ImportRefusedError as error:
        _print_report(error.report)
        raise fail(error, 1) from error
    except GridgovError as error:
        raise fail(error, _exit_code(error)) from error
    if dry_run:
        console.print(
            "试导入 (dry run)：数据库未作任何改动；以下是导入将会得到的结果 "
            "(nothing was written: this is what the import would do)"
        )
    _print_report(report, dry_run)


def _print_report(report: ImportReport, dry_run: bool = False) -> None:
    summary = Table(show_header=False, box=None)
    summary.add_row("图层 layer", report.layer)
    summary.add_row("编码 encoding", report.encoding or "")
    summary.add_row("坐标系 CRS", report.crs or "")
    summary.add_row("读取 rows read", str(report.rows_read))
    if note := unread_sheets_note(report):
        summary.add_row("工作表 sheet", escape(note))
    if report.rows_empty:
        summary.add_row("空行跳过 empty rows skipped", str(report.rows_empty))
    if report.header_row > 1:
        summary.add_row(
            "表头 header",
            f"第 {report.header_row} 行，上面的标题行未导入 "
            f"(line {report.header_row}; the title lines above it were not imported)",
        )
    written = "将写入 rows it would write" if dry_run else "写入 rows written"
    summary.add_row(written, str(report.rows_written))
    summary.add_row("拒绝 rows rejected", str(report.rows_rejected))
    for kind, count in report.by_kind().items():
        summary.add_row(f"  {kind}", str(count))
    if report.ignored_fields:
        summary.add_row("忽略的字段 ignored fields", escape("、".join(report.ignored_fields)))
    if report.rejects_file:
        summary.add_row("拒绝清单 rejects", escape(report.rejects_file))
    console.print(summary)
    if report.problems:
        problems = Table(title="问题 (problems; row = record number, header not counted)")
        for column in ("row", "field", "原因", "reason"):
            problems.add_column(column)
        for p in report.problems:
            problems.add_row(
                str(p.row) if p.row is not None else "-",
                escape(p.field or ""),
                escape(p.reason_zh),
                escape(p.reason_en),
            )
        console.print(problems)


@app.command("export")
def layer_export(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. grid.")],
    path: Annotated[Path, typer.Argument(help="Output file (.geojson, .gpkg, .shp, .zip, .csv)")],
    format_: Annotated[
        str | None, typer.Option("--format", help="geojson, gpkg, shp or csv (default: by name).")
    ] = None,
    crs: Annotated[
        str, typer.Option(help="Output CRS: cgcs2000, wgs84, gcj02, bd09, EPSG:n.")
    ] = "cgcs2000",
    encoding: Annotated[str, typer.Option(help="utf-8 or gbk (shapefile, CSV).")] = "utf-8",
    where_code: Annotated[
        str | None, typer.Option(help="Only features under this admin code (prefix).")
    ] = None,
    include_personal: Annotated[bool, typer.Option(help="Export personal data unmasked.")] = False,
    all_versions: Annotated[
        bool, typer.Option(help="Versioned layers: every version, not just those in force.")
    ] = False,
    test: TestOption = False,
) -> None:
    """Export a layer; column names are the registry's, so a re-import is lossless."""
    try:
        options = ExportOptions(
            format=export_format(format_, path),
            crs=crs,
            encoding=encoding,
            code_prefix=where_code,
            include_personal=include_personal,
            all_versions=all_versions,
        )
        with _transaction(test) as conn:
            count = export_layer(conn, default_registry(), layer, path, options)
    except GridgovError as error:
        raise fail(error, _exit_code(error)) from error
    console.print(f"{escape(str(path))}: {count} 个要素 (features), {options.format.value}")
