"""Searches replayed on recorded learning curves (benchmarks/curves.py), in seconds instead of hours: a trial's
suggestions are answered by the nearest recorded configuration (the same choices, the nearest numbers in each
parameter's own scale: log for log ones), and its reports are that configuration's recorded curve, so that the
real sampler and the real pruner decide what to try and when to stop (LCBench's and YAHPO Gym's method).

    python benchmarks/search_quality.py checkbox [--seeds 20] [--trials 50] [--table benchmarks/curves/checkbox.csv]

For each combination of sampler and pruner, over the seeds: the mean best valid metric (and the test metric
of that best trial) after 10, 20 and 50 trials; the trials and epochs needed to reach random search's mean
50-trial best, and in how many seeds it was reached; the epochs run against random search's; and how often
the run pruned the best configuration it had tried (which, trained to the end, beat all it found).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402
from optuna.distributions import CategoricalDistribution  # noqa: E402

from search.study.strategy import START, SeededByTrial, make_pruner, make_sampler, prune_now  # noqa: E402
from spaces import get_space  # noqa: E402

CHECKPOINTS = (10, 20, 50)


class Table:
    """The recorded configurations of a space: parameters, valid curve, test curve."""

    def __init__(self, path: Path, space):
        runs = defaultdict(list)
        for row in csv.DictReader(open(path)):
            runs[int(row["config"])].append(row)
        self.distributions = space.distributions()
        self.configs, self.seconds = [], []  # seconds: each configuration's recorded seconds after each epoch
        for rows in runs.values():
            rows.sort(key=lambda r: int(r["epoch"]))
            params = {k[len("param_"):]: self._value(k[len("param_"):], v) for k, v in rows[0].items() if k.startswith("param_") and v != ""}
            self.configs.append((params, [float(r["valid"]) for r in rows], [float(r["test"]) for r in rows]))
            self.seconds.append([float(r["seconds"]) for r in rows])
        self.epochs = max(len(valid) for _, valid, _ in self.configs)

    def expected_seconds(self, params: dict) -> float:
        """What a configuration is expected to take to train to the end, known before it is drawn: the median
        recorded seconds of the configurations with its model and batch size (of those it names), as hpsearch
        expects them from each architecture's training throughput (search.study.budget)."""
        keys = [k for k in ("model", "batch_size") if k in params]
        same = [s[-1] for (p, _, _), s in zip(self.configs, self.seconds) if all(p.get(k) == params[k] for k in keys)]
        return statistics.median(same or [s[-1] for s in self.seconds])

    def _value(self, name: str, text: str):
        d = self.distributions[name]
        if isinstance(d, CategoricalDistribution):
            return next(c for c in d.choices if str(c) == text)
        return type(d.low)(float(text))

    def nearest(self, params: dict) -> int:
        """The recorded configuration nearest to `params`: the same choices where any has them, then the
        smallest distance over the numbers, each in its own scale as a share of its range."""
        categorical = [k for k, d in self.distributions.items() if isinstance(d, CategoricalDistribution) and k in params]
        pool = [i for i, (p, _, _) in enumerate(self.configs) if all(p.get(k) == params[k] for k in categorical)]
        return min(pool or range(len(self.configs)), key=lambda i: self._distance(self.configs[i][0], params))

    def _distance(self, a: dict, b: dict) -> float:
        total = 0.0
        for k, d in self.distributions.items():
            if isinstance(d, CategoricalDistribution) or k not in a or k not in b:
                total += 0 if a.get(k) == b.get(k) else 1
                continue
            scale = math.log if d.log else float
            total += ((scale(a[k]) - scale(b[k])) / (scale(d.high) - scale(d.low))) ** 2
        return total

    def best(self, i: int) -> tuple[float, float]:
        """A configuration trained to the end: its best valid value and the test value at that epoch."""
        _, valid, test = self.configs[i]
        epoch = max(range(len(valid)), key=valid.__getitem__)
        return valid[epoch], test[epoch]


def replay(table: Table, space, sampler, pruner, trials: int, study: optuna.Study | None = None) -> list[dict]:
    """One search (in `study` where given: one that holds imported or queued trials already): per trial, its
    configuration, the epochs it ran, whether it completed, and the best valid and test values of the search so far."""
    record = []

    def objective(trial: optuna.Trial) -> float:
        space.suggest(trial)
        i = table.nearest(trial.params)
        _, valid, _ = table.configs[i]
        record.append({"config": i, "epochs": len(valid), "complete": True, "seconds": table.seconds[i][-1]})
        for epoch, value in enumerate(valid, 1):
            trial.report(value, epoch)
            if prune_now(trial, epoch, len(valid)):
                record[-1] |= {"epochs": epoch, "complete": False, "seconds": table.seconds[i][epoch - 1]}
                raise optuna.TrialPruned()
        return table.best(i)[0]

    study = study or optuna.create_study(direction="maximize")
    study.sampler, study.pruner = sampler, pruner
    study.optimize(objective, n_trials=trials)
    best, elapsed = (-1.0, 0.0), 0.0
    for r in record:  # the search's best so far counts completed trials only, as Optuna's best_trial does
        if r["complete"] and table.best(r["config"])[0] > best[0]:
            best = table.best(r["config"])
        elapsed += r["seconds"]
        r["best_valid"], r["best_test"], r["elapsed"] = *best, elapsed
    return record


def combinations(space, epochs: int, table: Table) -> dict[str, tuple]:
    """name: (sampler maker(seed), pruner maker()): random search, the space's default, TPE (10 or 5 start-up
    trials, univariate or multivariate) by pruners (none, median, successive halving and Hyperband with their
    first rung at several epochs, a patient median), and GP without pruning."""
    def tpe(start: int, multivariate: bool = False):
        make = lambda s: optuna.samplers.TPESampler(seed=s, n_startup_trials=start, constant_liar=True,  # noqa: E731
                                                    multivariate=multivariate, group=multivariate)
        return lambda seed: SeededByTrial(seed, make, start)

    samplers = {"tpe 10 start-up": tpe(10), "tpe 5 start-up": tpe(5), "multivariate tpe 10 start-up": tpe(10, True),
                "multivariate tpe 5 start-up": tpe(5, True), "gp": lambda seed: make_sampler("gp", seed)}
    rungs = sorted({1, max(2, epochs // 3), max(3, epochs // 2)})
    pruners = {"no pruning": lambda: make_pruner("none", epochs)}
    for name in ("median", "halving"):
        for rung in rungs:
            option = {"median": "n_warmup_steps", "halving": "min_resource"}[name]
            pruners[f"{name} from epoch {rung}"] = lambda name=name, option=option, rung=rung: make_pruner(name, epochs, {option: rung})
    for rung in rungs[:2]:
        pruners[f"hyperband from epoch {rung}"] = lambda rung=rung: make_pruner("hyperband", epochs, {"min_resource": rung})
    pruners["patient median (2 epochs)"] = lambda: make_pruner("patient", epochs)
    default = f"space default: {space.sampler}, {space.pruner} {space.pruner_options or ''}".strip()
    seconds = table.expected_seconds
    space_pruner = lambda: make_pruner(space.pruner, epochs, space.pruner_options)  # noqa: E731
    grid = {"random, no pruning": (lambda seed: make_sampler("random", seed), lambda: make_pruner("none", epochs)),
            default: (lambda seed: make_sampler(space.sampler, seed, seconds=seconds), space_pruner)}
    for sampler in {"tpe", "tpe-per-second"} - {space.sampler}:
        grid[f"{sampler}, {space.pruner}"] = (lambda seed, sampler=sampler: make_sampler(sampler, seed, seconds=seconds), space_pruner)
    # every pruner under TPE; GP (GP takes 3.5 s a search where TPE takes 0.1) without pruning,
    # which is where a sampler shows what it finds
    grid |= {f"{s}, {p}": (sampler, pruner) for s, sampler in samplers.items() for p, pruner in pruners.items()
             if "tpe" in s or p == "no pruning"}
    return grid


def summarize(name: str, runs: list[list[dict]], target: float, epochs: int, random_epochs: float) -> str:
    def at(n: int, key: str) -> float:
        return statistics.mean(r[min(n, len(r)) - 1][key] for r in runs)

    reach = []
    for r in runs:
        hit = next((k for k, t in enumerate(r) if t["best_valid"] >= target - 1e-12), None)
        reach.append((hit + 1, sum(t["epochs"] for t in r[: hit + 1])) if hit is not None else None)
    reached = [x for x in reach if x]
    trials = trials_to(runs, target)
    used = statistics.mean(sum(t["epochs"] for t in r) for r in runs)
    pruned_best = sum(not any(t["complete"] for t in r if t["config"] == _best_tried(r)) for r in runs)
    cols = [f"{at(n, 'best_valid'):.4f}/{at(n, 'best_test'):.4f}" for n in CHECKPOINTS]
    epochs_to = f"{statistics.mean(x[1] for x in reached):6.0f}" if reached else "     -"
    return (f"{name:50s} " + " ".join(f"{c:>13s}" for c in cols) + f"   {trials:5.1f} {epochs_to} {len(reached):3d}/{len(runs)}"
            f"   {used:6.0f} ({used / random_epochs:4.0%})   {pruned_best / len(runs):4.0%}")


MINUTES = (5, 10, 20)


def reach_minutes(runs: list[list[dict]], target: float) -> list[float]:
    """For each search that reached the target: the recorded minutes its trials had trained by then."""
    hits = [next((t["elapsed"] for t in r if t["best_valid"] >= target - 1e-12), None) for r in runs]
    return [h / 60 for h in hits if h is not None]


def in_minutes(name: str, runs: list[list[dict]], target: float) -> str:
    """The search in recorded training time: its mean best valid (and test) after 5, 10 and 20 minutes, the
    minutes to the target and in how many seeds, and the minutes its trials took in all."""
    def by(minutes: float, key: str) -> float:
        return statistics.mean(max((t[key] for t in r if t["elapsed"] <= minutes * 60), default=0.0) for r in runs)

    reached = reach_minutes(runs, target)
    cols = [f"{by(m, 'best_valid'):.4f}/{by(m, 'best_test'):.4f}" for m in MINUTES]
    to = f"{statistics.mean(reached):5.1f}" if reached else "    -"
    total = statistics.mean(r[-1]["elapsed"] for r in runs) / 60
    return f"{name:50s} " + " ".join(f"{c:>13s}" for c in cols) + f"   {to} {len(reached):3d}/{len(runs)}   {total:6.1f}"


def trials_to(runs: list[list[dict]], target: float) -> float:
    """The mean trials to the target (a search that never reached it counted as one trial beyond its last)."""
    return statistics.mean(next((k + 1 for k, t in enumerate(r) if t["best_valid"] >= target - 1e-12), len(r) + 1) for r in runs)


_TABLE: Table | None = None


def _best_tried(run: list[dict]) -> int:
    return max({t["config"] for t in run}, key=lambda i: _TABLE.best(i)[0])


def main() -> None:
    global _TABLE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--table", help="default benchmarks/curves/SPACE.csv")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--only", help="run the combinations whose names contain this text (and random search)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # GP's fitting: one search per core
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space(args.space)
    _TABLE = table = Table(Path(args.table or Path(__file__).parent / "curves" / f"{space.name}.csv"), space)
    print(f"{space.name}: {len(table.configs)} recorded configurations of {table.epochs} epochs; best recorded valid "
          f"{max(table.best(i)[0] for i in range(len(table.configs))):.4f}; {args.seeds} seeds x {args.trials} trials; "
          f"model-based samplers start with {START} spread trials")
    results, start = {}, time.perf_counter()
    for name, (sampler, pruner) in combinations(space, table.epochs, table).items():
        if args.only and args.only not in name and not name.startswith("random"):
            continue
        results[name] = [replay(table, space, sampler(seed), pruner(), args.trials) for seed in range(args.seeds)]
    base = results["random, no pruning"]
    target = statistics.mean(r[-1]["best_valid"] for r in base)
    random_epochs = statistics.mean(sum(t["epochs"] for t in r) for r in base)
    print(f"random search's mean best valid after {args.trials} trials (the target): {target:.4f}\n")
    print(f"{'':50s} " + " ".join(f"{f'after {n} v/test':>13s}" for n in CHECKPOINTS)
          + f"   {'trials epochs seeds':19s}   {'epochs (of random)':18s} {'best pruned':>11s}")
    print(f"{'':50s} {'mean best valid and its test metric':41s}   {'to reach the target':19s}")
    for name, runs in results.items():
        print(summarize(name, runs, target, table.epochs, random_epochs))
    print("\nthe same searches in minutes: the recorded seconds of the epochs each trial ran (the table's seconds column)\n")
    print(f"{'':50s} " + " ".join(f"{f'after {m} min':>13s}" for m in MINUTES) + "   min to target   min for all")
    for name, runs in results.items():
        print(in_minutes(name, runs, target))
    default = results[next(n for n in results if n.startswith("space default"))]
    reached = reach_minutes(default, target)
    print(f"\n{time.perf_counter() - start:.0f} s")
    print(f"{space.name} default: {statistics.mean(reached) if reached else float('nan'):.1f} min to random search's "
          f"{args.trials}-trial best ({len(reached)}/{len(default)} seeds); "
          f"{statistics.mean(r[-1]['elapsed'] for r in default) / 60:.1f} min for {args.trials} trials; "
          f"{trials_to(default, target):.1f} trials to it")


if __name__ == "__main__":
    main()
