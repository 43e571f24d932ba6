"""How steady a trial's cost figures are: each model a space chooses from, measured as a machine measures it
the first time (trainers/costs.py: measure; later studies on that machine take that figure), twice in one run,
each time freshly built, and the ratio of the two latencies and of the two throughputs (1.00: the same figure).

    python benchmarks/costs.py [SPACE] [--device cpu|cuda] [--out benchmarks/curves/SPACE_costs.csv]

With --out, the first measurement of each model is written as a CSV (model and its costs), which
benchmarks/deployable.py replays limited and multi-objective searches with.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from search.study.training import make_config  # noqa: E402
from spaces import get_space  # noqa: E402
from trainers import costs  # noqa: E402
from trainers.costs import measure  # noqa: E402

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space", nargs="?", default="checkbox")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--classes", type=int, default=2, help="the classes the model answers (checkbox 2, digits 10)")
    parser.add_argument("--out", help="write each model's first measurement to this CSV")
    parser.add_argument("--runs", type=int, default=costs.RUNS, help=f"the latency's timed runs (a trial's: {costs.RUNS})")
    parser.add_argument("--run-seconds", type=float, default=costs.MIN_RUN_S,
                        help=f"each run's length (a trial's: {costs.MIN_RUN_S}); --runs 10 --run-seconds 0.05 is the "
                             f"throughput's shorter measurement")
    args = parser.parse_args()
    costs.RUNS, costs.MIN_RUN_S = args.runs, args.run_seconds
    device, space = torch.device(args.device), get_space(args.space)
    size = (space.image_size, space.image_size)
    models = space.model_choices()
    print(f"{space.name} models at {space.image_size} px on {device}, {torch.get_num_threads()} CPU threads, "
          f"latency the fastest of {costs.RUNS} runs of {costs.MIN_RUN_S:g} s")
    print(f"{'model':16s} {'ms, 1st':>8s} {'2nd':>8s} {'ratio':>6s} {'images/s, 1st':>14s} {'2nd':>8s} {'ratio':>6s}")
    rows = []
    for name in models:
        _, task = make_config(space, {"model": name, "batch_size": 32, "lr": 1e-3})  # costs depend on the model alone
        first, second = (measure(task.create_model(name, args.classes), size, device) for _ in range(2))
        print(f"{name:16s} {first.ms:8.3f} {second.ms:8.3f} {second.ms / first.ms:6.2f} {first.throughput:14.0f} "
              f"{second.throughput:8.0f} {second.throughput / first.throughput:6.2f}", flush=True)
        rows.append({"model": name} | asdict(first))
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
