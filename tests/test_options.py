"""A run's options: `--jobs` workers get every one of them, and the study's note runs the study again."""

import json
import os
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import torch
from conftest import TINY_SPACE
from optuna.trial import TrialState
from test_study import BIN

from search.record import SAMPLER_SEED, StudyRecord, steps_run
from search.storage import Location
from search.study.config import WORKER_OPTIONS, RunConfig
from search.study.strategy import trial_seed
from search.study.workers import start_workers
from search.winner.models import has_weights
from spaces import get_space

# every run option that changes what a worker does, each away from its default
OPTIONS = {"device": "cpu", "epochs": 2, "checkpoint_every": 0, "storage_wait": 7, "keep": 1, "sampler": "random",
           "pruner": "none", "seed": 5, "heartbeat": 11}


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def environment(pid: int) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry)


def test_a_jobs_worker_gets_every_option_of_its_run_and_trains_by_them(tiny_images, tmp_path):
    flags = [w for k, v in OPTIONS.items() for w in (f"--{k.replace('_', '-')}", str(v))]
    command = [BIN / "hpsearch", "run", "--space", TINY_SPACE, "--data", tiny_images, "--quiet", "--trials", 3, "--jobs", 2, *flags]
    first = subprocess.Popen(list(map(str, command)), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    # the worker imports torch for seconds: its environment can be read meanwhile (once it has its own: between
    # the fork and the exec, a child's /proc/PID/environ is still its parent's)
    while not children(first.pid) or WORKER_OPTIONS not in environment(children(first.pid)[0]):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
        time.sleep(0.05)
    received = environment(children(first.pid)[0])[WORKER_OPTIONS]
    out, _ = first.communicate(timeout=1800)
    assert first.returncode == 0, out
    options = json.loads(received)
    assert {k: options[k] for k in OPTIONS} == OPTIONS  # as its process received them
    assert options["worker"] == 1 and options["trials"] == 3 and options["storage"] == "sqlite:///studies.db"

    # The same options, three trials more: a worker alone runs them (the first process may have run all three above)
    more = subprocess.run([BIN / "hpsearch", "worker"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, WORKER_OPTIONS: json.dumps({**options, "trials": 6})})
    assert more.returncode == 0, more.stderr
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    its = [t for t in finished if t.number >= 3]
    assert len(finished) == 6 and len({t.user_attrs["worker"] for t in its}) == 1  # the worker's own trials
    assert all(t.state == TrialState.COMPLETE and t.user_attrs[steps_run("epoch")] == 2 for t in its)  # epochs, no pruner
    assert all(t.user_attrs["device"] == "cpu" for t in its)
    assert all(t.system_attrs[SAMPLER_SEED] == trial_seed(5, t.number) for t in study.trials)  # the seed
    assert StudyRecord.read(study).search == {"sampler": "random", "pruner": "none"}
    store = Location(storage).artifact_store()
    assert sum(has_weights(store, t) for t in study.trials) == 1  # keep 1, whichever process ran the best


def test_the_note_runs_the_study_again_with_every_option_not_at_its_default():
    options = RunConfig(space=str(TINY_SPACE), storage="postgresql://me:pw@db/s", study="s", trials=9, jobs=3, weights="w/",
                        **OPTIONS)
    command = options.command()
    assert command[:4] == ["hpsearch", "run", "--space", str(TINY_SPACE)] and ":pw@" not in " ".join(command)
    for flag, value in [("--storage", "postgresql://me@db/s"), ("--study", "s"), ("--trials", "9"), ("--jobs", "3"),
                        ("--weights", "w/"), ("--checkpoint-every", "0"), ("--storage-wait", "7"), ("--heartbeat", "11"),
                        ("--device", "cpu"), ("--sampler", "random"), ("--pruner", "none"), ("--seed", "5"), ("--keep", "1")]:
        assert command[command.index(flag) + 1] == value
    assert "--pretrained" in command  # --weights implies it
    again = RunConfig.from_worker(json.dumps(options.for_worker(2)))
    assert again.command() == command and again.worker == 2 and get_space(again.space).name == "tiny"


def test_jobs_workers_are_spread_over_the_gpus_round_robin_each_pinned_in_its_environment(tmp_path, monkeypatch):
    """What a machine without a GPU can check: which worker gets which GPU, and the environment each worker
    process really receives. (Their training on those GPUs needs CUDA: tests/test_cuda.py, benchmarks/gpu.sh.)"""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")  # as a scheduler allots them: this process sees 3 GPUs
    # each worker's Python writes down its environment as it starts (a worker without CUDA then stops at once,
    # so that reading /proc/PID/environ would race with its exit)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        f"import json, os\npath = os.path.join({str(tmp_path)!r}, f'{{os.getpid()}}.json')\n"
        f"open(path + '.part', 'w').write(json.dumps(dict(os.environ)))\nos.rename(path + '.part', path)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    options = RunConfig(space=str(TINY_SPACE), storage=f"sqlite:///{tmp_path / 's.db'}", study="tiny", trials=8, jobs=4,
                        gpus=[0, 2])
    workers = start_workers(options, gpus=[0, 2])  # worker 0, this process, takes GPU 0 (the machine's 4)
    try:
        deadline = time.monotonic() + 600
        while not all((tmp_path / f"{w.pid}.json").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        seen = [json.loads((tmp_path / f"{w.pid}.json").read_text()) for w in workers]
    finally:
        for w in workers:
            w.kill()
            w.wait()
    assert [e["CUDA_VISIBLE_DEVICES"] for e in seen] == ["6", "4", "6"]  # workers 1, 2, 3 on GPUs 2, 0, 2
    assert [json.loads(e[WORKER_OPTIONS])["device"] for e in seen] == ["cuda"] * 3  # each its one visible GPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpus_are_refused_in_one_line_where_there_is_no_cuda(tmp_path):
    refused = subprocess.run([BIN / "hpsearch", "run", "--space", "digits", "--gpus", "0,1"], cwd=tmp_path, capture_output=True,
                             text=True)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "hpsearch: error: --gpus 0,1: this machine has no CUDA device: leave --gpus out to train on the CPU"]
    assert not list(tmp_path.iterdir())  # before any work
