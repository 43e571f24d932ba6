"""One trial on a CPU that other work shares: a MobileNetV2 checkbox trial (batch 32, as `make run` draws
them) timed alone and beside a 2-thread CPU load that is not hpsearch's (numpy matrix products in two
threads of another process), for each way of running torch's threads: its default, OpenMP's passive
waiting (OMP_WAIT_POLICY=PASSIVE, as `hpsearch` sets it), one thread. Each trial runs in a fresh process,
so that the environment is read when torch starts. Prints each time and the ratio beside / alone (the fair
share of 2 cores with 2 busy threads is 2).

    python benchmarks/shared_cpu.py [--epochs 3] [--repeats 1]
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
    "torch's default": ({"OMP_WAIT_POLICY": ""}, None),
    "hpsearch (OMP_WAIT_POLICY=PASSIVE)": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "a shorter spin (GOMP_SPINCOUNT=1000)": ({"OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "1000"}, None),
    "one thread": ({"OMP_WAIT_POLICY": ""}, 1),
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


def trial(epochs: int, threads: int | None) -> float:
    """Seconds of one trial's training in this process."""
    import torch

    from search.study.training import Training, make_config
    from spaces import get_space
    from trainers.loop import Hooks, train
    from trainers.prepare import Splitting, prepare, to_device

    if threads:
        torch.set_num_threads(threads)
    space = get_space("checkbox")
    config, task = make_config(space, {"model": "mobilenetv2_100", "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5},
                               Training(epochs=epochs))
    data = to_device(prepare(space.data, space.image_size, space.resize, splitting=Splitting(space.split), progress=False), task, torch.device("cpu"))
    start = time.perf_counter()
    train(config, data, task, space.metric, Hooks(progress=False))
    return time.perf_counter() - start


def timed(environment: dict, threads: int | None, epochs: int) -> float:
    env = {k: v for k, v in {**os.environ, **environment}.items() if v}
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.shared_cpu import trial; print(trial({epochs}, {threads}))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    timed({}, None, 1)  # the images decoded once, before anything is timed
    rows = []
    for name, (environment, threads) in VARIANTS.items():
        alone = statistics.median(timed(environment, threads, args.epochs) for _ in range(args.repeats))
        load = subprocess.Popen([sys.executable, "-c", LOAD], env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
        try:
            time.sleep(2)
            beside = statistics.median(timed(environment, threads, args.epochs) for _ in range(args.repeats))
        finally:
            load.kill()
            load.wait()
        rows.append((name, alone, beside))
    print(f"MobileNetV2, checkbox, batch 32, {args.epochs} epochs, on {os.cpu_count()} cores; beside: another process "
          f"with 2 busy threads; median of {args.repeats}")
    print("| torch's threads | alone | beside the load | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, alone, beside in rows:
        print(f"| {name} | {alone:.1f} s | {beside:.1f} s | {beside / alone:.2f} |")
    print(json.dumps({name: round(beside / alone, 2) for name, alone, beside in rows}))


if __name__ == "__main__":
    main()
