"""Where studies and their artifacts live: storage URLs, the artifact store beside them, and a storage
that waits out a database outage instead of failing the trials that use it."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage, _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError, SQLAlchemyError

from search.errors import StorageLost
from search.study.strategy import experimental
from trainers.data import DataError

DEFAULT_STORAGE = "sqlite:///studies.db"
JOURNAL_PREFIX = "journal:///"
PASSWORD_VARIABLE = "HPSEARCH_DB_PASSWORD"
STORAGE_WAIT = 60  # seconds a lost database is waited for before a worker gives up


class StorageError(ValueError):
    """A storage that cannot be opened: unreachable, no driver, or an older schema."""


def open_storage(url: str, heartbeat: int | None = None, wait: float | None = STORAGE_WAIT) -> optuna.storages.BaseStorage:
    """The storage behind `url`. With `heartbeat` (seconds), running trials record that they are alive,
    and a trial silent for three heartbeats is failed and queued again (see search.study.resume). With `wait`
    (seconds), a database that goes away is waited for that long on every call; None: calls fail at once."""
    if url.startswith(JOURNAL_PREFIX):
        return JournalStorage(JournalFileBackend(url[len(JOURNAL_PREFIX) - 1 :]))
    check_database_folder(url)
    # SQLite: wait for another writer rather than fail at once with "database is locked"; a server: a
    # connection it dropped (a restart) is noticed when taken from the pool and replaced, not used
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    options: dict = {"engine_kwargs": engine}
    if heartbeat:
        from search.study.resume import retry

        options |= {"heartbeat_interval": heartbeat, "grace_period": 3 * heartbeat, "heartbeat_stale_trial_callback": retry}
    try:
        storage = _rdb_storage(with_password(url), options)
    except (SQLAlchemyError, ImportError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise StorageError(f"cannot open the storage {safe_url(url)}: {reason}") from err
    except RuntimeError as err:  # Optuna's schema check
        if "optuna storage upgrade" in str(err):
            raise StorageError(f"{safe_url(url)} was made by an older Optuna: back it up, then run "
                               f"`optuna storage upgrade --storage URL`") from err
        raise StorageError(f"{safe_url(url)} has a schema that Optuna {optuna.__version__} does not know (made by a newer "
                           f"Optuna?): open it with the Optuna that made it, or use another --storage") from err
    if sqlite_path(url):
        _sqlite_for_several_processes(storage)
    return PatientStorage(storage, safe_url(url), wait, 3 * heartbeat if heartbeat else None) if wait else storage


def check_database_folder(url: str) -> None:
    database = sqlite_path(url)
    if database is not None and not database.parent.is_dir():
        raise StorageError(f"cannot open the storage {safe_url(url)}: the folder {database.parent} does not exist: "
                           f"create it, or name another --storage")


def _sqlite_for_several_processes(storage: RDBStorage) -> None:
    """Write-ahead log: readers (the dashboard) and a writer (a running study) no longer block each other.

    And each transaction takes the write lock when it begins. Python's sqlite3 begins a transaction only at
    its first write, so Optuna's read-then-write steps (fail a stale trial, claim a waiting one) interleaved
    between processes: two processes failing the same stale trial both queued its retry, 10 times in 10.
    BEGIN IMMEDIATE serializes them as SELECT ... FOR UPDATE does on PostgreSQL (SQLAlchemy's pysqlite recipe)."""
    with storage.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        connection.commit()

    @event.listens_for(storage.engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, says when transactions begin

    @event.listens_for(storage.engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    storage.engine.dispose()  # the connections made so far began transactions the old way


def _rdb_storage(url: str, options: dict, attempts: int = 5) -> RDBStorage:
    for attempt in range(attempts):
        try:
            with experimental():  # the heartbeat
                return RDBStorage(url, **options)
        except SQLAlchemyError as err:
            # workers started together on an empty database all create its tables: one wins, the others
            # find them made a moment later
            if attempt == attempts - 1 or not any(s in str(err) for s in ("already exists", "duplicate key")):
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def _unreachable(err: Exception) -> bool:
    """The database is away (server stopped, connection dropped, file locked), not the request wrong."""
    cause = err.__cause__ if isinstance(err, StorageInternalError) else err
    return isinstance(cause, (OperationalError, InterfaceError))


def _left_invalid(err: Exception) -> bool:
    """A call after the database came back that found this thread's connection still in the transaction
    the outage broke ("Can't reconnect until invalid transaction is rolled back"; it failed 1 trial in 3
    of a 10-second PostgreSQL outage). Nothing was written: a fresh session does it again."""
    return isinstance(err.__cause__ if isinstance(err, StorageInternalError) else err, PendingRollbackError)


class PatientStorage(BaseStorage, BaseHeartbeat):
    """An Optuna storage whose every call waits while the database is unreachable, retrying with backoff
    (0.5 s, doubling to 4 s), for up to `wait` seconds from the start of the outage. Past that it raises
    StorageLost, and then at once on every later call: the worker stops, its trial stays RUNNING, its
    checkpoint stays, and the next run retries it from there. Calls are those of Optuna's own cached
    storage over the database, so a study sees no difference."""

    def __init__(self, storage: RDBStorage, url: str, wait: float, grace: int | None = None):
        self._storage, self._url, self._wait, self._grace = _CachedStorage(storage), url, wait, grace
        self._down_since: float | None = None
        self._lock = threading.Lock()
        self.lost = False

    @property
    def rdb(self) -> RDBStorage:
        return self._storage._backend

    def _call(self, name: str, *args, **kwargs):
        delay, stale_sessions = 0.5, 0
        while True:
            if self.lost:
                raise StorageLost(self.lost_message)
            try:
                result = getattr(self._storage, name)(*args, **kwargs)
            except (StorageInternalError, SQLAlchemyError) as err:
                if _left_invalid(err) and stale_sessions < 3:
                    stale_sessions += 1
                    self.rdb.scoped_session.remove()
                    continue
                if not _unreachable(err):
                    raise
                self._wait_for_it(err, delay)
                delay = min(2 * delay, 4.0)
                continue
            self._back()
            return result

    @property
    def lost_message(self) -> str:
        return f"lost the storage at {self._url} for more than {self._wait:g} s: run the same command again to continue"

    def _wait_for_it(self, err: Exception, delay: float) -> None:
        with self._lock:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                reason = str(getattr(err.__cause__, "orig", None) or err.__cause__ or err).strip().splitlines()[0]
                print(f"hpsearch: lost the storage at {self._url} ({reason}): waiting up to {self._wait:g} s for it",
                      file=sys.stderr, flush=True)
            if now - self._down_since > self._wait:
                self.lost = True
                raise StorageLost(self.lost_message) from None
        time.sleep(delay)

    def _back(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is not None:
                print(f"hpsearch: the storage is back after {time.monotonic() - self._down_since:.0f} s", file=sys.stderr, flush=True)
                self._down_since = None

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self._call("record_heartbeat", trial_id)
        except StorageLost:
            pass  # said by the worker's own thread; a heartbeat thread must not die with a traceback

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna fails these next, and a finished trial takes no attributes: say why on each first."""
        stale = []
        for trial_id in self._call("_get_stale_trial_ids", study_id):
            try:
                self._call("set_trial_user_attr", trial_id, "fail_reason", f"worker stopped (no heartbeat for {self._grace} s)")
                stale.append(trial_id)
            except UpdateFinishedTrialError:
                pass  # another worker failed it first
        return stale


def _patient(name: str):
    def call(self, *args, **kwargs):
        return self._call(name, *args, **kwargs)

    call.__name__ = name
    return call


# Every abstract call of an Optuna storage and its heartbeat, and the two that the cached storage answers faster.
for _name in sorted((BaseStorage.__abstractmethods__ | BaseHeartbeat.__abstractmethods__ | {"get_best_trial",
                     "get_trial_id_from_study_id_trial_number", "remove_session"}) - set(vars(PatientStorage))):
    setattr(PatientStorage, _name, _patient(_name))
PatientStorage.__abstractmethods__ = frozenset()


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


def artifact_store(url: str, folder: str | Path | None = None, create: bool = True) -> FileSystemArtifactStore:
    """The artifact store; with `create`, its folder is made where it is missing."""
    folder = Path(folder) if folder else default_artifacts_dir(url)
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(f"cannot make the artifact folder {folder} ({err.strerror}): pass --artifacts a folder you can write") from err
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
