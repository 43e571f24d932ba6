"""What a trial's files cost: checkbox trials with the artifact store against the same trials without it.

(a) no artifact store: the baseline. (b) a typical trial, which is not the study's best when it ends:
its epoch checkpoints, learning curves and valid confusion matrix. (c) a trial that is the best so
far, which also stores its weights, model card, test confusion matrix and examples grid. Each trial
runs in a fresh study; runs alternate (a, b, c, a, ...) so that a slower machine moment hits all alike.
The figures are the process's CPU seconds (all threads), which a busy neighbour on a shared machine
disturbs less than wall-clock seconds.

    python benchmarks/artifacts.py [--repeats 5] [--epochs N] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from search.storage import Location
from search.study.config import RunConfig
from search.study.known import Prior
from search.study.meter import CostMeter
from search.study.objective import Objective
from search.study.setup import Run
from search.study.training import Training
from spaces import get_space
from trainers.loop import pick_device
from trainers.prepare import Splitting, prepare, to_device
from trainers.tasks import get_task

PARAMS = {"model": "baseline", "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5}


def trial_of(space, data, store, epochs: int | None) -> Objective:
    """A trial of a run on `data`, with its files in `store` (None: none kept)."""
    config = RunConfig(space=space.name, epochs=epochs, quiet=True, trials=10**6)
    run = Run(config=config, space=space, gpus=None, storage=None, heartbeat=None, store=store, start=None,
              training=Training(epochs=epochs), choices={}, objectives=None, prior=Prior(), prepared=None, data=data,
              meter=CostMeter(data, data.device))
    return Objective(run)


def trial_seconds(objective: Objective, folder: Path, run: str, best: bool = True) -> float:
    study = optuna.create_study(storage=f"sqlite:///{folder / f'{run}.db'}", direction="maximize", pruner=optuna.pruners.NopPruner())
    if not best:  # a finished trial no one beats
        distributions = objective.run.space.distributions()
        study.add_trial(optuna.trial.create_trial(params=PARAMS, distributions=distributions, value=1.0))
    study.enqueue_trial(PARAMS)
    start = time.process_time()
    study.optimize(objective, n_trials=1)
    return round(time.process_time() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: the space's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, device, task = get_space("checkbox"), pick_device(args.device), get_task("classify")
    data = to_device(prepare(space.data, space.image_size, space.resize, splitting=Splitting(space.split), progress=False), task, device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        without = trial_of(space, data, None, args.epochs)
        with_files = trial_of(space, data, Location(f"sqlite:///{folder / 'x.db'}").artifact_store(), args.epochs)
        trial_seconds(without, folder, "warm-a")  # imports and first-use costs are once per run, not per trial
        trial_seconds(with_files, folder, "warm-c")
        a, b, c = [], [], []
        for run in range(args.repeats):
            a.append(trial_seconds(without, folder, f"a{run}"))
            b.append(trial_seconds(with_files, folder, f"b{run}", best=False))
            c.append(trial_seconds(with_files, folder, f"c{run}"))
    name = f"{device}" if device.type == "cpu" else f"{device} ({__import__('torch').cuda.get_device_name(device)})"
    print(f"checkbox trial, {args.epochs or space.epochs} epochs, {PARAMS}, on {name}, {args.repeats} runs each")
    base = statistics.median(a)
    print(f"(a) without artifacts:       {base:6.2f} CPU s per trial (median of {a})")
    for label, times in (("(b) a typical trial's files:", b), ("(c) the best-so-far's files:", c)):
        print(f"{label} {statistics.median(times):6.2f} CPU s per trial (median of {times}): "
              f"{100 * (statistics.median(times) / base - 1):+.1f}% (target: at most +5%)")

if __name__ == "__main__":
    main()
