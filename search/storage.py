"""Where studies and their artifacts live: storage URLs and the artifact store beside them."""

from __future__ import annotations

import os
import random
import time
import warnings
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from trainers.data import DataError

DEFAULT_STORAGE = "sqlite:///studies.db"
JOURNAL_PREFIX = "journal:///"
PASSWORD_VARIABLE = "HPSEARCH_DB_PASSWORD"


class StorageError(ValueError):
    """A storage that cannot be opened: unreachable, no driver, or an older schema."""


def open_storage(url: str, heartbeat: int | None = None) -> optuna.storages.BaseStorage:
    """The storage behind `url`. With `heartbeat` (seconds), running trials record that they are alive,
    and a trial silent for three heartbeats is failed and queued again (see search.resume)."""
    if url.startswith(JOURNAL_PREFIX):
        return JournalStorage(JournalFileBackend(url[len(JOURNAL_PREFIX) - 1 :]))
    options = {}
    if heartbeat:
        from search.resume import retry

        options = {"heartbeat_interval": heartbeat, "grace_period": 3 * heartbeat, "heartbeat_stale_trial_callback": retry}
    if url.startswith("sqlite"):
        # wait for a writer rather than fail at once with "database is locked"
        options["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    try:
        storage = _rdb_storage(with_password(url), options)
    except (SQLAlchemyError, ImportError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise StorageError(f"cannot open the storage {safe_url(url)}: {reason}") from err
    except RuntimeError as err:  # Optuna's schema check
        if "optuna storage upgrade" not in str(err):
            raise
        raise StorageError(f"{safe_url(url)} was made by an older Optuna: back it up, then run "
                           f"`optuna storage upgrade --storage URL`") from err
    if sqlite_path(url):
        # write-ahead log: readers (the dashboard) and the writer (a running study) no longer block each other
        with storage.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            connection.commit()
    return storage


def _rdb_storage(url: str, options: dict, attempts: int = 5) -> optuna.storages.RDBStorage:
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # the heartbeat is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **options)
        except SQLAlchemyError as err:
            # workers started together on an empty database all create its tables: one wins, the others
            # find them made a moment later
            if attempt == attempts - 1 or not any(s in str(err) for s in ("already exists", "duplicate key")):
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def without_password(url: str) -> str:
    """The URL for a command line: its password left out, to come from $HPSEARCH_DB_PASSWORD."""
    if url.startswith(JOURNAL_PREFIX):
        return url
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)  # set(password=None) keeps it


def password_of(url: str) -> str | None:
    return None if url.startswith(JOURNAL_PREFIX) else make_url(url).password


def with_password(url: str) -> str:
    """The password may come from $HPSEARCH_DB_PASSWORD instead of the URL (libpq also reads $PGPASSWORD)."""
    parsed = make_url(url)
    password = os.environ.get(PASSWORD_VARIABLE)
    if password and parsed.username and parsed.password is None:
        return parsed.set(password=password).render_as_string(hide_password=False)
    return url


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


def require_database(storage_url: str) -> None:
    database = sqlite_path(storage_url)
    if database is not None and not database.exists():
        raise DataError(f"no database at {database}: run `hpsearch run` first, or pass --storage")


def load_study(storage_url: str, name: str | None, need_complete: bool = True) -> optuna.Study:
    require_database(storage_url)
    storage = open_storage(storage_url)
    names = optuna.get_all_study_names(storage=storage)
    if name is None:
        if len(names) != 1:
            held = f"studies {', '.join(names)}" if names else "no study"
            raise DataError(f"{safe_url(storage_url)} holds {held}: name one with --study")
        name = names[0]
    if name not in names:
        raise DataError(f"no study {name!r} in {safe_url(storage_url)}; it holds {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=name, storage=storage)
    if need_complete and not any(t.value is not None for t in study.get_trials(deepcopy=False)):
        raise DataError(f"study {name!r} has no completed trial yet")
    return study
