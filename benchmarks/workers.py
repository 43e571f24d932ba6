"""How many trials per second several workers record on one PostgreSQL study: a trivial objective
(four suggestions, one report, a user attribute), so that the storage is all that is measured, run
through hpsearch's own worker loop (heartbeats, the surplus check, the stop-when-enough callback).
1 worker is the baseline; the server is a real one started in a temporary folder, as in the tests.

    python benchmarks/workers.py [--workers 8] [--trials 1000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from postgres import PASSWORD, postgres_server

from search.record import WORKER
from search.storage import Location
from search.study.resume import FINISHED, is_surplus, retry, stop_when_enough


def objective(wanted: int):
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


def worker(url: str, wanted: int, seed: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="bench", storage=Location(url).open(heartbeat=30, on_stale=retry),
                              sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(objective(wanted), callbacks=[stop_when_enough(wanted)], catch=(RuntimeError,))


def trials_per_second(url: str, workers: int, wanted: int) -> tuple[float, int, int]:
    optuna.create_study(study_name="bench", storage=Location(url).open(), direction="maximize")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=worker, args=(url, wanted, seed)) for seed in range(workers)]
    start = time.perf_counter()
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    seconds = time.perf_counter() - start
    trials = optuna.load_study(study_name="bench", storage=Location(url).open()).trials
    finished = sum(t.state in FINISHED for t in trials)
    first, last = min(t.datetime_start for t in trials), max(t.datetime_complete for t in trials)
    seconds = min(seconds, (last - first).total_seconds())  # from the first trial's start to the last one's end
    surplus = sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
    errors = sum(p.exitcode != 0 for p in processes)
    return finished / seconds, finished, errors, surplus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=1000)
    args = parser.parse_args()
    os.environ["HPSEARCH_DB_PASSWORD"] = PASSWORD
    with postgres_server() as new_database:
        one = trials_per_second(new_database(), 1, args.trials)
        many = trials_per_second(new_database(), args.workers, args.trials)
    print(f"PostgreSQL, trivial objective, {args.trials} trials, on {os.cpu_count()} CPU cores "
          f"(first trial's start to the last one's end):")
    for workers, (rate, finished, errors, surplus) in ((1, one), (args.workers, many)):
        print(f"  {workers} worker(s): {rate:6.1f} trials/s ({finished} finished, {surplus} surplus, {errors} workers failed)")
    print(f"  ratio {many[0] / one[0]:.2f} (target: at least 50 trials/s with {args.workers} workers)")


if __name__ == "__main__":
    main()
