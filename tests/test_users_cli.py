"""``gridgov user …`` and ``gridgov audit`` on the (committed) test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridgov.cli import app as cli
from gridgov.layers import accounts
from gridgov.security.passwords import verify_password

runner = CliRunner()
NAMES = ("cli_planner", "cli_admin_first")


@pytest.fixture
def committed(committed_pyramid: Engine) -> Iterator[Engine]:
    """The CLI commits: a committed pyramid (for area codes), its users removed after."""
    try:
        yield committed_pyramid
    finally:
        with committed_pyramid.begin() as conn:
            conn.execute(text("DELETE FROM app_user WHERE username = ANY(:n)"), {"n": list(NAMES)})


def test_user_lifecycle(committed: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEW_PW", "Planner-Pass-2026")
    added = runner.invoke(
        cli,
        [
            "user",
            "add",
            "cli_planner",
            "--role",
            "planner",
            "--area",
            "320213001",
            "--password-env",
            "NEW_PW",
            "--test",
        ],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["user", "list", "--test"])
    assert "cli_planner" in listed.output
    assert "320213001" in listed.output
    weak = runner.invoke(
        cli,
        ["user", "password", "cli_planner", "--password-env", "WEAK", "--test"],
        env={"WEAK": "short"},
    )
    assert weak.exit_code == 1
    assert "密码" in weak.output
    unknown_area = runner.invoke(
        cli, ["user", "role", "cli_planner", "police", "--area", "999999", "--test"]
    )
    assert unknown_area.exit_code == 1
    moved = runner.invoke(cli, ["user", "role", "cli_planner", "police", "--test"])
    assert moved.exit_code == 0, moved.output
    disabled = runner.invoke(cli, ["user", "disable", "cli_planner", "--test"])
    assert disabled.exit_code == 0
    with committed.connect() as conn:
        user = accounts.require_user(conn, "cli_planner")
    assert user.role.value == "police"
    assert user.area_codes == ("320213001",)
    assert user.disabled
    assert verify_password(user.password_hash, "Planner-Pass-2026")
    log = runner.invoke(cli, ["audit", "--user", "cli:" + _os_user(), "--json", "--test"])
    assert log.exit_code == 0
    actions = [line for line in log.output.splitlines() if '"cli_planner"' in line]
    assert any('"user_add"' in a for a in actions)
    assert any('"user_disable"' in a for a in actions)
    only_refused = runner.invoke(cli, ["audit", "--outcome", "refused", "--json", "--test"])
    assert '"outcome": "ok"' not in only_refused.output
    bad = runner.invoke(cli, ["user", "add", "x_y", "--role", "king", "--test"])
    assert bad.exit_code == 2


def test_ensure_admin_prints_a_password_once(committed: Engine) -> None:
    with committed.begin() as conn:
        admins = conn.execute(
            text("SELECT count(*) FROM app_user WHERE role = 'admin'")
        ).scalar_one()
    if admins:
        pytest.fail("the test database should hold no committed admin")
    first = runner.invoke(cli, ["user", "ensure-admin", "--username", "cli_admin_first", "--test"])
    assert first.exit_code == 0, first.output
    password = first.output.split("password:")[1].split()[0]
    with committed.connect() as conn:
        user = accounts.require_user(conn, "cli_admin_first")
    assert verify_password(user.password_hash, password)
    second = runner.invoke(cli, ["user", "ensure-admin", "--username", "cli_admin_first", "--test"])
    assert second.exit_code == 0
    assert "password:" not in second.output


def _os_user() -> str:
    import getpass

    return getpass.getuser()
