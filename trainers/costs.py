"""What a model costs to use, measured the same way every time: its parameters, its weights on disk, its FLOPs
per image, its latency per image at batch 1 and its throughput at a serving batch, in eval mode on the device
it will serve from. Latency and throughput do not depend on the weights, so a trial measures its untrained
model before it trains (and skips training where a limit cannot be met)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from trainers.digests import cache_root
from trainers.loop import autocast

SERVING_BATCH = 32  # the batch the throughput is measured at
WARMUP = 3  # calls before timing: the first ones allocate and pick kernels
# Latency: the fastest of RUNS timed runs, each of enough calls to last MIN_RUN_S, so 6 s in all. The 2-core
# machine's speed changes for seconds at a time (one model timed in runs of 2 s: fastest 2.71 to 3.30 ms);
# over 0.5 s (10 runs of 0.05 s) one model measured twice differed by up to 27%, over 6 s by at most 9%
# (benchmarks/costs.py, figures in the README's "Measured"). Throughput, which limits and objectives use
# less, keeps the shorter measurement.
RUNS, MIN_RUN_S = 60, 0.1
THROUGHPUT_RUNS, THROUGHPUT_RUN_S = 10, 0.05
WARMUP_S = 0.25  # calls for this long first: the first model a process measures ran up to 1.7x slow after 3 calls
# On the CPU, one thread, timed by its own CPU time (time.thread_time): the figure a core spends on an image,
# whatever else the machine runs. Timed by the wall clock with torch's threads, one model measured twice in
# one run differed by up to 38%.
CPU_THREADS = 1


@dataclass(frozen=True)
class Costs:
    params: int
    mb: float  # the weights as stored (safetensors: every tensor of the state dict, at its dtype)
    flops: int  # per image, as torch.utils.flop_counter counts them (a multiply-add is 2)
    ms: float  # milliseconds per image at batch 1
    throughput: float  # images per second at SERVING_BATCH
    device: str
    threads: int  # torch's CPU threads while timing (on a GPU: the host's, for the record)

    def as_record(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CostLimits:
    """What a deployable model may cost at most (None: no limit), as Optuna constraints: a cost minus its
    limit, feasible at 0 or below."""

    ms: float | None = None
    params: int | None = None
    mb: float | None = None

    def constraints(self, costs: Costs) -> dict[str, float]:
        return {name: getattr(costs, name) - limit for name, limit in asdict(self).items() if limit is not None}

    def over(self, costs: Costs) -> str:
        """The limits `costs` break, in words ("" where none)."""
        return ", ".join(f"{name} {getattr(costs, name):{form}} > {getattr(self, name):{form}}"
                         for name, excess in self.constraints(costs).items() if excess > 0
                         for form in [",d" if name == "params" else "g"])

    def __bool__(self) -> bool:
        return any(limit is not None for limit in asdict(self).values())


def weights_mb(model: torch.nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6


def flops_per_image(model: torch.nn.Module, image: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        model(image)
    return int(counter.get_total_flops())


def _seconds_per_call(call, device: torch.device, runs: int, run_s: float) -> float:
    """The fastest of `runs` runs of one call's seconds, each run timing as many calls as last `run_s`: on the
    CPU in this thread's CPU time, on a GPU by the wall clock after synchronizing."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(WARMUP):
        call()
    sync()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < WARMUP_S:  # warming up, and counting the calls that last run_s
        call()
        calls += 1
        sync()
    calls = max(1, round(calls * run_s / WARMUP_S))
    clock = time.perf_counter if device.type == "cuda" else time.thread_time
    seconds = []
    for _ in range(runs):
        start = clock()
        for _ in range(calls):
            call()
        sync()
        seconds.append((clock() - start) / calls)
    return min(seconds)


def measure_once(model: torch.nn.Module, size: tuple[int, int], device: torch.device) -> Costs:
    """`model`'s costs as this machine measured them the first time (kept in the cache folder): every later
    study on it takes the same figures, without measuring for seconds again. Delete the cache's `costs/` to
    measure again (after a change of hardware that keeps the machine's name and processor)."""
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else _processor()
    key = f"{model}|{size}|{device.type}|{machine}|{socket.gethostname()}|torch {torch.__version__}|{RUNS}x{MIN_RUN_S}"
    path = cache_root() / "costs" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    try:
        return Costs(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):  # not measured here yet (or a file from another version)
        pass
    costs = measure(model, size, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(f".{os.getpid()}.part")
    part.write_text(json.dumps(costs.as_record()))
    os.replace(part, path)  # whole or not at all, where workers measure at once
    return costs


def _processor() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


@torch.no_grad()
def measure(model: torch.nn.Module, size: tuple[int, int], device: torch.device) -> Costs:
    """`model` (moved to `device` and put in eval mode) on RGB images of `size` (height, width): bf16 autocast
    and channels-last on CUDA, as hpsearch predicts and serves."""
    model = model.to(device).eval()
    one = torch.rand(1, 3, *size, device=device)
    batch = torch.rand(SERVING_BATCH, 3, *size, device=device)
    if device.type == "cuda":
        model, one, batch = (t.to(memory_format=torch.channels_last) for t in (model, one, batch))
    flops = flops_per_image(model, one)
    threads = torch.get_num_threads()
    timed = CPU_THREADS if device.type == "cpu" else threads
    torch.set_num_threads(timed)
    try:
        with autocast(device):
            ms = 1000 * _seconds_per_call(lambda: model(one), device, RUNS, MIN_RUN_S)
            throughput = SERVING_BATCH / _seconds_per_call(lambda: model(batch), device, THROUGHPUT_RUNS, THROUGHPUT_RUN_S)
    finally:
        torch.set_num_threads(threads)
    return Costs(sum(p.numel() for p in model.parameters()), weights_mb(model), flops, ms, throughput, str(device), timed)
