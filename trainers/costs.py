"""What a model costs to use, declared once and measured the same way every time.

KINDS is the table of costs: each one's name, how it prints, whether less or more is better, what an ensemble's
members cost together, whether a run can limit it (`hpsearch run --max-NAME`), and how it is measured. The
front, the notes, `--pick`, `--objectives`, the limits and the CSV follow from it: a new cost is a row here
with its measurement.

Each is measured on the untrained model, in eval mode on the device it will serve from: latency and
throughput do not depend on the weights, so a trial measures its model before it trains (and skips
training where a limit cannot be met). torch is imported where a model is measured, not here: the command
line reads this table for its flags without waiting for torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, make_dataclass

from trainers.digests import cache_root

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
class Probe:
    """What a cost is measured on: the model in eval mode on its device, one image and a serving batch."""

    model: object  # torch.nn.Module
    one: object  # (1, 3, H, W)
    batch: object  # (SERVING_BATCH, 3, H, W)
    device: object  # torch.device


def _in_series(values: list[float]) -> float:
    """Members that run one after another on each image: their latencies, sizes and FLOPs add up."""
    return sum(values)


def _rate_in_series(values: list[float]) -> float:
    """Rates of members that run one after another: 1 / sum(1 / each)."""
    return 1 / sum(1 / v for v in values)


@dataclass(frozen=True)
class Cost:
    name: str  # its key in a trial's costs, in --objectives, --pick and the CSV (cost_NAME): permanent in stored studies
    heading: str  # its column in `hpsearch front`
    words: str  # after its figure in a sentence
    form: str  # the format of its figure
    direction: str  # "minimize" or "maximize": which way is better, for --objectives and the front
    measure: Callable[[Probe], float]
    ensemble: Callable[[list[float]], float] = _in_series  # what an ensemble's members cost together
    limit: str | None = None  # the metavar of its --max-NAME flag (a configuration over it is not trained); None: no limit
    whole: bool = False  # a count (parameters, FLOPs), not a measure: its limit too is a whole number

    def show(self, value: float) -> str:
        """`3.1 ms per image`."""
        return f"{value:{self.form}} {self.words}"

    def number(self, value: float) -> str:
        """Its figure alone, in full where a limit is compared with it: `11,176,512`, `12.3456`."""
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _ms(probe: Probe) -> float:
    return 1000 * _seconds_per_call(lambda: probe.model(probe.one), probe.device, RUNS, MIN_RUN_S)


def _throughput(probe: Probe) -> float:
    return SERVING_BATCH / _seconds_per_call(lambda: probe.model(probe.batch), probe.device, THROUGHPUT_RUNS, THROUGHPUT_RUN_S)


def _params(probe: Probe) -> int:
    return sum(p.numel() for p in probe.model.parameters())


def _mb(probe: Probe) -> float:
    return weights_mb(probe.model)


def _flops(probe: Probe) -> int:
    return flops_per_image(probe.model, probe.one)


LATENCY, SIZE = "ms", "mb"  # the costs every front weighs against the metric; `--pick fastest` and `smallest` go by them
THROUGHPUT = "throughput"
KINDS = (
    Cost(LATENCY, "ms", "ms per image at batch 1", ".3g", "minimize", _ms, limit="MS"),
    Cost(THROUGHPUT, "images/s", f"images/s at batch {SERVING_BATCH}", ",.0f", "maximize", _throughput, _rate_in_series),
    Cost("params", "parameters", "parameters", ",", "minimize", _params, limit="N", whole=True),
    # the weights as stored (safetensors: every tensor of the state dict, at its dtype)
    Cost(SIZE, "MB", "MB", ".3g", "minimize", _mb, limit="MB"),
    # per image, as torch.utils.flop_counter counts them (a multiply-add is 2)
    Cost("flops", "FLOPs", "FLOPs per image", ",", "minimize", _flops, whole=True),
)
BY_NAME = {kind.name: kind for kind in KINDS}


def _as_record(costs) -> dict:
    """As a trial stores it: each figure (floats to 4 decimals), the device and the CPU threads."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(costs).items()}


# A model's figures, a field per cost of KINDS, and where they were measured: the device, and torch's CPU threads
# while timing (on a GPU: the host's, for the record). A field each, made from the table, so that a new cost is
# a field without a line here; a figure a study recorded before its cost existed is None.
Costs = make_dataclass("Costs", [(kind.name, "float | None", field(default=None)) for kind in KINDS]
                       + [("device", "str | None", field(default=None)), ("threads", "int | None", field(default=None))],
                       frozen=True, namespace={"as_record": _as_record, "__module__": __name__})


LIMITED = tuple(kind for kind in KINDS if kind.limit)  # the costs a run can limit (`hpsearch run --max-NAME`)


class CostLimits:
    """What a deployable model may cost at most, by cost name (None: no limit), as Optuna constraints: a cost
    minus its limit, feasible at 0 or below."""

    def __init__(self, **most: float | None):
        unknown = sorted(set(most) - {kind.name for kind in LIMITED})
        if unknown:
            raise TypeError(f"no limit on {unknown}: the costs with limits are {[kind.name for kind in LIMITED]}")
        self.most = {kind.name: most[kind.name] for kind in LIMITED if most.get(kind.name) is not None}

    def constraints(self, costs: Costs) -> dict[str, float]:
        return {name: getattr(costs, name) - limit for name, limit in self.most.items()}

    def over(self, costs: Costs) -> str:
        """The limits `costs` break, in words ("" where none): `params 11,176,512 > 1,000,000`."""
        return ", ".join(f"{name} {BY_NAME[name].number(getattr(costs, name))} > {BY_NAME[name].number(self.most[name])}"
                         for name, excess in self.constraints(costs).items() if excess > 0)

    def said(self) -> str:
        """`ms <= 5, params <= 1e+06`: the limits, as `hpsearch front` and `status` say them."""
        return ", ".join(f"{name} <= {limit:g}" for name, limit in self.most.items())

    def __bool__(self) -> bool:
        return bool(self.most)


def weights_mb(model) -> float:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6


def flops_per_image(model, image) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(image)
    return int(counter.get_total_flops())


def _seconds_per_call(call, device, runs: int, run_s: float) -> float:
    """The fastest of `runs` runs of one call's seconds, each run timing as many calls as last `run_s`: on the
    CPU in this thread's CPU time, on a GPU by the wall clock after synchronizing."""
    import torch

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


def measure_once(model, size: tuple[int, int], device) -> Costs:
    """`model`'s costs as this machine measured them the first time (trainers.costs.kept_per_machine)."""
    key = f"{model}|{size}|{RUNS}x{MIN_RUN_S}"
    kept = kept_per_machine("costs", key, device, lambda: measure(model, size, device).as_record(),
                            fields=set(BY_NAME) | {"device", "threads"})  # other fields: measured before a cost was added
    return Costs(**kept)


def kept_per_machine(kind: str, key: str, device, measure_now: Callable[[], dict], fields: set | None = None) -> dict:
    """What `measure_now` measured the first time this machine (its processor or GPU, its name, its torch) did,
    for `key` on `device`, kept in the cache folder: every later study on it takes the same figures without
    measuring again. Delete the cache's `KIND/` folder to measure again (after a change of hardware that keeps
    the machine's name and processor)."""
    import torch

    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else _processor()
    key = f"{key}|{device.type}|{machine}|{socket.gethostname()}|torch {torch.__version__}"
    path = cache_root() / kind / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    try:
        kept = json.loads(path.read_text())
        if fields is None or set(kept) == fields:
            return kept
    except (OSError, ValueError, TypeError):  # not measured here yet
        pass
    figures = measure_now()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(f".{os.getpid()}.part")
    part.write_text(json.dumps(figures))
    os.replace(part, path)  # whole or not at all, where workers measure at once
    return figures


def _processor() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def measure(model, size: tuple[int, int], device) -> Costs:
    """`model` (moved to `device` and put in eval mode) on RGB images of `size` (height, width): every cost of
    KINDS, with bf16 autocast and channels-last on CUDA, as hpsearch predicts and serves."""
    import torch

    from trainers.loop import autocast

    model = model.to(device).eval()
    one = torch.rand(1, 3, *size, device=device)
    batch = torch.rand(SERVING_BATCH, 3, *size, device=device)
    if device.type == "cuda":
        model, one, batch = (t.to(memory_format=torch.channels_last) for t in (model, one, batch))
    probe = Probe(model, one, batch, device)
    threads = torch.get_num_threads()
    timed = CPU_THREADS if device.type == "cpu" else threads
    torch.set_num_threads(timed)
    try:
        with torch.no_grad(), autocast(device):
            figures = {kind.name: kind.measure(probe) for kind in KINDS}
    finally:
        torch.set_num_threads(threads)
    return Costs(**figures, device=str(device), threads=timed)
