"""``gridgov user …``: accounts (add, list, role, disable, enable, password, ensure-admin).

Passwords are typed at a hidden prompt or read from an environment variable
(``--password-env``), never passed as an argument (it would end up in shell history and
``ps``). Every change is written to the audit log as done by ``cli:<operating-system user>``.
"""

from __future__ import annotations

import getpass
import os
import secrets
import string
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Connection

from gridgov.cli.common import TestOption, console, fail, transaction
from gridgov.errors import ConfigurationError, GridgovError
from gridgov.layers import accounts, audit
from gridgov.security.passwords import check_password, password_problems
from gridgov.security.roles import Grant, Role, parse_role

app = typer.Typer(
    help="账户 (accounts): add, list, role, disable, enable, password", no_args_is_help=True
)

RoleArg = Annotated[
    str, typer.Option("--role", help="admin, supervisor, planner, police, grid_worker or viewer")
]
AreaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--area",
        help="Area code the account may see (6-digit district, 9 township, 12 community, "
        "15 grid); repeat for several.",
    ),
]
GrantOption = Annotated[
    list[str] | None,
    typer.Option("--grant", help="Extra grant; `personal_data` shows personal data in clear."),
]
PasswordEnv = Annotated[
    str | None,
    typer.Option(
        "--password-env", help="Read the password from this environment variable (no prompt)."
    ),
]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _audit(conn: Connection, action: str, target: str, **detail: object) -> None:
    audit.record(
        conn,
        audit.AuditEvent(
            action=action, outcome="ok", username=_actor(), target=target, detail=detail
        ),
    )


def _password(username: str, env: str | None) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            raise typer.BadParameter(f"environment variable {env} is empty or unset")
        return value
    first = typer.prompt(f"{username} 的密码 (password)", hide_input=True)
    second = typer.prompt("再输入一次 (again)", hide_input=True)
    if first != second:
        raise typer.BadParameter("两次输入的密码不一致 (the passwords differ)")
    return str(first)


def _role(value: str) -> Role:
    try:
        return parse_role(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _grants(values: list[str] | None) -> list[str]:
    try:
        return [Grant(v.strip()).value for v in values or ()]
    except ValueError:
        raise typer.BadParameter("unknown grant; the only one is personal_data") from None


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Login name (letters, digits, . _ - @).")],
    role: RoleArg,
    area: AreaOption = None,
    grant: GrantOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name (姓名).")] = None,
    password_env: PasswordEnv = None,
    test: TestOption = False,
) -> None:
    """Create an account; every role but admin needs at least one --area."""
    chosen = _role(role)
    password = _password(username, password_env)
    try:
        check_password(password, username)
        with transaction(test) as conn:
            user = accounts.create_user(
                conn, username, password, chosen, area or (), _grants(grant), name
            )
            _audit(conn, "user_add", username, role=chosen.value, areas=list(user.area_codes))
    except GridgovError as exc:
        raise fail(exc) from exc
    console.print(f"已创建账户 {username}（{chosen.title_zh}）(created)")


@app.command("list")
def list_users(test: TestOption = False) -> None:
    """Every account with its role, areas, grants and state."""
    try:
        with transaction(test) as conn:
            users = accounts.list_users(conn)
    except GridgovError as exc:
        raise fail(exc) from exc
    table = Table("用户名", "角色", "管辖区域", "授权", "状态", "最近登录")
    for u in users:
        state = "停用" if u.disabled else ("锁定" if u.locked_until else "正常")
        table.add_row(
            u.username,
            f"{u.role.title_zh} ({u.role.value})",
            "全部 (all)" if u.scope.unrestricted else ", ".join(u.area_codes),
            ", ".join(sorted(u.grants)) or "-",
            state,
            u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "-",
        )
    console.print(table)


@app.command("role")
def set_role(
    username: str,
    role: Annotated[str, typer.Argument(help="The new role.")],
    area: AreaOption = None,
    grant: GrantOption = None,
    no_grants: Annotated[bool, typer.Option("--no-grants", help="Remove every grant.")] = False,
    test: TestOption = False,
) -> None:
    """Change an account's role (and, if given, its areas and grants)."""
    chosen = _role(role)
    grants = [] if no_grants else (_grants(grant) if grant else None)
    try:
        with transaction(test) as conn:
            user = accounts.update_user(
                conn, username, role=chosen, area_codes=area if area else None, grants=grants
            )
            if user.role is not Role.ADMIN and not user.area_codes:
                raise ConfigurationError(
                    "非管理员账户须指定管辖区域（--area）",
                    "every account but an admin needs an area scope (--area)",
                )
            _audit(
                conn,
                "user_role",
                username,
                role=chosen.value,
                areas=list(user.area_codes),
                grants=sorted(user.grants),
            )
    except GridgovError as exc:
        raise fail(exc) from exc
    console.print(f"{username}: {chosen.title_zh} ({chosen.value})")


def _set_disabled(username: str, disabled: bool, test: bool) -> None:
    try:
        with transaction(test) as conn:
            accounts.update_user(conn, username, disabled=disabled)
            _audit(conn, "user_disable" if disabled else "user_enable", username)
    except GridgovError as exc:
        raise fail(exc) from exc
    console.print(f"{username}: {'已停用 (disabled)' if disabled else '已启用 (enabled)'}")


@app.command("disable")
def disable(username: str, test: TestOption = False) -> None:
    """Disable an account: its sessions end at once and it cannot log in."""
    _set_disabled(username, True, test)


@app.command("enable")
def enable(username: str, test: TestOption = False) -> None:
    """Enable an account again (also lifts a login lock)."""
    _set_disabled(username, False, test)


@app.command("password")
def password(username: str, password_env: PasswordEnv = None, test: TestOption = False) -> None:
    """Set a new password (ends the account's sessions, lifts a login lock)."""
    new = _password(username, password_env)
    try:
        with transaction(test) as conn:
            accounts.update_user(conn, username, password=new)
            _audit(conn, "user_password", username)
    except GridgovError as exc:
        raise fail(exc) from exc
    console.print(f"{username}: 密码已更新 (password changed)")


def generated_password() -> str:
    """16 characters from all four classes, so that it passes the rules."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#%"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(16))
        if not password_problems(candidate, "admin"):
            return candidate


@app.command("ensure-admin")
def ensure_admin(
    username: Annotated[str, typer.Option("--username")] = "admin",
    test: TestOption = False,
) -> None:
    """Create the first admin if no admin exists (what `make serve` runs).

    The password is GRIDGOV_ADMIN_PASSWORD when set; otherwise one is generated and printed
    once, here, and never again (it is stored only as an argon2 hash).
    """
    given = os.environ.get("GRIDGOV_ADMIN_PASSWORD")
    secret = given or generated_password()
    try:
        with transaction(test) as conn:
            if accounts.count_users(conn, Role.ADMIN):
                console.print("已有管理员账户 (an admin account exists)")
                return
            accounts.create_user(conn, username, secret, Role.ADMIN)
            _audit(conn, "user_add", username, role="admin", first_admin=True)
    except GridgovError as exc:
        raise fail(exc) from exc
    if given:
        console.print(f"已创建管理员 {username}，密码取自 GRIDGOV_ADMIN_PASSWORD")
    else:
        console.print(
            f"已创建管理员 {username}，初始密码（只显示这一次，请登录后修改）:\n"
            f"  user: {username}\n  password: {secret}",
            highlight=False,
        )


__all__ = ["app"]
