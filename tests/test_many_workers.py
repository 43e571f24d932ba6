"""32 worker processes on one PostgreSQL study whose server takes fewer connections than they would hold:
each trial once, no parameters drawn twice, the connections each worker holds bounded (search.storage.POOL),
and a worker the server refuses for too many connections waits and retries instead of dying."""

import optuna
import pytest
from postgres import PASSWORD, postgres_server
from trivial_workers import Connections, start

from search.storage import POOL, Location
from search.study.resume import FINISHED

WORKERS, WANTED, MAX_CONNECTIONS = 32, 96, 40  # 32 workers would hold up to 64 connections at once


@pytest.fixture
def postgres(monkeypatch):
    monkeypatch.setenv("HPSEARCH_DB_PASSWORD", PASSWORD)
    with postgres_server(max_connections=MAX_CONNECTIONS) as new_database:
        yield new_database


def test_32_workers_share_one_study_exactly_and_wait_for_a_full_server(postgres):
    url = postgres()
    connections = Connections(postgres, url.rsplit("/", 1)[1])
    try:
        processes, _ = start(url, WORKERS, WANTED)
        outputs = [p.communicate(timeout=1200)[0] for p in processes]
    finally:
        connections.stop()
    assert [p.returncode for p in processes] == [0] * WORKERS, next(o for p, o in zip(processes, outputs) if p.returncode)
    trials = optuna.load_study(study_name="many", storage=Location(url).open()).trials
    finished = [t for t in trials if t.state in FINISHED]
    assert sorted(t.number for t in finished) == list(range(WANTED)) and not [t for t in trials if t.state.name == "RUNNING"]
    drawn = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(drawn)) == WANTED  # each worker draws from a stream of its own
    assert 1 < connections.per_worker <= POOL and connections.peak < MAX_CONNECTIONS  # the counter holds one too
    refused = [o for o in outputs if "too many clients" in o]
    assert refused and all("waiting up to 600 s for it" in o and "Traceback" not in o for o in refused)  # waited, not died
    print(f"{WORKERS} workers: peak {connections.peak} connections, at most {connections.per_worker} per worker; "
          f"{len(refused)} waited for the full server")
