"""``gridgov audit``: read the audit log (newest first), filtered."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli.common import TestOption, console, fail, transaction
from gridgov.errors import GridgovError
from gridgov.layers import audit as audit_log


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{name}: use YYYY-MM-DD or an ISO 8601 time") from None
    if moment.tzinfo is None:  # a local (Beijing) time, like everywhere else in gridgov
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return moment


def audit(
    user: Annotated[str | None, typer.Option("--user", help="Only this user name.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="login, logout, read_personal, export, …")
    ] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="ok, refused or failed")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From (inclusive).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until (exclusive).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    test: TestOption = False,
) -> None:
    """审计日志 (audit log): who did what, when, from where, and the outcome."""
    if outcome is not None and outcome not in ("ok", "refused", "failed"):
        raise typer.BadParameter("--outcome: ok, refused or failed")
    query = audit_log.AuditQuery(
        username=user,
        action=action,
        outcome=outcome,
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
        limit=limit,
    )
    try:
        with transaction(test) as conn:
            rows = audit_log.search(conn, query)
    except GridgovError as exc:
        raise fail(exc) from exc
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    table = Table("时间 (UTC)", "用户", "角色", "来源 IP", "操作", "对象", "结果", "状态")
    for r in rows:
        table.add_row(
            r["at"].isoformat(timespec="seconds"),
            r["username"] or "-",
            r["role"] or "-",
            r["ip"] or "-",
            r["action"],
            r["target"] or "-",
            r["outcome"],
            str(r["status"] or ""),
        )
    console.print(table)


__all__ = ["audit"]
