"""How many trials per second 1, 8 and 32 workers record on one PostgreSQL study, and how many connections
the server holds for them at most: a trivial objective (four suggestions, one report, a user attribute), so
that the storage is all that is measured, run through hpsearch's own worker loop (tests/trivial_workers.py:
its storage with heartbeats, its seeded sampler, the surplus check, the stop-when-enough callback). The
server is a real one started in a temporary folder, as in the tests, with max_connections 300.

    python benchmarks/workers.py [--workers 1 8 32] [--trials 640]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from postgres import PASSWORD, postgres_server  # noqa: E402
from trivial_workers import Connections, start  # noqa: E402

from search.storage import POOL, Location  # noqa: E402
from search.study.resume import FINISHED  # noqa: E402


def measure(server, workers: int, wanted: int) -> dict:
    url = server()
    connections = Connections(server, url.rsplit("/", 1)[1])
    try:
        processes, started = start(url, workers, wanted)
        for p in processes:
            p.communicate()
        seconds = time.perf_counter() - started
    finally:
        connections.stop()
    trials = optuna.load_study(study_name="many", storage=Location(url).open()).trials
    finished = [t for t in trials if t.state in FINISHED]
    first, last = min(t.datetime_start for t in finished), max(t.datetime_complete for t in finished)
    return {"rate": len(finished) / min(seconds, (last - first).total_seconds()), "finished": len(finished),
            "failed": sum(p.returncode != 0 for p in processes), "peak": connections.peak, "each": connections.per_worker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--trials", type=int, default=640)
    args = parser.parse_args()
    os.environ["HPSEARCH_DB_PASSWORD"] = PASSWORD
    with postgres_server() as server:
        results = {n: measure(server, n, args.trials) for n in args.workers}
    print(f"PostgreSQL, trivial objective, {args.trials} trials, on {os.cpu_count()} CPU cores (trials/s from the first "
          f"trial's start to the last one's end); a worker holds at most {POOL} connections (search.storage.POOL):")
    print("| workers | trials/s | finished | workers failed | server's peak connections | most held by one worker |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, r in results.items():
        print(f"| {n} | {r['rate']:.1f} | {r['finished']} | {r['failed']} | {r['peak']} | {r['each']} |")


if __name__ == "__main__":
    main()
