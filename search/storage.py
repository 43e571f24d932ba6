"""Where studies and their artifacts live: storage URLs and the artifact store beside them."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy.engine import make_url

DEFAULT_STORAGE = "sqlite:///studies.db"
JOURNAL_PREFIX = "journal:///"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    if url.startswith(JOURNAL_PREFIX):
        return JournalStorage(JournalFileBackend(url[len(JOURNAL_PREFIX) - 1 :]))
    if url.startswith("sqlite"):
        # wait for a writer rather than fail at once with "database is locked"
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        if sqlite_path(url):
            # write-ahead log: readers (the dashboard) and the writer (a running study) no longer block each other
            with storage.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
                connection.commit()
        return storage
    return optuna.storages.RDBStorage(url)


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def default_artifacts_dir(url: str) -> Path:
    """`artifacts/` beside the database file or journal; in the working directory for servers."""
    if url.startswith(JOURNAL_PREFIX):
        return Path(url[len(JOURNAL_PREFIX) - 1 :]).parent / "artifacts"
    database = sqlite_path(url)
    return (database.parent if database else Path(".")) / "artifacts"


def artifact_store(url: str, folder: str | Path | None = None) -> FileSystemArtifactStore:
    folder = Path(folder) if folder else default_artifacts_dir(url)
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def safe_url(url: str) -> str:
    """The URL as it may be shown or stored: never with its password."""
    if url.startswith(JOURNAL_PREFIX):
        return url
    return make_url(url).render_as_string(hide_password=True)
