"""Alembic environment: the target schema is the one the layer registry generates."""

from __future__ import annotations

from alembic import context
from geoalchemy2.alembic_helpers import render_item, writer
from sqlalchemy import Connection, create_engine

from gridgov.layers.migrate import include_name_for
from gridgov.layers.registry import default_registry
from gridgov.layers.tables import build_metadata

target_metadata = build_metadata(default_registry())


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name_for(target_metadata),
        render_item=render_item,
        process_revision_directives=writer,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.config.attributes.get("url")
    if url is None:
        raise RuntimeError("gridgov migrations need a URL or a connection")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


main()
