"""A run's `--jobs` workers: the processes that search the same study beside it, each with the whole of its
configuration (search.study.config) in its environment, spread over the machine's GPUs; stopped with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from search.storage import PASSWORD_VARIABLE
from search.study.config import WORKER_OPTIONS, RunConfig
from trainers.errors import InputError


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


def start_workers(config: RunConfig, gpus: list[int] | None = None) -> list[subprocess.Popen]:
    """--jobs K: K-1 more processes run the same study with the same options; this one is the K-th (number 0).
    With `gpus`, worker i sees only GPU gpus[i mod G] (CUDA_VISIBLE_DEVICES), its `cuda`."""
    from trainers.loop import machine_index

    if config.jobs <= 1 or config.worker:
        return []
    if config.location.in_memory:
        raise InputError("--jobs needs a database file that all workers can open, not an in-memory SQLite")
    password = config.location.password  # through the environment, not a command line others can read
    env = {**os.environ, **({PASSWORD_VARIABLE: password} if password else {})}
    workers = []
    for number in range(1, config.jobs):
        options = config.for_worker(number)
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
