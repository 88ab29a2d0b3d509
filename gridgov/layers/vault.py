"""Personal data (个人信息) at rest: encrypted in ``personal_vault``, never in the layer table.

Writers load personal columns like any other (COPY, imports); :func:`seal` then moves each
clear value into the vault as AES-256-GCM ciphertext plus its masked form (``张*``) and
clears the column, in the writer's own transaction. Readers select the masked form
(:func:`masked_columns`); only a reader holding the ``personal_data`` grant gets the
ciphertext too and decrypts it (:func:`reveal`), and the caller audits that read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    LargeBinary,
    MetaData,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.sql.elements import Label

from gridgov.gis.masking import mask_personal
from gridgov.layers.spec import LayerSpec
from gridgov.security.crypto import decrypt, encrypt

MASKED = "__vm_"
CIPHER = "__vc_"
_BATCH = 5_000
# Not a registry layer: described here only to build queries (migration 0005 creates it).
VAULT = Table(
    "personal_vault",
    MetaData(),
    Column("layer", Text, primary_key=True),
    Column("row_id", BigInteger, primary_key=True),
    Column("column_name", Text, primary_key=True),
    Column("masked", Text),
    Column("ciphertext", LargeBinary),
)


def personal_columns(spec: LayerSpec) -> list[str]:
    return [c.name for c in spec.columns if c.personal]


def _vault(table: Table, spec: LayerSpec, column: str, what: str) -> Any:
    # A correlated lookup on the vault's primary key (layer, row_id, column_name).
    return (
        select(VAULT.c[what])
        .where(
            VAULT.c.layer == spec.id,
            VAULT.c.row_id == table.c.id,
            VAULT.c.column_name == column,
        )
        .scalar_subquery()
    )


def masked_columns(spec: LayerSpec, table: Table, unmasked: bool) -> list[Label[Any]]:
    """Extra select-list entries: the vault's masked value (and ciphertext when unmasked)."""
    labels: list[Label[Any]] = []
    for column in personal_columns(spec):
        labels.append(_vault(table, spec, column, "masked").label(MASKED + column))
        if unmasked:
            labels.append(_vault(table, spec, column, "ciphertext").label(CIPHER + column))
    return labels


def personal_value(
    spec: LayerSpec,
    row: Mapping[Any, Any],
    column: str,
    key: bytes | None,
    row_id: int | None = None,
) -> str | None:
    """The value to show: masked, or (with ``key``) in clear. Unsealed values are masked too."""
    stored = row.get(column)
    if stored is not None:  # not sealed (yet): never shown in clear without the grant
        return str(stored) if key is not None else mask_personal(str(stored))
    blob = row.get(CIPHER + column)
    if key is not None and blob is not None:
        ident = row_id if row_id is not None else int(row["id"])
        return reveal(key, spec, ident, column, bytes(blob))
    masked: str | None = row.get(MASKED + column)
    return masked


def reveal(key: bytes, spec: LayerSpec, row_id: int, column: str, blob: bytes) -> str:
    return decrypt(key, blob, spec.id, row_id, column)


def seal(conn: Connection, spec: LayerSpec, key: bytes) -> int:
    """Move every clear personal value of ``spec``'s table into the vault; returns values sealed."""
    columns = personal_columns(spec)
    if not columns:
        return 0
    names = ", ".join(columns)  # from the registry, never from a request
    any_clear = " OR ".join(f"{c} IS NOT NULL" for c in columns)
    rows = conn.execute(text(f"SELECT id, {names} FROM {spec.table_name} WHERE {any_clear}")).all()
    sealed = 0
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        values = [
            {
                "layer": spec.id,
                "row_id": row.id,
                "column": column,
                "masked": mask_personal(str(row._mapping[column])) or "*",
                "ciphertext": encrypt(key, str(row._mapping[column]), spec.id, row.id, column),
            }
            for row in batch
            for column in columns
            if row._mapping[column] is not None
        ]
        conn.execute(
            text(
                "INSERT INTO personal_vault (layer, row_id, column_name, masked, ciphertext) "
                "VALUES (:layer, :row_id, :column, :masked, :ciphertext) "
                "ON CONFLICT (layer, row_id, column_name) DO UPDATE "
                "SET masked = EXCLUDED.masked, ciphertext = EXCLUDED.ciphertext"
            ),
            values,
        )
        cleared = ", ".join(f"{c} = NULL" for c in columns)
        conn.execute(
            text(f"UPDATE {spec.table_name} SET {cleared} WHERE id = ANY(:ids)"),
            {"ids": [row.id for row in batch]},
        )
        sealed += len(values)
    return sealed


__all__ = ["masked_columns", "personal_columns", "personal_value", "reveal", "seal"]
