"""A private, throwaway PostgreSQL + PostGIS server for tests that stop and restart it.

The shared test cluster must never be restarted, so fault tests get their own: ``initdb``
into a temporary directory with the installed server binaries, on a free loopback port,
run as the ``postgres`` OS user when the tests run as root (PostgreSQL refuses root), as
``scripts/bootstrap.sh`` does. The app connects as an ordinary role; the superuser
connection is for the test's own interventions (locks, ``pg_terminate_backend``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine

from tests.live import free_port

PG_LIB = Path("/usr/lib/postgresql")
APP_ROLE = "gridgov"
DATABASE = "gridgov"


def server_bindir() -> Path:
    """The newest installed PostgreSQL whose PostGIS is installed too; fails loudly."""
    for version in sorted((p.name for p in PG_LIB.glob("*")), key=_version_key, reverse=True):
        bindir = PG_LIB / version / "bin"
        control = Path(f"/usr/share/postgresql/{version}/extension/postgis.control")
        if (bindir / "postgres").exists() and control.exists():
            return bindir
    raise RuntimeError(
        "fault tests need a local PostgreSQL server with PostGIS (/usr/lib/postgresql/*/bin): "
        "run `make test`, which installs them"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PrivatePostgres:
    bindir: Path
    root: Path
    port: int
    superuser_password: str
    app_password: str

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, superuser: bool = False) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username="postgres" if superuser else APP_ROLE,
            password=self.superuser_password if superuser else self.app_password,
            host="127.0.0.1",
            port=self.port,
            database=DATABASE,
        )

    def superuser_engine(self) -> Engine:
        return create_engine(self.url(superuser=True), poolclass=None, pool_pre_ping=True)

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        subprocess.run(_as_server_user(command), check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._pg_ctl("-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def create_private_postgres() -> PrivatePostgres:
    """initdb, start, and create the app role and a PostGIS database it owns."""
    bindir = server_bindir()
    root = Path(tempfile.mkdtemp(prefix="gridgov-pg-"))
    pg = PrivatePostgres(
        bindir, root, free_port(), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    )
    pwfile = root / "pwfile"
    pwfile.write_text(pg.superuser_password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    root.chmod(0o700)
    initdb = [
        str(bindir / "initdb"),
        "-D",
        str(pg.datadir),
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
    ]
    subprocess.run(_as_server_user(initdb), check=True, capture_output=True, timeout=120)
    with (pg.datadir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# throwaway server of a fault test\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {pg.port}\n"
            f"unix_socket_directories = '{pg.root}'\n"
            "unix_socket_permissions = 0700\n"
            "timezone = 'UTC'\n"
            "fsync = off\n"
            "max_connections = 40\n"
        )
    pg.start()
    admin = create_engine(
        pg.url(superuser=True).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{pg.app_password}'"))
        conn.execute(text(f"CREATE DATABASE {DATABASE} OWNER {APP_ROLE} ENCODING 'UTF8'"))
    admin.dispose()
    engine = create_engine(pg.url(superuser=True), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION postgis"))
        conn.execute(text("CREATE EXTENSION btree_gist"))
    engine.dispose()
    return pg


__all__ = ["PrivatePostgres", "create_private_postgres", "server_bindir"]
