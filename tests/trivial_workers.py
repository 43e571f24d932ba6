"""Many worker processes on one study, each running hpsearch's worker loop (its storage with heartbeats and
the outage wait, its seeded sampler, the surplus check, the stop-when-enough callback) on a trivial
objective, so that 2 cores can hold 32 of them. For tests/test_many_workers.py and benchmarks/workers.py.

    python tests/trivial_workers.py URL WANTED SEED   # one worker
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna


def objective(wanted: int):
    from search.record import WORKER
    from search.study.resume import is_surplus

    def trivial(trial: optuna.Trial) -> float:
        if is_surplus(trial, wanted):
            raise RuntimeError("surplus")
        trial.suggest_categorical("model", ["baseline", "resnet50"])
        trial.suggest_categorical("batch_size", [8, 32, 64])
        lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True)
        trial.report(lr, 1)
        trial.set_user_attr(WORKER, os.getpid())
        return lr

    return trivial


def work(url: str, wanted: int, seed: int) -> None:
    from search.storage import Location
    from search.study.resume import retry, stop_when_enough
    from search.study.strategy import make_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = Location(url).open(heartbeat=30, wait=600, on_stale=retry)  # a full server is waited for
    study = optuna.load_study(study_name="many", storage=storage, sampler=make_sampler("random", seed))
    study.optimize(objective(wanted), callbacks=[stop_when_enough(wanted)], catch=(RuntimeError,))


def start(url: str, workers: int, wanted: int) -> tuple[list[subprocess.Popen], float]:
    """The study made, then `workers` processes on it, each with a name of its own on the server."""
    from search.storage import Location

    storage = Location(url).open(wait=None)
    optuna.create_study(study_name="many", storage=storage, direction="maximize")
    storage.engine.dispose()  # only the workers' connections count
    processes = [subprocess.Popen([sys.executable, __file__, f"{url}?application_name=worker{seed}", str(wanted), str(seed)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for seed in range(workers)]
    return processes, time.perf_counter()


class Connections:
    """The server's connections to one database, counted 10 times a second while it runs: the most at once,
    and the most any one worker held."""

    def __init__(self, server, database: str):
        import psycopg

        from postgres import PASSWORD, USER

        self.db = psycopg.connect(host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, dbname=database,
                                  autocommit=True)
        self.peak, self.per_worker, self._stop = 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._count)
        self._thread.start()

    def _count(self) -> None:
        while not self._stop.wait(0.1):
            rows = self.db.execute("SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()").fetchall()
            names = Counter(name for (name,) in rows if name.startswith("worker"))
            self.peak = max(self.peak, len(rows))
            self.per_worker = max([self.per_worker, *names.values()])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.db.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    work(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
