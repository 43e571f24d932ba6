"""Slurm, really: the repository's batch script (deploy/slurm/hpsearch.sbatch) submitted as a 3-task array to
real Slurm daemons, its tasks on one study of a real PostgreSQL server; one task is cancelled with SIGTERM
in the middle of a trial (scancel --full --signal=TERM, as a preemption or the time limit does) and the
others finish the study, resuming that trial from its last epoch."""

import os
import signal
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import TINY_SPACE
from optuna.trial import TrialState
from postgres import PASSWORD, postgres_server
from slurm import slurm_cluster
from test_resume import FINISHED, check_retried

from search.storage import Location

SCRIPT = Path(__file__).parent.parent / "deploy" / "slurm" / "hpsearch.sbatch"
TRIALS = 6


@pytest.fixture
def cluster():
    with slurm_cluster() as running:
        yield running


def array_task(pid: int) -> str:
    """The Slurm array task a process runs in, from its environment."""
    environ = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in e)
    return environ["SLURM_ARRAY_TASK_ID"]


def test_an_array_job_shares_one_study_and_a_task_stopped_by_sigterm_is_resumed(cluster, tiny_images, tmp_path, monkeypatch):
    monkeypatch.setenv("HPSEARCH_DB_PASSWORD", PASSWORD)
    with postgres_server() as new_database:
        url = new_database()
        cluster.env |= {"HPSEARCH_STORAGE": url, "HPSEARCH_ARTIFACTS": str(tmp_path / "artifacts"), "HPSEARCH_SPACE": str(TINY_SPACE),
                        "HPSEARCH_TRIALS": str(TRIALS), "HPSEARCH_ARGS": f"--data {tiny_images} --epochs 30 --checkpoint-every 0",
                        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                        "HPSEARCH_DB_PASSWORD": PASSWORD}  # exported, as the script says: sbatch passes it on
        storage = Location(url).open()
        job = cluster("sbatch", "--parsable", "--array=0-2", f"--output={tmp_path}/task-%a.out", f"--chdir={tmp_path}",
                      SCRIPT).strip()
        task, stopped = stop_a_task_mid_trial(cluster, job, storage, tmp_path)
        cluster.wait_until_done(job)
        outputs = {p.name: p.read_text() for p in sorted(tmp_path.glob("task-*.out"))}
        trials = optuna.load_study(study_name="tiny", storage=storage).trials
        table = [(t.number, t.state.name, t.user_attrs.get("fail_reason"), len(t.intermediate_values),
                  t.user_attrs.get("resumed_from_epoch"), t.system_attrs.get("failed_trial"), t.params) for t in trials]
        print("\n".join(map(str, table)))
        assert cluster.exit_code(job, task) == "143:0", (outputs, cluster.log())
        assert outputs[f"task-{task}.out"].strip().splitlines()[-1].startswith("hpsearch: stopped by SIGTERM"), outputs
        finished = [t for t in trials if t.state in FINISHED]
        assert len({tuple(sorted(t.params.items())) for t in finished}) == TRIALS, table  # all parameters distinct
        interrupted = next(t for t in trials if t.number == stopped.number)
        assert interrupted.user_attrs["fail_reason"] == "interrupted", table
        check_retried(url, interrupted, TRIALS)  # N finished, none left running, resumed from its last epoch, none twice


def stop_a_task_mid_trial(cluster, job: str, storage, folder: Path) -> tuple[str, optuna.trial.FrozenTrial]:
    """Once a trial has reported two epochs, SIGTERM to its array task (to every process of it, --full)."""
    deadline = time.monotonic() + 600
    while True:
        said = {p.name: p.read_text()[-3000:] for p in folder.glob("task-*.out")}
        assert time.monotonic() < deadline and cluster.tasks(job), f"no trial ran two epochs: {said}"
        try:
            running = optuna.load_study(study_name="tiny", storage=storage).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # no study yet
            running = []
        trial = next((t for t in running if len(t.intermediate_values) >= 2), None)
        if trial is not None:
            task = array_task(int(trial.user_attrs["worker"].rsplit(":", 1)[1]))
            cluster("scancel", "--full", f"--signal={signal.SIGTERM.name.removeprefix('SIG')}", f"{job}_{task}")
            return task, trial
        time.sleep(0.5)
