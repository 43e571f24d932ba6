"""Resume anywhere: killed and interrupted trials, several workers on a real PostgreSQL server and on
SQLite, studies copied between storages."""

import functools
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request

import optuna
import pytest
from browser import dashboard
from conftest import TINY_SPACE
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import Trial, TrialState
from optuna_dashboard import get_note
from postgres import PASSWORD, postgres_server
from test_study import BIN, hpsearch

from search.record import stale_reason
from search.storage import Location
from search.study.objective import SURPLUS
from search.study.resume import retry

RUN = ["run", "--space", TINY_SPACE, "--quiet"]
# Tests that kill a worker need its trial noticed soon: 3 heartbeats of 2 s. The others keep a heartbeat
# that a worker starved of CPU on a busy machine does not miss (a 1 s heartbeat failed live trials there).
KILLED = ["--heartbeat", 2, "--checkpoint-every", 0]  # and a checkpoint after every epoch
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as new_database:
        yield new_database


@pytest.fixture
def password(monkeypatch):
    monkeypatch.setenv("HPSEARCH_DB_PASSWORD", PASSWORD)  # the URLs carry no password


def start(*args, cwd) -> subprocess.Popen:
    """hpsearch as a terminal's foreground command: Ctrl-C's SIGINT reaches it, even where this test runs in
    the background of a script (which starts its children with SIGINT ignored, as POSIX shells do)."""
    return subprocess.Popen([BIN / "hpsearch", *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@functools.cache
def opened(storage: str):
    """One storage per URL for the whole test run: polling opens none anew (a busy machine feels each)."""
    return Location(storage).open()


def trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="tiny", storage=opened(storage)).trials


def running_trial_of(worker: subprocess.Popen, storage: str, epochs: int):
    try:
        mine = [t for t in trials(storage) if t.user_attrs.get("worker", "").endswith(f":{worker.pid}")]
    except KeyError:  # no study yet
        return None
    return next((t for t in mine if t.state == TrialState.RUNNING and len(t.intermediate_values) >= epochs), None)


def stop_mid_trial(worker: subprocess.Popen, storage: str, sig=signal.SIGKILL, epochs: int = 2):
    """Send `sig` to `worker` once its trial has reported `epochs` epochs; that trial as it was then left.
    Waits on the event, for minutes if need be (a machine busy with other work is slow, not wrong)."""
    deadline = time.monotonic() + 900
    while (trial := running_trial_of(worker, storage, epochs)) is None:
        assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()[0]
        time.sleep(0.5)
    worker.send_signal(sig)
    worker.wait(timeout=600)
    return next(t for t in trials(storage) if t.number == trial.number)


def _where(text, needle, width=200):
    i = text.find(needle)
    return text[max(0, i - width): i + width]



def check_retried(storage: str, stopped, wanted: int):
    """The stopped trial failed, was run again with its parameters from its checkpoint, and the study
    ended with exactly `wanted` finished trials and nothing left running or waiting."""
    everything = trials(storage)
    assert not [t.number for t in everything if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    finished = [t.number for t in everything if t.state in FINISHED]
    assert len(finished) == len(set(finished)) == wanted
    assert next(t for t in everything if t.number == stopped.number).state == TrialState.FAIL
    retry = [t for t in everything if t.system_attrs.get("failed_trial") == stopped.number]
    assert len(retry) == 1 and retry[0].state in FINISHED and retry[0].params == stopped.params
    reported, resumed = len(stopped.intermediate_values), retry[0].user_attrs["resumed_from_epoch"]
    # no reported epoch is trained again: its checkpoint comes first (one more if the stop fell between the two)
    assert reported <= resumed <= reported + 1 and resumed >= 1
    both = range(1, min(resumed, reported) + 1)  # the epochs the stopped trial reported and its retry did not train again
    assert [retry[0].intermediate_values[e] for e in both] == [stopped.intermediate_values[e] for e in both]
    print(f"trial {stopped.number}: stopped after {reported} reported epochs, resumed after epoch {resumed}")
    return retry[0]


def test_sqlite_a_killed_run_resumes_its_trial_from_its_checkpoint_when_run_again(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = [*RUN, *KILLED, "--trials", 1, "--epochs", 3]
    killed = stop_mid_trial(start(*args, cwd=tmp_path), storage)
    assert killed.state == TrialState.RUNNING  # an orphan, until a run notices its silence
    hpsearch(*args, cwd=tmp_path)
    check_retried(storage, killed, 1)
    assert not list((tmp_path / "artifacts").glob("checkpoint-*"))  # checkpoints go when their trial ends


def test_ctrl_c_fails_the_trial_and_the_same_command_continues_it(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = [*RUN, "--checkpoint-every", 0, "--trials", 1, "--epochs", 3]
    worker = start(*args, cwd=tmp_path)
    interrupted = stop_mid_trial(worker, storage, sig=signal.SIGINT)
    said = worker.stdout.read().strip().splitlines()
    assert worker.returncode == 130 and said[-1] == "hpsearch: interrupted; run the same command again to continue the study"
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["fail_reason"] == "interrupted"
    hpsearch(*args, cwd=tmp_path)
    check_retried(storage, interrupted, 1)


def test_postgres_a_killed_workers_trial_is_retried_by_a_surviving_worker(postgres, password, tmp_path):
    storage = postgres()
    args = [*RUN, *KILLED, "--storage", storage, "--trials", 2, "--epochs", 3]
    victim, survivor = start(*args, cwd=tmp_path), start(*args, cwd=tmp_path)
    killed = stop_mid_trial(victim, storage)
    out, _ = survivor.communicate(timeout=1800)
    assert survivor.returncode == 0, out
    retry = check_retried(storage, killed, 2)
    assert retry.user_attrs["worker"].endswith(f":{survivor.pid}")


def test_postgres_four_workers_started_at_once_share_one_study_with_distinct_parameters(postgres, password, tiny_images, tmp_path):
    storage = postgres()
    args = [*RUN, "--heartbeat", 10, "--storage", storage, "--data", tiny_images, "--trials", 9, "--epochs", 1]
    workers = [start(*args, cwd=tmp_path) for _ in range(4)]
    outputs = [w.communicate(timeout=1800)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0], outputs
    everything = trials(storage)
    assert sorted(t.number for t in everything if t.state in FINISHED) == list(range(9))
    assert all(t.user_attrs.get("fail_reason") == SURPLUS for t in everything if t.state not in FINISHED)
    drawn = [tuple(sorted(t.params.items())) for t in everything if t.state in FINISHED]
    assert len(set(drawn)) == len(drawn) == 9  # each worker draws from a stream of its own
    assert all("worker" in t.user_attrs for t in everything)  # surplus trials too
    assert len({t.user_attrs["worker"] for t in everything}) > 1  # the work was shared

    # with the password in the URL, and everywhere it could leak: output, attributes, notes
    with_password = storage.replace("hpsearch@", f"hpsearch:{PASSWORD}@")
    os.environ.pop("HPSEARCH_DB_PASSWORD")
    more = [*RUN, "--data", tiny_images, "--trials", 10, "--epochs", 1]
    for command in (["status"], ["best"], more):
        said = hpsearch(*command, "--storage", with_password, cwd=tmp_path)
        outputs.append(said.stdout + said.stderr)
    storage = Location(with_password).open()
    study = optuna.load_study(study_name="tiny", storage=storage)
    stored = [study.user_attrs, storage.get_study_system_attrs(study._study_id), get_note(study)] + [(t.user_attrs, t.system_attrs) for t in study.trials]
    everywhere = json.dumps(stored, default=str) + "".join(outputs)
    assert PASSWORD not in everywhere, _where(everywhere, PASSWORD)


def test_sqlite_three_jobs_and_the_dashboard_at_once(tmp_path):
    """Several processes writing studies.db while optuna-dashboard reads it: no "database is locked"
    (optuna-dashboard issue 545), every answer 200, and the study ends with exactly its trials."""
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    args = [*RUN, "--epochs", 1]
    hpsearch(*args, "--trials", 1, cwd=tmp_path)  # the study exists before the dashboard starts
    with dashboard(storage, tmp_path, tmp_path / "dashboard.log") as url:
        answers, stop = [], threading.Event()

        def poll():  # what the dashboard's pages ask for, several times a second
            while not stop.wait(0.2):
                for path in ("/api/studies", "/api/studies/1?after=0"):
                    with urllib.request.urlopen(url + path, timeout=60) as response:
                        answers.append(response.status)

        reader = threading.Thread(target=poll)
        reader.start()
        try:
            result = hpsearch(*args, "--trials", 9, "--jobs", 3, cwd=tmp_path, check=False)
        finally:
            stop.set()
            reader.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "locked" not in result.stdout + result.stderr + (tmp_path / "dashboard.log").read_text()
    assert len(answers) > 10 and set(answers) == {200}
    everything = trials(storage)
    assert sorted(t.number for t in everything if t.state in FINISHED) == list(range(9))
    assert len({t.user_attrs["worker"] for t in everything}) >= 2  # the first run's, then the jobs'


def test_copy_sqlite_to_postgres_and_back_keeps_everything_and_resumes(postgres, password, tmp_path):
    first, back = tmp_path / "first", tmp_path / "back"
    first.mkdir()
    back.mkdir()
    hpsearch(*RUN, "--trials", 2, "--epochs", 1, cwd=first)
    server = postgres()
    said = hpsearch("copy", "--from", "sqlite:///studies.db", "--to", server, "--to-artifacts", tmp_path / "pg-files", cwd=first).stdout
    assert said.startswith("copied study 'tiny' (2 trials, 3 notes, ") and PASSWORD not in said
    hpsearch("copy", "--from", server, "--from-artifacts", tmp_path / "pg-files", "--to", "sqlite:///studies.db", cwd=back)

    def contents(folder):
        where = Location(f"sqlite:///{folder / 'studies.db'}")
        storage = where.open()
        study, store = optuna.load_study(study_name="tiny", storage=storage), where.artifact_store()
        files = {}
        for trial in study.trials:
            for meta in get_all_artifact_meta(trial, storage=storage):
                with store.open_reader(meta.artifact_id) as reader:
                    files[(trial.number, meta.filename)] = reader.read()
        notes = [get_note(study)] + [get_note(Trial(study, t._trial_id)) for t in study.trials]
        return [(t.number, t.state, t.value, t.params, t.intermediate_values) for t in study.trials], notes, files, study.user_attrs

    before, after = contents(first), contents(back)
    assert before == after and len(before[2]) >= 8 and all(before[1])
    hpsearch(*RUN, "--trials", 3, "--epochs", 1, cwd=back)  # the copy goes on where it was
    assert sum(t.state in FINISHED for t in trials(f"sqlite:///{back / 'studies.db'}")) == 3


def test_a_database_of_an_older_optuna_schema_is_refused_with_the_upgrade_command(tmp_path):
    database = tmp_path / "studies.db"
    optuna.create_study(study_name="old", storage=f"sqlite:///{database}")
    with sqlite3.connect(database) as db:  # as a studies.db made by Optuna 3.0 reads
        db.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
    refused = hpsearch("status", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "was made by an older Optuna" in refused.stderr and "optuna storage upgrade" in refused.stderr


def wait_until_running(storage: str, trials_running: int, epochs: int) -> list[optuna.trial.FrozenTrial]:
    """Until `trials_running` trials run, each with at least `epochs` epochs reported; those trials."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            running = [t for t in trials(storage) if t.state == TrialState.RUNNING and len(t.intermediate_values) >= epochs]
        except KeyError:  # no study yet
            running = []
        if len(running) >= trials_running:
            return running
        time.sleep(0.5)
    raise AssertionError(f"{trials_running} trials never ran together")


def test_postgres_stopped_for_10_seconds_while_two_workers_run_and_both_go_on(postgres, password, tiny_images, tmp_path):
    storage = postgres()
    # three heartbeats of 5 s are about the outage and its backoff: the time the storage was away must not count
    # as silence, so that no worker takes the other's live trial for dead
    args = [*RUN, "--heartbeat", 5, "--storage", storage, "--data", tiny_images, "--trials", 2, "--epochs", 30]
    workers = [start(*args, cwd=tmp_path) for _ in range(2)]
    wait_until_running(storage, 2, epochs=1)
    postgres.stop()
    time.sleep(10)
    postgres.start()
    outputs = [w.communicate(timeout=1800)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    for said in outputs:  # each worker said once that it waits, and once that the storage is back
        assert said.count("hpsearch: lost the storage at") == 1 and "waiting up to 60 s" in said, said
        assert said.count("hpsearch: the storage is back after") == 1 and "Traceback" not in said, said
    everything = trials(storage)
    shown = [(t.number, t.state.name, t.user_attrs.get("fail_reason"), t.system_attrs) for t in everything], outputs
    assert [t.number for t in everything if t.state in FINISHED] == [0, 1], shown
    assert all(t.state in FINISHED for t in everything), shown  # none failed, running or waiting: nothing retried
    for t in everything:  # every epoch reported once, in order: none trained twice
        assert sorted(t.intermediate_values) == list(range(1, t.user_attrs["epochs_run"] + 1))


def test_postgres_lost_for_longer_than_the_wait_exits_3_keeps_checkpoints_and_the_same_command_finishes(
        postgres, password, tiny_images, tmp_path):
    storage = postgres()
    args = [*RUN, *KILLED, "--storage-wait", 3, "--storage", storage, "--data", tiny_images, "--trials", 3, "--epochs", 30]
    workers = [start(*args, cwd=tmp_path) for _ in range(2)]
    wait_until_running(storage, 2, epochs=2)
    postgres.stop()
    try:
        outputs = [w.communicate(timeout=1800)[0] for w in workers]
    finally:
        postgres.start()
    assert [w.returncode for w in workers] == [3, 3], outputs
    for said in outputs:
        assert said.strip().splitlines()[-1] == f"hpsearch: lost the storage at {storage} for more than 3 s: " \
                                                 f"run the same command again to continue" and "Traceback" not in said
    assert len(list((tmp_path / "artifacts").glob("checkpoint-*"))) == 2  # kept for the retries
    again = hpsearch(*args, cwd=tmp_path)
    everything = trials(storage)
    assert sorted(t.number for t in everything if t.state in FINISHED) == [2, 3, 4]
    lost = [t for t in everything if t.state == TrialState.FAIL]
    assert len(lost) == 2 and {t.user_attrs["fail_reason"] for t in lost} == {"worker stopped (no heartbeat for 6 s)"}
    retries = [t for t in everything if t.system_attrs.get("failed_trial") is not None]
    assert sorted(t.system_attrs["failed_trial"] for t in retries) == [t.number for t in lost]
    assert all(t.user_attrs["resumed_from_epoch"] >= 1 for t in retries)  # from their checkpoints
    assert all(f"retries trial {t.number} from epoch" in again.stdout + again.stderr for t in lost)
    assert not list((tmp_path / "artifacts").glob("checkpoint-*"))  # gone once their trials finished


RACE = """
import sys, time
import optuna
from search.storage import Location
from search.study.resume import fail_stale_trials, retry

storage = Location(sys.argv[1]).open(heartbeat=1, on_stale=retry)
studies = [optuna.load_study(study_name=f"race{i}", storage=storage) for i in range(len(sys.argv) - 2)]
for study, at in zip(studies, map(float, sys.argv[2:])):
    time.sleep(max(0.0, at - time.time()))  # both processes at the same instant
    fail_stale_trials(study)
"""


def test_sqlite_two_processes_failing_the_same_stale_trial_at_once_retry_it_once(tmp_path):
    import sys

    url, rounds = f"sqlite:///{tmp_path / 'studies.db'}", 20
    storage = Location(url).open(heartbeat=1, on_stale=retry)
    for i in range(rounds):  # a running trial in each study, whose worker then went silent
        study = optuna.create_study(study_name=f"race{i}", storage=storage)
        storage.record_heartbeat(study.ask()._trial_id)
    time.sleep(3.5)  # three heartbeats: every trial is stale
    at = [str(time.time() + 6 + 0.3 * i) for i in range(rounds)]
    racers = [subprocess.Popen([sys.executable, "-c", RACE, url, *at]) for _ in range(2)]
    assert [r.wait(timeout=120) for r in racers] == [0, 0]
    for i in range(rounds):
        states = [t.state for t in optuna.load_study(study_name=f"race{i}", storage=storage).trials]
        assert states == [TrialState.FAIL, TrialState.WAITING], (i, states)  # failed once, queued once


class Stolen:
    """An objective whose first trial another worker fails as stale while it runs (as after a long silence),
    and which then ends normally, as a worker cut off from the storage for a while does."""

    def __init__(self, url: str):
        self.url, self.current = url, None

    def __call__(self, trial: optuna.Trial) -> float:
        self.current = trial.number
        if trial.number == 0:
            other = Location(self.url).open()  # another worker's view of the study
            other.set_trial_user_attr(trial._trial_id, "fail_reason", stale_reason(15))
            other.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return float(trial.number)


def test_a_worker_whose_trial_was_taken_over_says_so_in_one_line_and_goes_on(tmp_path, capsys):
    from search.study.run import _optimize

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=Location(url).open(), direction="maximize")
    _optimize(study, Stolen(url), [lambda study, trial: study.stop() if len(study.trials) >= 2 else None])
    said = capsys.readouterr().out.strip().splitlines()
    assert said == ["trial 0: another worker failed it as stale after this one sent no heartbeat for too long, and retries "
                    "it; this worker goes on with the next trial"]
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]


def test_sigterm_stops_a_run_and_its_workers_as_ctrl_c_does_and_the_same_command_continues_them(tiny_images, tmp_path):
    """A scheduler's preemption: SIGTERM to the run's first process only (as Kubernetes sends it), which passes
    it on to its --jobs worker; both trials are recorded as interrupted with their retries queued at once."""
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    # trials long enough that the worker, seconds in starting, runs one beside the first process's
    args = [*RUN, "--checkpoint-every", 0, "--data", tiny_images, "--trials", 6, "--epochs", 40, "--jobs", 2]
    first = start(*args, cwd=tmp_path)
    running = {t.number for t in wait_until_running(storage, 2, epochs=2)}
    first.send_signal(signal.SIGTERM)
    said = first.communicate(timeout=600)[0].strip().splitlines()
    assert first.returncode == 143 and said[-1] == "hpsearch: stopped by SIGTERM; run the same command again to continue the study", said
    everything = trials(storage)
    stopped = [t for t in everything if t.number in running]
    assert [t.state for t in stopped] == [TrialState.FAIL] * 2 and {t.user_attrs["fail_reason"] for t in stopped} == {"interrupted"}
    assert len({t.user_attrs["worker"] for t in stopped}) == 2  # the first process's trial, and its worker's
    assert sum(t.state == TrialState.WAITING for t in everything) == 2  # both retries queued at once
    hpsearch(*args, cwd=tmp_path)
    for trial in stopped:
        check_retried(storage, trial, 6)
