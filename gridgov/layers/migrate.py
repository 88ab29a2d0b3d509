"""Alembic, driven from code: the migrations live in ``gridgov/layers/migrations``.

No ``alembic.ini`` is needed; the CLI and the tests call these functions with a URL or an
open connection.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData
from sqlalchemy.engine import URL

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: URL | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config that runs against ``connection`` if given, else ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = url
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(connection=connection), revision)


def downgrade(connection: Connection, revision: str = "base") -> None:
    command.downgrade(alembic_config(connection=connection), revision)


def head_revision() -> str:
    """The newest migration shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at, or ``None`` if it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def new_revision(url: URL, message: str) -> None:
    """Autogenerate a migration from the difference between the registry and the database."""
    command.revision(alembic_config(url=url), message=message, autogenerate=True)


def include_name_for(metadata: MetaData) -> Callable[[str | None, str, Any], bool]:
    """Compare only our own tables: never PostGIS's (spatial_ref_sys) or anyone else's."""

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return name in metadata.tables if type_ == "table" else True

    return include_name


def schema_drift(connection: Connection, metadata: MetaData) -> list[Any]:
    """Differences between the database and ``metadata``; empty when migrations match."""
    context = MigrationContext.configure(
        connection, opts={"include_name": include_name_for(metadata), "compare_type": True}
    )
    return list(compare_metadata(context, metadata))
