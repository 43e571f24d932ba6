"""Where studies and their artifacts live: a storage URL parsed once (Location), the artifact store beside
it, and a storage that waits out a database outage instead of failing the trials that use it. The ground
floor of search/: it imports nothing from the rooms above it."""

from __future__ import annotations

import gc
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
# Private parts of Optuna, used where no public one does the work (optuna>=5.0,<6 in pyproject.toml):
# _CachedStorage is what optuna.create_study wraps an RDBStorage in; a storage of our own must wrap it
# itself to answer as fast (trials of a running study are read from memory). BaseHeartbeat is the
# interface Optuna asks a storage with heartbeats to have (its fail_stale_trials checks for it).
from optuna.storages import BaseStorage, RDBStorage, _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, PendingRollbackError, SQLAlchemyError

from search.errors import StorageLost
from search.record import FAIL_REASON, stale_reason
from trainers.errors import InputError

DEFAULT_STORAGE = "sqlite:///studies.db"
JOURNAL_PREFIX = "journal:///"
PASSWORD_VARIABLE = "HPSEARCH_DB_PASSWORD"
STORAGE_WAIT = 60  # seconds a lost database is waited for before a worker gives up
POOL = 3  # connections a process holds to a database server, at most
# a server that is there but cannot take a connection now: full, or restarting
BUSY = ("too many clients", "connection refused", "the database system is starting up", "the database system is shutting down")


class StorageError(InputError):
    """A storage that cannot be opened: unreachable, no driver, or an older schema."""


@dataclass(frozen=True)
class Location:
    """Where a study lives: its storage URL, parsed once, and the folder of its artifact store (`--artifacts`;
    None: artifacts/ beside the database file, or in the working directory for a server)."""

    url: str
    artifacts_folder: str | Path | None = None

    @cached_property
    def _parsed(self) -> URL | None:  # None: a journal file, which SQLAlchemy does not parse
        if self.url.startswith(JOURNAL_PREFIX):
            return None
        try:
            return make_url(self.url)
        except ArgumentError:
            # not shown: what did not parse may hold a password
            raise StorageError(f"that storage is not a URL SQLAlchemy can read: give one such as {DEFAULT_STORAGE}, "
                               f"postgresql://USER@HOST/DATABASE or {JOURNAL_PREFIX}FILE") from None

    @property
    def journal(self) -> Path | None:
        return Path(self.url[len(JOURNAL_PREFIX) - 1 :]) if self._parsed is None else None

    @property
    def sqlite(self) -> Path | None:
        """The database file of an SQLite URL (not of an in-memory one)."""
        if self._parsed is None or not self._parsed.drivername.startswith("sqlite"):
            return None
        database = self._parsed.database
        return Path(database) if database and database != ":memory:" else None

    @property
    def in_memory(self) -> bool:
        return self._parsed is not None and self._parsed.drivername.startswith("sqlite") and self.sqlite is None

    @property
    def safe(self) -> str:
        """The URL as it may be shown or stored: never with its password."""
        return self.url if self._parsed is None else self._parsed.render_as_string(hide_password=True)

    @property
    def bare(self) -> str:
        """The URL for a command line: its password left out, to come from $HPSEARCH_DB_PASSWORD."""
        if self._parsed is None:
            return self.url
        return self._parsed._replace(password=None).render_as_string(hide_password=False)  # set(password=None) keeps it

    @property
    def password(self) -> str | None:
        return None if self._parsed is None else self._parsed.password

    def _with_password(self) -> str:
        """The password may come from $HPSEARCH_DB_PASSWORD instead of the URL (libpq also reads $PGPASSWORD)."""
        password = os.environ.get(PASSWORD_VARIABLE)
        if password and self._parsed.username and self._parsed.password is None:
            return self._parsed.set(password=password).render_as_string(hide_password=False)
        return self.url

    @property
    def artifacts(self) -> Path:
        if self.artifacts_folder:
            return Path(self.artifacts_folder)
        database = self.journal or self.sqlite
        return (database.parent if database else Path(".")) / "artifacts"

    def artifact_store(self, create: bool = True) -> FileSystemArtifactStore:
        """The artifact store; with `create`, its folder is made where it is missing."""
        if create:
            try:
                self.artifacts.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise InputError(f"cannot make the artifact folder {self.artifacts} ({err.strerror}): pass --artifacts a "
                                 f"folder you can write") from err
        return FileSystemArtifactStore(str(self.artifacts))

    def check_folder(self) -> None:
        database = self.sqlite
        if database is not None and not database.parent.is_dir():
            raise StorageError(f"cannot open the storage {self.safe}: the folder {database.parent} does not exist: "
                               f"create it, or name another --storage")
        if database is not None and not database.exists() and not os.access(database.parent, os.W_OK):
            # SQLite says only "unable to open database file" (a folder mounted into a container, owned by another user)
            raise StorageError(f"cannot make the database {database.absolute()}: this user (uid {os.getuid()}) cannot "
                               f"write in {database.absolute().parent}: let it, or name another --storage")

    def exists(self) -> bool:
        """Whether there may be studies to read: a database file or journal that exists, or any server."""
        database = self.sqlite or self.journal
        return database.exists() if database is not None else not self.in_memory

    def require_database(self) -> None:
        if self.sqlite is not None and not self.sqlite.exists():
            raise InputError(f"no database at {self.sqlite}: run `hpsearch run` first, or pass --storage")

    def open(self, heartbeat: int | None = None, wait: float | None = STORAGE_WAIT,
             on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None) -> BaseStorage:
        """The storage. With `heartbeat` (seconds), running trials record that they are alive, and a trial
        silent for three heartbeats is failed, says so in its fail_reason, and is handed to `on_stale` (which
        queues it again: search.study.resume.retry). With `wait` (seconds), a database that goes away is
        waited for that long on every call; None: calls fail at once."""
        if self.journal is not None:
            return JournalStorage(JournalFileBackend(str(self.journal)))
        self.check_folder()
        storage = self._rdb_storage({"engine_kwargs": self._engine()}, wait)
        if self.sqlite:
            _sqlite_for_several_processes(storage)
        if heartbeat:
            set_heartbeat(storage, heartbeat, on_stale)
        return PatientStorage(storage, self.safe, wait) if wait else storage

    def _engine(self) -> dict:
        """SQLite: wait for another writer rather than fail at once with "database is locked". A server: a
        connection it dropped (a restart) is noticed when taken from the pool and replaced, not used; and a
        worker holds at most POOL connections (its trial's and its heartbeat's, one spare), so that a server
        serves max_connections / POOL workers (SQLAlchemy's default pool would keep up to 15 each)."""
        if self._parsed.drivername.startswith("sqlite"):
            return {"connect_args": {"timeout": 60}}
        return {"pool_pre_ping": True, "pool_size": POOL - 1, "max_overflow": 1}

    def _rdb_storage(self, options: dict, wait: float | None) -> RDBStorage:
        try:
            return _rdb_storage(self._with_password(), options, self.safe, wait)
        except (SQLAlchemyError, StorageInternalError, ImportError) as err:
            cause = err.__cause__ if isinstance(err, StorageInternalError) else err
            reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
            raise StorageError(f"cannot open the storage {self.safe}: {reason}") from err
        except RuntimeError as err:  # Optuna's schema check
            if "optuna storage upgrade" in str(err):
                raise StorageError(f"{self.safe} was made by an older Optuna: back it up, then run "
                                   f"`optuna storage upgrade --storage URL`") from err
            raise StorageError(f"{self.safe} has a schema that Optuna {optuna.__version__} does not know (made by a newer "
                               f"Optuna?): open it with the Optuna that made it, or use another --storage") from err


def load_study(where: Location, name: str | None, need_complete: bool = True, storage: BaseStorage | None = None) -> optuna.Study:
    """The study `name` (None: the only one), in `storage` where the caller opened it, with one line where
    there is none such."""
    if storage is None:
        where.require_database()
        storage = where.open()
    names = optuna.get_all_study_names(storage=storage)
    if name is None:
        if len(names) != 1:
            held = f"studies {', '.join(names)}" if names else "no study"
            raise InputError(f"{where.safe} holds {held}: name one with --study")
        name = names[0]
    if name not in names:
        raise InputError(f"no study {name!r} in {where.safe}; it holds {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=name, storage=storage)
    if need_complete and not any(t.values for t in study.get_trials(deepcopy=False)):
        raise InputError(f"study {name!r} has no completed trial yet")
    return study


def set_heartbeat(storage: RDBStorage, seconds: int, on_stale: Callable | None) -> None:
    """What RDBStorage(heartbeat_interval=..., grace_period=..., heartbeat_stale_trial_callback=...) sets, on a
    storage already open: `hpsearch copy` learns the heartbeat from the study it opens. Three heartbeats
    of silence make a trial stale."""
    storage.heartbeat_interval, storage.grace_period = seconds, 3 * seconds
    storage.heartbeat_stale_trial_callback = storage.failed_trial_callback = on_stale


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


def _rdb_storage(url: str, options: dict, safe: str, wait: float | None, races: int = 5) -> RDBStorage:
    """The RDBStorage, once the server takes the connection: one that is full or restarting is waited for up to
    `wait` seconds, as in an outage (32 workers on a server of max_connections 40 met "too many clients")."""
    start, delay, said = time.monotonic(), 0.5, False
    while True:
        try:
            storage = RDBStorage(url, **options)
            if said:
                print(f"hpsearch: the storage is back after {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
            return storage
        except (SQLAlchemyError, StorageInternalError) as err:
            cause = err.__cause__ if isinstance(err, StorageInternalError) else err  # Optuna wraps what SQLAlchemy raised
            reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
            race = any(s in str(cause) for s in ("already exists", "duplicate key")) and races > 0
            busy = wait and isinstance(cause, OperationalError) and any(s in reason.lower() for s in BUSY)
            if not (race or busy):
                raise
        # The failed attempt's engine may hold a connection it made before failing: closed now, once the error
        # (whose frames hold the engine) is gone, not whenever the garbage collector gets to it (a refused
        # worker held 5 connections, not 3)
        gc.collect()
        if race:  # workers started together on an empty database all create its tables: one wins, the others
            races -= 1  # find them made a moment later
            time.sleep(0.2 + random.random())
            continue
        if time.monotonic() - start > wait:
            raise StorageLost(f"could not reach the storage at {safe} for {wait:g} s ({reason}): run the same command "
                              f"again to continue")
        if not said:
            print(f"hpsearch: cannot reach the storage at {safe} ({reason}): waiting up to {wait:g} s for it",
                  file=sys.stderr, flush=True)
            said = True
        time.sleep(delay)
        delay = min(2 * delay, 4.0)


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

    def __init__(self, storage: RDBStorage, url: str, wait: float):
        self._storage, self._url, self._wait = _CachedStorage(storage), url, wait
        self._down_since: float | None = None  # when the outage in progress began
        self._back_at: float | None = None  # when the last outage ended
        self._lock = threading.Lock()
        self.lost = False

    def __getstate__(self) -> dict:
        """A storage travels to other processes pickled (Optuna's own way to hand a study to joblib or Dask):
        everything but its lock, and without the memory of an outage on this side."""
        return {"storage": self._storage, "url": self._url, "wait": self._wait, "lost": self.lost}

    def __setstate__(self, state: dict) -> None:
        self._storage, self._url, self._wait, self.lost = state["storage"], state["url"], state["wait"], state["lost"]
        self._down_since = self._back_at = None
        self._lock = threading.Lock()
        if self.rdb.url.startswith("sqlite"):  # RDBStorage made its engine anew, without our transactions
            _sqlite_for_several_processes(self.rdb)

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
                self._back_at = time.monotonic()
                print(f"hpsearch: the storage is back after {self._back_at - self._down_since:.0f} s", file=sys.stderr, flush=True)
                self._down_since = None

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self._call("record_heartbeat", trial_id)
        except StorageLost:
            pass  # said by the worker's own thread; a heartbeat thread must not die with a traceback

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna fails these next, and a finished trial takes no attributes: say why on each first. (A private
        call of BaseHeartbeat's: the one place between finding a stale trial and failing it.)

        None for one grace period after an outage: no worker could beat while the storage was away, so the
        silence it explains is not a death. (After a 10-second PostgreSQL outage with 5-second heartbeats, a
        worker failed the other's live trial as stale and retried it from the start, 3 times in 3.)"""
        grace = self.rdb.grace_period
        if self._down_since is not None or (self._back_at is not None and time.monotonic() - self._back_at < grace):
            return []
        stale = []
        for trial_id in self._call("_get_stale_trial_ids", study_id):
            try:
                self._call("set_trial_user_attr", trial_id, FAIL_REASON, stale_reason(self.rdb.grace_period))
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
