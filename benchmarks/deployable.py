"""Searches for a deployable model, replayed on the recorded curves (benchmarks/search_quality.py's method)
with each model's measured costs (benchmarks/costs.py --out):

    python benchmarks/deployable.py checkbox --max-ms MS [--seeds 20] [--first-seed 0] [--trials 50]

(a) Limited: random search's mean best feasible valid after 50 trials is the target; the space's default
search reaches it in how many trials and training epochs: training the configurations over the limit first
and marking them infeasible afterwards (what a constraint alone does), drawing them and skipping them
(recorded infeasible at once, no epoch trained), or never drawing the models over the limit (`hpsearch run
--max-ms`: search.study.feasible); and how many epochs it spends on configurations over the limit.
(b) Several objectives (valid metric up, ms down): the hypervolume of the trials found after 10, 20 and 50
trials (reference point: valid 0, the slowest model's ms), multi-objective TPE against random search,
mean over the seeds, without pruning (as `hpsearch run --objectives` runs).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
from search_quality import CHECKPOINTS, Table  # noqa: E402

from search.study.strategy import make_pruner, make_sampler, prune_now  # noqa: E402
from spaces import get_space  # noqa: E402


def limited(table: Table, space, costs: dict, limit: float, sampler, pruner, skip: bool, trials: int) -> list[dict]:
    """One limited search: per trial, its epochs, whether it was over the limit, and the best feasible valid so far."""
    record = []

    def objective(trial: optuna.Trial) -> float:
        space.suggest(trial)
        i = table.nearest(trial.params)
        ms = costs[table.configs[i][0]["model"]]
        trial.set_constraint("ms", ms - limit)
        over = ms > limit
        record.append({"config": i, "epochs": 0, "complete": False, "over": over})
        if over and skip:
            raise optuna.TrialPruned()
        for epoch, value in enumerate(table.configs[i][1], 1):
            record[-1]["epochs"] = epoch
            trial.report(value, epoch)
            if prune_now(trial, epoch, len(table.configs[i][1])):
                raise optuna.TrialPruned()
        record[-1]["complete"] = True
        return table.best(i)[0]

    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=trials)
    best = -1.0
    for r in record:
        if r["complete"] and not r["over"]:
            best = max(best, table.best(r["config"])[0])
        r["best"] = best
    return record


def hypervolume(points: list[tuple[float, float]], slowest: float) -> float:
    """The area the (valid, ms) points dominate, up to valid 0 and `slowest` ms."""
    area, top = 0.0, 0.0
    for valid, ms in sorted(points, key=lambda p: (p[1], -p[0])):
        if valid > top:
            area += (slowest - ms) * (valid - top)
            top = valid
    return area


def several(table: Table, space, costs: dict, sampler, trials: int) -> list[float]:
    """One multi-objective search: the hypervolume after each trial."""
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        space.suggest(trial)
        i = table.nearest(trial.params)
        return table.best(i)[0], costs[table.configs[i][0]["model"]]

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=trials)
    slowest = max(costs.values())
    return [hypervolume([tuple(t.values) for t in study.trials[:n]], slowest) for n in range(1, trials + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--max-ms", type=float, required=True)
    parser.add_argument("--costs", help="default benchmarks/curves/SPACE_costs.csv")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds --first-seed, --first-seed + 1, ...")
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space(args.space)
    folder = Path(__file__).parent / "curves"
    table = Table(folder / f"{space.name}.csv", space)
    costs = {row["model"]: float(row["ms"]) for row in csv.DictReader(open(args.costs or folder / f"{space.name}_costs.csv"))}
    print(f"{space.name}: {len(table.configs)} recorded configurations; ms per image: "
          + ", ".join(f"{m} {v:.3g}" for m, v in costs.items()) + f"; limit {args.max_ms:g} ms; {args.seeds} seeds x {args.trials} trials")

    default = (space.sampler, space.pruner, space.pruner_options)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    over = {"model": {model for model, ms in costs.items() if ms > args.max_ms}}  # what search.study.feasible rules out
    runs = {name: [limited(table, space, costs, args.max_ms, make_sampler(sampler, seed, ruled_out),
                           make_pruner(pruner, table.epochs, options), skip, args.trials) for seed in seeds]
            for name, (sampler, pruner, options), skip, ruled_out in (
                ("random search, no pruning", ("random", "none", {}), False, None),
                ("default, infeasible trained", default, False, None),
                ("default, infeasible skipped", default, True, None),
                ("default, over-limit models not drawn", default, True, over))}
    target = statistics.mean(r[-1]["best"] for r in runs["random search, no pruning"])
    print(f"\n(a) random search's mean best feasible valid after {args.trials} trials (the target): {target:.4f}")
    print(f"{'':36s} {'trials to target':>16s} {'seeds':>6s} {'epochs to target':>17s} {'epochs over the limit':>22s}")
    for name, results in runs.items():
        hits = [next((k for k, t in enumerate(r) if t["best"] >= target - 1e-12), None) for r in results]
        reached = [(h + 1, sum(t["epochs"] for t in r[: h + 1])) for h, r in zip(hits, results) if h is not None]
        trials = statistics.mean(h + 1 if h is not None else args.trials + 1 for h in hits)
        wasted = statistics.mean(sum(t["epochs"] for t in r if t["over"]) for r in results)
        epochs = f"{statistics.mean(e for _, e in reached):17.0f}" if reached else f"{'-':>17s}"
        print(f"{name:36s} {trials:16.1f} {len(reached):3d}/{len(results):<2d} {epochs} {wasted:22.1f}")

    print(f"\n(b) hypervolume of (valid, ms), mean of {args.seeds} seeds, no pruning")
    print(f"{'':30s} " + " ".join(f"{f'after {n}':>10s}" for n in CHECKPOINTS))
    for name, sampler in (("random search", "random"), ("multi-objective tpe", "tpe")):
        volumes = [several(table, space, costs, make_sampler(sampler, seed), args.trials) for seed in seeds]
        print(f"{name:30s} " + " ".join(f"{statistics.mean(v[min(n, args.trials) - 1] for v in volumes):10.4f}"
                                           for n in CHECKPOINTS))


if __name__ == "__main__":
    main()
