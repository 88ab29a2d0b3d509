"""The mini city, inside the test's rolled-back transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, MetaData

from gridgov.layers.registry import Registry
from tests.api.ogc.city import build_mini_city


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> list[int]:
    return build_mini_city(connection, metadata, registry)
