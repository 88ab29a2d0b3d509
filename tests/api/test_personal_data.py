"""Personal data (个人信息): encrypted at rest, masked in every output for every role without
the ``personal_data`` grant, in clear (and audited) with it."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, MetaData, text

from gridgov.gis.webmercator import tile_for
from gridgov.layers import vault
from gridgov.layers.registry import Registry
from gridgov.security.roles import Role, can_read
from gridgov.settings import Settings
from tests.api.ogc.city import LANDLORD, build_mini_city
from tests.conftest import ClientAs

CLEAR = list(LANDLORD.values())  # 张三, 32020219800101123X, 13800005678
MASKED = ["张*", "3202**********123X", "138****5678"]
READERS = [r for r in Role if can_read(r, "rental_housing")]
SCOPE = {Role.ADMIN: (), Role.SUPERVISOR: ("320213",), Role.GRID_WORKER: ("320213001001001",)}


@pytest.fixture
def sealed(
    connection: Connection, metadata: MetaData, registry: Registry, settings: Settings
) -> list[int]:
    """The mini city with its rental housing sealed, as every writer leaves it."""
    build_mini_city(connection, metadata, registry, incidents=5)
    vault.seal(connection, registry.get("rental_housing"), settings.require_data_key())
    return list(connection.execute(text("SELECT id FROM rental_housing ORDER BY id")).scalars())


def test_at_rest_only_ciphertext_and_masks(connection: Connection, sealed: list[int]) -> None:
    clear_columns = connection.execute(
        text(
            "SELECT count(*) FROM rental_housing WHERE landlord_name IS NOT NULL "
            "OR landlord_id_number IS NOT NULL OR landlord_phone IS NOT NULL"
        )
    ).scalar_one()
    assert clear_columns == 0
    rows = connection.execute(text("SELECT masked, ciphertext FROM personal_vault")).all()
    assert len(rows) == 3 * len(sealed)
    for row in rows:
        blob = bytes(row.ciphertext)
        assert all(value.encode() not in blob for value in CLEAR)
    assert {row.masked for row in rows} == set(MASKED)
    # Deleting a row forgets its personal data too.
    connection.execute(text("DELETE FROM rental_housing WHERE id = :id"), {"id": sealed[0]})
    left = connection.execute(
        text("SELECT count(*) FROM personal_vault WHERE row_id = :id"), {"id": sealed[0]}
    ).scalar_one()
    assert left == 0


def _outputs(client: TestClient, feature_id: int) -> dict[str, str]:
    """Every way the rental housing layer reaches a client, as text."""
    out: dict[str, str] = {}
    out["items"] = client.get("/collections/rental_housing/items").text
    out["item"] = client.get(f"/collections/rental_housing/items/{feature_id}").text
    csv = client.get("/layers/rental_housing/export", params={"format": "csv"})
    out["csv"] = csv.content.decode("utf-8-sig")
    gpkg = client.get("/layers/rental_housing/export", params={"format": "gpkg"})
    frame = gpd.read_file(io.BytesIO(gpkg.content))
    out["gpkg"] = frame.drop(columns="geometry").to_json(force_ascii=False)
    z = 16
    x, y = tile_for(120.305, 31.565, z)
    tile = client.get(f"/collections/rental_housing/tiles/WebMercatorQuad/{z}/{x}/{y}")
    decoded = mapbox_vector_tile.decode(tile.content) if tile.status_code == 200 else {}
    out["tile"] = json.dumps(decoded, ensure_ascii=False, default=str)
    return out


@pytest.mark.parametrize("role", READERS)
def test_masked_everywhere_without_the_grant(
    role: Role, client_as: ClientAs, sealed: list[int], connection: Connection
) -> None:
    client = client_as(role, SCOPE[role])
    outputs = _outputs(client, sealed[0])
    for name, body in outputs.items():
        for value in CLEAR:
            assert value not in body, (name, value)
    for name in ("items", "item", "csv", "gpkg"):
        assert all(m in outputs[name] for m in MASKED), name
    assert "landlord" not in outputs["tile"]  # tiles never carry personal columns
    refused = client.get(
        "/layers/rental_housing/export", params={"format": "csv", "include_personal": True}
    )
    assert refused.status_code == 403
    audited = connection.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'read_personal'")
    ).scalar_one()
    assert audited == 0


@pytest.mark.parametrize("role", READERS)
def test_the_grant_shows_clear_values_and_every_read_is_audited(
    role: Role, client_as: ClientAs, sealed: list[int], connection: Connection
) -> None:
    client = client_as(role, SCOPE[role], grants=["personal_data"])
    items = client.get("/collections/rental_housing/items").json()["features"]
    assert items
    for feature in items:
        props = feature["properties"]
        assert [
            props["landlord_name"],
            props["landlord_id_number"],
            props["landlord_phone"],
        ] == CLEAR
    one = client.get(f"/collections/rental_housing/items/{sealed[0]}").json()
    assert one["properties"]["landlord_id_number"] == CLEAR[1]
    export = client.get(
        "/layers/rental_housing/export", params={"format": "csv", "include_personal": True}
    )
    assert CLEAR[1] in export.content.decode("utf-8-sig")
    masked_export = client.get("/layers/rental_housing/export", params={"format": "csv"})
    assert CLEAR[1] not in masked_export.content.decode("utf-8-sig")
    rows = connection.execute(
        text(
            "SELECT action, role, detail FROM audit_log "
            "WHERE action IN ('read_personal', 'export_personal') ORDER BY id"
        )
    ).all()
    assert [r.action for r in rows] == ["read_personal", "read_personal", "export_personal"]
    assert all(r.role == role.value for r in rows)
    assert rows[0].detail["ids"] == [f["id"] for f in items]
    assert rows[1].detail["ids"] == [sealed[0]]


def test_imported_personal_data_is_sealed_and_never_echoed(
    client: TestClient,
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    build_mini_city(connection, metadata, registry, incidents=0)

    def feature(phone: str) -> dict[str, Any]:
        return {
            "type": "Feature",
            "properties": {
                "address": "导入路1号",
                "district_code": "320213",
                "township_code": "320213001",
                "community_code": "320213001001",
                "grid_code": "320213001001001",
                "landlord_name": "李四",
                "landlord_id_number": "320202199001011236",
                "landlord_phone": phone,
            },
            "geometry": {"type": "Point", "coordinates": [120.306, 31.566]},
        }

    def upload(phone: str) -> Any:
        body = json.dumps({"type": "FeatureCollection", "features": [feature(phone)]})
        return client.post(
            "/layers/rental_housing/import", files={"file": ("r.geojson", body.encode())}
        )

    caplog.set_level(logging.DEBUG)
    refused = upload("13x-not-a-phone")
    assert refused.status_code == 422
    assert refused.json()["problems_by_kind"] != {}
    assert "landlord_phone" in refused.text  # the field is named, its value is not
    assert "13x-not-a-phone" not in refused.text
    assert "320202199001011236" not in refused.text
    assert "李四" not in refused.text
    done = upload("13912345678")
    assert done.status_code == 200, done.text
    stored = connection.execute(
        text("SELECT landlord_phone FROM rental_housing WHERE address = '导入路1号'")
    ).scalar_one()
    assert stored is None  # sealed: only the vault holds it, encrypted
    masked = connection.execute(
        text(
            "SELECT masked FROM personal_vault WHERE column_name = 'landlord_phone' "
            "AND masked LIKE '139%'"
        )
    ).scalar_one()
    assert masked == "139****5678"
    for value in ("13912345678", "320202199001011236", "李四", "13x-not-a-phone"):
        assert value not in caplog.text
