"""What a trial's files cost: checkbox trials with the artifact store against the same trials without it.

Every trial runs in a fresh study, so each one is the best so far and pays the most: its weights,
model card, learning curves, valid and test confusion matrices and the examples grid. Runs alternate
(without, with, without, ...) so that a slower machine moment hits both alike.

    python benchmarks/artifacts.py [--repeats 3] [--epochs N] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import optuna

from search.objective import Objective
from search.storage import artifact_store
from search.study import pick_device
from spaces import get_space
from trainers.prepare import prepare, to_device
from trainers.tasks import get_task

PARAMS = {"model": "baseline", "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5}


def trial_seconds(objective: Objective, folder: Path, run: int) -> float:
    study = optuna.create_study(storage=f"sqlite:///{folder / f'run{run}.db'}", direction="maximize", pruner=optuna.pruners.NopPruner())
    study.enqueue_trial(PARAMS)
    study.optimize(objective, n_trials=1)
    return study.trials[0].user_attrs["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: the space's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, device, task = get_space("checkbox"), pick_device(args.device), get_task("classify")
    data = to_device(prepare(space.data, space.image_size, space.resize, space.split, progress=False), task, device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        without = Objective(space, data, task, None, epochs=args.epochs, progress=False)
        with_files = Objective(space, data, task, artifact_store(f"sqlite:///{folder / 'x.db'}"), epochs=args.epochs, progress=False)
        trial_seconds(without, folder, -1)  # warm-up
        a, b = [], []
        for run in range(args.repeats):
            a.append(trial_seconds(without, folder, 2 * run))
            b.append(trial_seconds(with_files, folder, 2 * run + 1))
    name = f"{device}" if device.type == "cpu" else f"{device} ({__import__('torch').cuda.get_device_name(device)})"
    print(f"checkbox trial, {args.epochs or space.epochs} epochs, {PARAMS}, on {name}, {args.repeats} runs each")
    print(f"(a) without artifacts: {statistics.median(a):6.2f} s per trial (median of {a})")
    print(f"(b) with artifacts:    {statistics.median(b):6.2f} s per trial (median of {b})")
    print(f"artifacts add {100 * (statistics.median(b) / statistics.median(a) - 1):+.1f}% to a trial (target: at most +5%)")


if __name__ == "__main__":
    main()
