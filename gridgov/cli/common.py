"""What every command module shares: the root app, consoles and error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from gridgov.errors import GridgovError
from gridgov.layers.db import connect, make_engine
from gridgov.layers.io.report import ImportReport
from gridgov.settings import Settings

app = typer.Typer(
    help="gridgov 网格化服务管理 GIS 服务 (grid management GIS service)", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)

TestOption = Annotated[bool, typer.Option("--test", help="Use the test database instead.")]
SheetOption = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        help="Excel sheet (or GeoPackage layer) to read, by name or number from 1; default: "
        "the first (the layer import first looks for one named after the layer).",
    ),
]
BenchOption = Annotated[
    bool, typer.Option("--bench", help="Use the benchmark database instead.", hidden=True)
]


def fail(error: GridgovError, code: int = 1) -> typer.Exit:
    """Print a domain error (Chinese first) and return the exit to raise."""
    err_console.print(
        f"[bold red]{error.title_zh} ({error.title_en}):[/] {escape(str(error))}", highlight=False
    )
    return typer.Exit(code=code)


def unread_sheets_note(report: ImportReport) -> str | None:
    """Which sheet was read when the workbook has others: never a silent choice."""
    if not report.other_sheets:
        return None
    others = "、".join(report.other_sheets)
    return (
        f"读取了工作表“{report.sheet}”；另有 {len(report.other_sheets)} 个未读取：{others}"
        f"（用 --sheet 名称或序号选择）(read sheet {report.sheet!r}; not read: "
        f"{', '.join(report.other_sheets)}; choose another with --sheet)"
    )


def database_url(settings: Settings, test: bool, bench: bool = False) -> URL:
    if bench:
        return settings.require_bench_database_url()
    return settings.require_test_database_url() if test else settings.require_database_url()


@contextmanager
def transaction(test: bool = False) -> Iterator[Connection]:
    """One connection and one transaction: committed only if the block succeeds."""
    settings = Settings()
    engine = make_engine(settings, database_url(settings, test))
    try:
        with connect(engine) as conn, conn.begin():
            yield conn
    finally:
        engine.dispose()
