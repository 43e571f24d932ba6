"""A run's options, the command line that runs it again (for the study's note), and its `--jobs` workers,
which get every option of the process that starts them by construction: the options themselves, as JSON
in their environment, not a command line rebuilt flag by flag."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field, fields, replace

from typing import TYPE_CHECKING

from search.storage import PASSWORD_VARIABLE, STORAGE_WAIT, Location
from search.study.keep import KEEP
from search.study.known import ENQUEUE_TOP
from search.study.resume import CHECKPOINT_EVERY, HEARTBEAT
from trainers.errors import InputError

if TYPE_CHECKING:  # spaces bring torch along: the CLI reads these options' defaults without waiting for it
    from spaces import Space

WORKER_OPTIONS = "HPSEARCH_WORKER_OPTIONS"  # a --jobs worker's options, as JSON (RunOptions.for_worker)


def _flag(name: str | None, always: bool = False) -> dict:
    """How a field shows in the command line of the study's note: its flag (None: not at all), and whether
    it shows at its default value too. A field without this shows as --its-name when not at its default."""
    return {"flag": name, "always": always}


@dataclass
class RunOptions:
    space: Space = field(metadata=_flag(None))
    storage: str = field(metadata=_flag("--storage", always=True))
    study_name: str = field(metadata=_flag("--study", always=True))
    trials: int = field(metadata=_flag("--trials", always=True))
    data: str | None = None  # None: the space's own data
    epochs: int | None = None  # None: the space's epochs
    device: str = "auto"
    seed: int = field(default=0, metadata=_flag("--seed", always=True))
    pretrained: bool | None = None  # None: as the space says; --weights implies it
    weights: str | None = None
    artifacts: str | None = None
    progress: bool = field(default=True, metadata=_flag(None))
    space_arg: str | None = field(default=None, metadata=_flag(None))  # the space as the user named it (a name or a .py file)
    new_study: bool = field(default=False, metadata=_flag(None))  # refuse to continue an existing study of that name
    heartbeat: int = HEARTBEAT  # seconds; a trial silent for three heartbeats is failed and retried
    storage_wait: float = STORAGE_WAIT  # seconds a lost database is waited for before the worker stops
    keep: int = KEEP  # the weights of this many best trials are kept
    checkpoint_every: float = CHECKPOINT_EVERY  # seconds of training between a trial's epoch checkpoints (0: every epoch)
    sampler: str | None = None  # None: as the study recorded, or the space says
    pruner: str | None = None
    jobs: int = 1  # worker processes on this machine
    gpus: list[int] | None = None  # the visible GPUs the workers are spread over (None: all, where the device is cuda)
    cost_device: str | None = None  # where a model's latency and throughput are measured (None: where it trains)
    max_ms: float | None = None  # limits on what a model may cost: a configuration over one is not trained
    max_params: int | None = None
    max_mb: float | None = None
    objectives: str | None = None  # "f1_weighted,ms": a multi-objective study (search.objectives); None: the metric alone
    enqueue: str | None = None  # a file of parameter sets, or a study whose best ones run first (search.study.known)
    enqueue_top: int = ENQUEUE_TOP
    learn_from: str | None = None  # a study of the same space whose finished trials are the sampler's history
    from_model: str | None = field(default=None, metadata=_flag("--from"))  # STUDY[:TRIAL]: every trial starts from its model
    from_storage: str | None = None  # where the studies --from, --enqueue and --learn-from name live (None: --storage)
    no_default_first: bool = False  # True: a new study does not try the space's default configuration first
    worker: int = field(default=0, metadata=_flag(None))  # > 0: a --jobs worker, which only searches

    def __post_init__(self):
        if self.weights and self.pretrained is None:
            self.pretrained = True

    @property
    def location(self) -> Location:
        return Location(self.storage, self.artifacts)

    def command(self) -> list[str]:
        """The command line that runs this study again, password left out: every option not at its default."""
        words = ["hpsearch", "run", "--space", self.space_arg or self.space.name]
        for f in fields(self):
            flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
            value = self.location.bare if f.name == "storage" else getattr(self, f.name)
            if flag is None or (value == f.default and not f.metadata.get("always")) or value is None or value is False:
                continue
            text = ",".join(map(str, value)) if isinstance(value, list) else f"{value:g}" if isinstance(value, float) else str(value)
            words += [flag] if value is True else [flag, text]
        return words

    def for_worker(self, number: int) -> dict:
        """What worker `number` of --jobs gets: these options, as the same run's worker, quiet, with the space
        named (a worker loads it again) and the storage without its password (that comes in the environment)."""
        options = replace(self, worker=number, progress=False, new_study=False, storage=self.location.bare)
        return {f.name: getattr(options, f.name) for f in fields(options)} | {"space": self.space_arg or self.space.name}

    @classmethod
    def from_worker(cls, text: str) -> RunOptions:
        from spaces import get_space

        options = json.loads(text)
        return cls(**{**options, "space": get_space(options["space"]), "space_arg": options["space"]})


def spread_over(device, asked: list[int] | None) -> list[int] | None:
    """The visible GPUs that a run's --jobs workers are spread over, round-robin (worker i on GPU i mod G):
    those asked for (--gpus), else every visible one where the device is plain `cuda`; None off a GPU."""
    import torch

    if asked is not None:
        named = ",".join(map(str, asked))
        if device.type != "cuda":
            why = "this machine has no CUDA device" if not torch.cuda.is_available() else f"--device is {device}"
            raise InputError(f"--gpus {named}: {why}: leave --gpus out to train on the CPU")
        count = torch.cuda.device_count()
        if not asked or not all(0 <= g < count for g in asked):
            raise InputError(f"--gpus {named}: this machine shows {count} GPU(s), numbered 0 to {count - 1}: name some of them")
        return asked
    if device.type == "cuda" and device.index is None:
        return list(range(torch.cuda.device_count()))
    return None


def start_workers(opts: RunOptions, gpus: list[int] | None = None) -> list[subprocess.Popen]:
    """--jobs K: K-1 more processes run the same study with the same options; this one is the K-th (number 0).
    With `gpus`, worker i sees only GPU gpus[i mod G] (CUDA_VISIBLE_DEVICES), its `cuda`."""
    from trainers.loop import machine_index

    if opts.jobs <= 1 or opts.worker:
        return []
    if opts.location.in_memory:
        raise InputError("--jobs needs a database file that all workers can open, not an in-memory SQLite")
    password = opts.location.password  # through the environment, not a command line others can read
    env = {**os.environ, **({PASSWORD_VARIABLE: password} if password else {})}
    workers = []
    for number in range(1, opts.jobs):
        options = opts.for_worker(number)
        pinned = {}
        if gpus:
            pinned = {"CUDA_VISIBLE_DEVICES": machine_index(gpus[number % len(gpus)])}
            options |= {"device": "cuda", "gpus": None}
        command = [sys.executable, "-m", "search.cli", "worker"]
        workers.append(subprocess.Popen(command, env={**env, **pinned, WORKER_OPTIONS: json.dumps(options)}))
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    """SIGTERM to the workers still working, as this process stops (a scheduler may signal only a job's first
    process: Kubernetes does): each records its trial as interrupted and queues its retry."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)


def wait_for(workers: list[subprocess.Popen]) -> int:
    """The number of workers that failed (an interrupted one did not)."""
    return sum(w.wait() not in (0, 130, 128 + signal.SIGTERM) for w in workers)
