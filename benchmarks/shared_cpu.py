"""One trial on a CPU alone and on one that other work shares: a checkbox trial (batch 32; the baseline CNN,
which `make run` trains most, or --model) timed alone and beside a 2-thread CPU load that is not hpsearch's
(numpy matrix products in two threads of another process), for each way of running torch's threads: OpenMP's
active and passive waiting, its spin counts (GOMP_SPINCOUNT), one thread. Each trial runs in a fresh process,
so that the environment is read when torch starts. Prints each time, the ratio alone / the fastest alone,
and the ratio beside / alone (the fair share of 2 cores with 2 busy threads is 2). hpsearch's own setting
(search.cli) is the one within 5% of the fastest alone and within 2.5x of its own time beside the load.

    python benchmarks/shared_cpu.py [--epochs 10] [--repeats 1] [--model baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name: (environment, torch threads: None as torch chooses); "hpsearch" is what `hpsearch run` does
VARIANTS = {
    "OMP_WAIT_POLICY=ACTIVE": ({"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": ""}, None),
    "OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": ""}, None),
    "GOMP_SPINCOUNT=100000": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "100000"}, None),
    "GOMP_SPINCOUNT=30000": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "30000"}, None),
    "GOMP_SPINCOUNT=10000": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"}, None),
    "one thread": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": ""}, 1),
    "hpsearch (GOMP_SPINCOUNT=100000, the free cores' threads)": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "100000"}, 0),
}
LOAD = """
import threading, numpy as np
a = np.random.rand(600, 600)
def busy():
    while True:
        a @ a
for _ in range(2):
    threading.Thread(target=busy, daemon=True).start()
threading.Event().wait()
"""


def trial(epochs: int, threads: int | None, model: str = "baseline") -> float:
    """Seconds of one trial's training in this process."""
    import torch

    from search.study.training import Training, make_config
    from spaces import get_space
    from trainers.loop import Hooks, train
    from trainers.prepare import Splitting, prepare, to_device

    if threads == 0:  # as hpsearch's trials choose (trainers.cores), alone on this machine
        from trainers.cores import trial_threads

        threads = trial_threads(1)
    if threads:
        torch.set_num_threads(threads)
    space = get_space("checkbox")
    config, task = make_config(space, {"model": model, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5},
                               Training(epochs=epochs))
    data = to_device(prepare(space.data, space.image_size, space.resize, splitting=Splitting(space.split), progress=False), task, torch.device("cpu"))
    start = time.perf_counter()
    train(config, data, task, space.metric, Hooks(progress=False))
    return time.perf_counter() - start


def timed(environment: dict, threads: int | None, epochs: int, model: str) -> float:
    env = {k: v for k, v in {**os.environ, **environment}.items() if v}
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.shared_cpu import trial; "
            f"print(trial({epochs}, {threads}, {model!r}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--only", help="the settings whose names contain this text (and ACTIVE, the fastest alone)")
    args = parser.parse_args()
    timed({}, None, 1, args.model)  # the images decoded once, before anything is timed
    rows = []
    for name, (environment, threads) in VARIANTS.items():
        if args.only and args.only not in name and "ACTIVE" not in name:
            continue
        alone = statistics.median(timed(environment, threads, args.epochs, args.model) for _ in range(args.repeats))
        load = subprocess.Popen([sys.executable, "-c", LOAD], env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
        try:
            time.sleep(2)
            beside = statistics.median(timed(environment, threads, args.epochs, args.model) for _ in range(args.repeats))
        finally:
            load.kill()
            load.wait()
        rows.append((name, alone, beside))
    fastest = min(alone for _, alone, _ in rows)
    print(f"{args.model}, checkbox, batch 32, {args.epochs} epochs, on {os.cpu_count()} cores; beside: another process "
          f"with 2 busy threads; median of {args.repeats}")
    print("| torch's threads | alone | alone / fastest alone | beside the load | beside / alone |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, alone, beside in rows:
        print(f"| {name} | {alone:.1f} s | {alone / fastest:.2f} | {beside:.1f} s | {beside / alone:.2f} |")
    print(json.dumps({name: [round(alone / fastest, 2), round(beside / alone, 2)] for name, alone, beside in rows}))


if __name__ == "__main__":
    main()
