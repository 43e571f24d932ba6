"""Optuna's own tests for every storage (optuna.testing.pytest_storages), run against hpsearch's storage as
`hpsearch run` opens it: SQLite without and with the heartbeat, and a real PostgreSQL server."""

import pytest
from optuna.testing.pytest_storages import StorageTestCase
from postgres import PASSWORD, postgres_server

from search.storage import Location
from search.study.resume import retry


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as new_database:
        yield new_database


@pytest.fixture(params=["sqlite", "sqlite with heartbeat", "postgresql"])
def storage(request, tmp_path, monkeypatch):
    if request.param == "postgresql":
        monkeypatch.setenv("HPSEARCH_DB_PASSWORD", PASSWORD)
        url = request.getfixturevalue("postgres")()
    else:
        url = f"sqlite:///{tmp_path / 'studies.db'}"
    heartbeat = 30 if request.param != "sqlite" else None
    return Location(url).open(heartbeat, on_stale=retry)


class TestHpsearchStorage(StorageTestCase):
    """Every test of Optuna's suite, on each of the storages above."""
