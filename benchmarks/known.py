"""Building on an earlier study, replayed on the recorded curves (benchmarks/search_quality.py's method): an
earlier 50-trial search of the space's default (its own seed), then a new search that starts cold, that runs
the earlier study's K best parameter sets first (`--enqueue STUDY`), or that takes the earlier study's
finished trials as its sampler's history (`--learn-from STUDY`): the trials each needs to reach a valid
metric, over several seeds. The curves are the CPU-recorded tables of benchmarks/curves/ (same data: the
case where the earlier study ran on the same images).

    python benchmarks/known.py checkbox [--target 0.976] [--seeds 3] [--trials 50] [--top 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
from search_quality import Table, replay  # noqa: E402

from search.objectives import ranked  # noqa: E402
from search.study.known import Known, imported, learn, queue  # noqa: E402
from search.study.strategy import make_pruner, make_sampler  # noqa: E402
from spaces import get_space  # noqa: E402


def search(table: Table, space, seed: int, trials: int, start=None) -> list[dict]:
    """A search of the space's default with `seed`, in a study that `start` prepares first."""
    study = optuna.create_study(direction="maximize", study_name=f"search-{seed}")
    if start:
        start(study)
    return replay(table, space, make_sampler(space.sampler, seed), make_pruner(space.pruner, table.epochs, space.pruner_options),
                  trials, study)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("space")
    parser.add_argument("--target", type=float, default=0.976, help="the valid metric to reach")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--top", type=int, default=5, help="--enqueue's K best")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space(args.space)
    table = Table(Path(__file__).parent / "curves" / f"{space.name}.csv", space)
    reached = {"cold": [], "--enqueue earlier --enqueue-top K": [], "--learn-from earlier": []}
    for seed in range(args.seeds):
        earlier = optuna.create_study(direction="maximize", study_name="earlier")
        replay(table, space, make_sampler(space.sampler, 1000 + seed), make_pruner(space.pruner, table.epochs, space.pruner_options),
               args.trials, earlier)
        starts = {"cold": None,
                  "--enqueue earlier --enqueue-top K": lambda s: queue(s, [Known(t.params, "earlier") for t in ranked(earlier)[:args.top]]),
                  "--learn-from earlier": lambda s: learn(s, imported(earlier))}
        for name, start in starts.items():
            run = search(table, space, seed, args.trials, start)
            hit = next((k + 1 for k, t in enumerate(run) if t["best_valid"] >= args.target - 1e-12), args.trials + 1)
            reached[name].append(hit)
        print(f"seed {seed}: earlier study's best valid {ranked(earlier)[0].value:.4f}; trials to {args.target}: "
              + ", ".join(f"{name} {hits[-1]}" for name, hits in reached.items()), flush=True)
    print(f"\n{space.name}, mean trials to valid {args.target} over {args.seeds} seeds ({args.trials + 1}: not reached)")
    for name, hits in reached.items():
        print(f"{name:36s} {statistics.mean(hits):5.1f}   {hits}")


if __name__ == "__main__":
    main()
