"""Settings: DATABASE_URL or GRIDGOV_* from the environment, never a test DB = working DB."""

from __future__ import annotations

import pytest

from gridgov.errors import ConfigurationError
from gridgov.settings import Settings, libpq_url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "DATABASE_URL",
        "GRIDGOV_DATABASE_URL",
        "GRIDGOV_TEST_DATABASE_URL",
        "GRIDGOV_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_database_url_forms_are_normalised(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "postgres://u:p@db.example:6543/city")
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql+psycopg://u:p@db.example:6543/city"
    assert libpq_url(settings.require_database_url()) == "postgresql://u:p@db.example:6543/city"


def test_prefixed_settings_and_derived_test_database(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GRIDGOV_DATABASE_URL", "postgresql://u@h/gridgov")
    clean_env.setenv("GRIDGOV_PORT", "8123")
    settings = Settings(_env_file=None)
    assert settings.port == 8123
    assert settings.require_test_database_url().database == "gridgov_test"


def test_test_database_must_differ(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", "postgresql://u@h/gridgov")
    clean_env.setenv("GRIDGOV_TEST_DATABASE_URL", "postgresql://u@h/gridgov")
    with pytest.raises(ConfigurationError, match="must differ"):
        Settings(_env_file=None).require_test_database_url()


def test_missing_or_foreign_url_is_a_clear_error(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        Settings(_env_file=None).require_database_url()
    clean_env.setenv("DATABASE_URL", "mysql://u@h/gridgov")
    with pytest.raises(ValueError, match="must point at PostgreSQL"):
        Settings(_env_file=None)


def test_workload_weights_from_json_and_bad_ones_refused(clean_env: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from gridgov.gis.measures import WorkloadWeights

    clean_env.setenv("GRIDGOV_WORKLOAD_WEIGHTS", '{"households": 2, "hazard_major": 50}')
    weights = WorkloadWeights.from_mapping(Settings(_env_file=None).workload_weights)
    assert (weights.households, weights.hazards["major"], weights.rentals) == (2.0, 50.0, 0.5)
    for bad in ('{"shoes": 1}', '{"households": -1}'):
        clean_env.setenv("GRIDGOV_WORKLOAD_WEIGHTS", bad)
        with pytest.raises(ValidationError, match="workload weight"):
            Settings(_env_file=None)
