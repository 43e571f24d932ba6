"""Recorded learning curves: N configurations drawn at random from a space, each trained to its full epochs
with hpsearch's own loop, data and split; every epoch's valid and test metric written to a CSV, so that
searches can be replayed on them at no training cost (benchmarks/search_quality.py; the method of LCBench
and YAHPO Gym).

    python benchmarks/curves.py checkbox --configs 60 [--workers 2] [--device cpu] [--out benchmarks/curves/checkbox.csv]

One row per (configuration, epoch): the configuration's number, its parameters (param_<name>), the epoch,
the valid and test values of the space's metric, and the seconds trained so far. A configuration's number
is its place in the sampler's stream (RandomSampler, seed 0), so running again with more --configs, or
after a stop, adds the missing configurations and keeps the rest.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402

from search.study.training import make_config  # noqa: E402
from spaces import get_space  # noqa: E402

_DATA = {}  # per worker process: the space's data, on the device


def draw(space, n: int) -> list[dict]:
    """The first n parameter sets of a seeded random search of the space."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        space.suggest(trial)
        drawn.append(trial.params)
        study.tell(trial, 0.0)
    return drawn


def _data(space_name: str, device: str):
    if space_name not in _DATA:
        import torch

        from trainers.prepare import Splitting, prepare, to_device
        from trainers.tasks import get_task

        space = get_space(space_name)
        torch.set_num_threads(int(os.environ.get("CURVES_THREADS", "1")))
        prepared = prepare(space.data, space.image_size, space.resize, crop=space.crop, splitting=Splitting(space.split), progress=False)
        _DATA[space_name] = to_device(prepared, get_task(space.task), torch.device(device))
    return _DATA[space_name]


def record(job: tuple) -> list[dict]:
    """Train one configuration to its last epoch; its rows."""
    from trainers.loop import Hooks, build_model, evaluate, train

    space_name, device, number, params = job
    space, data = get_space(space_name), _data(space_name, device)
    config, task = make_config(space, space.suggest(optuna.trial.FixedTrial(params, number=number)), seed=number)
    model, rows, start = build_model(config, data, task), [], time.perf_counter()

    def keep(state: dict) -> None:  # after each epoch: that epoch's model on the test split
        model.load_state_dict(state["model"])
        valid = state["history"][-1][f"valid_{space.metric}"]
        test = evaluate(model, config, data, task, "test")[space.metric]
        rows.append({"config": number, **{f"param_{k}": v for k, v in params.items()}, "epoch": state["epoch"],
                     "valid": round(valid, 6), "test": round(test, 6), "seconds": round(time.perf_counter() - start, 2)})

    train(config, data, task, space.metric, Hooks(checkpoint=keep, progress=False))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--configs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)), help="processes, one torch thread each")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="default benchmarks/curves/SPACE.csv")
    args = parser.parse_args()
    space = get_space(args.space)
    out = Path(args.out or Path(__file__).parent / "curves" / f"{space.name}.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {int(row["config"]) for row in csv.DictReader(open(out))} if out.exists() else set()
    drawn = draw(space, args.configs)
    jobs = [(args.space, args.device, i, p) for i, p in enumerate(drawn) if i not in done]
    _data(args.space, args.device)  # decoded once here; the workers find it in the cache
    print(f"{space.name}: {len(jobs)} configurations to train ({len(done)} recorded), {space.epochs} epochs each, "
          f"on {args.device} with {args.workers} worker(s)", flush=True)
    header = ["config", *(f"param_{k}" for k in dict.fromkeys(k for p in drawn for k in p)), "epoch", "valid", "test", "seconds"]
    context = multiprocessing.get_context("spawn" if args.device.startswith("cuda") else "fork")
    with context.Pool(args.workers) as pool, open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, header)
        if not done:
            writer.writeheader()
        for rows in pool.imap_unordered(record, jobs):
            writer.writerows(rows)
            f.flush()
            last = rows[-1]
            print(f"config {last['config']:4d}: valid {max(r['valid'] for r in rows):.4f} (best epoch), "
                  f"{last['seconds']:.0f} s  {drawn[last['config']]}", flush=True)


if __name__ == "__main__":
    main()
