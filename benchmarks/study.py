"""The whole checkbox study, two ways, side by side in one run: `hpsearch run --space checkbox` against the plain
Optuna script a user would write instead (benchmarks/plain_optuna.py: ImageFolder, a DataLoader per epoch,
PIL transforms, TPE and the median pruner), on the built-in data with the same split, trial budget and 10
epochs, for seeds 0, 1 and 2. For each: wall time, trials per hour, epochs run, the best valid and test
weighted F1, and the ratio of wall times.

    python benchmarks/study.py [--trials 50] [--device cpu|cuda] [--seeds 0,1,2] [--epochs 10]

hpsearch starts with an empty cache, so its first seed pays for decoding the images.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_splits(seed: int, path: Path) -> None:
    """hpsearch's split of the built-in checkbox data for this --seed, as path,split rows."""
    from spaces import get_space
    from trainers.prepare import Splitting, prepare

    space = get_space("checkbox")
    prepared = prepare(space.data, space.image_size, space.resize, splitting=Splitting(space.split, seed), progress=False)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "split"])
        writer.writerows((str(i.path), s) for i, s in zip(prepared.decoded.items, prepared.split.assignment))


def hpsearch(seed: int, trials: int, epochs: int, device: str, folder: Path, env: dict) -> dict:
    import optuna

    from search.record import StudyRecord

    storage = f"sqlite:///{folder / f'seed{seed}.db'}"
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "hpsearch"), "run", "--space", "checkbox", "--trials", str(trials),
                    "--seed", str(seed), "--device", device, "--epochs", str(epochs), "--storage", storage, "--quiet"],
                   check=True, env=env, cwd=folder, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name="checkbox", storage=storage)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    return {"seconds": seconds, "trials": len(finished), "epochs": sum(len(t.intermediate_values) for t in finished),
            "valid": study.best_value, "test": StudyRecord.read(study).best_evaluation["table"]["test"]["f1_weighted"]}


def plain(seed: int, trials: int, epochs: int, device: str, folder: Path, env: dict) -> dict:
    splits = folder / f"splits{seed}.csv"
    write_splits(seed, splits)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plain_optuna.py"), "--splits", str(splits), "--trials",
                          str(trials), "--epochs", str(epochs), "--seed", str(seed), "--device", device],
                         check=True, env=env, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def line(name: str, r: dict) -> str:
    return (f"  {name:22s} {r['seconds']:8.0f} s  {3600 * r['trials'] / r['seconds']:7.0f} trials/h  {r['epochs']:5d} epochs  "
            f"valid {r['valid']:.4f}  test {r['test']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hpsearch-study-bench-"))
    env = {**os.environ, "HPSEARCH_CACHE": str(folder / "cache"), "PYTHONPATH": str(ROOT)}
    os.environ["HPSEARCH_CACHE"] = env["HPSEARCH_CACHE"]
    print(f"checkbox, {args.trials} trials of {args.epochs} epochs, device {args.device}, {os.cpu_count()} CPU cores")
    results = {"hpsearch run": [], "plain Optuna script": []}
    for seed in map(int, args.seeds.split(",")):
        print(f"seed {seed}:", flush=True)
        for name, runner in (("hpsearch run", hpsearch), ("plain Optuna script", plain)):
            results[name].append(runner(seed, args.trials, args.epochs, args.device, folder, env))
            print(line(name, results[name][-1]), flush=True)
    print("mean of the seeds:")
    means = {name: {k: statistics.mean(r[k] for r in rs) for k in rs[0] if k != "best"} for name, rs in results.items()}
    for name, m in means.items():
        print(line(name, {**m, "epochs": round(m["epochs"])}))
    print(f"hpsearch is {means['plain Optuna script']['seconds'] / means['hpsearch run']['seconds']:.2f}x faster "
          f"(wall time), at valid {means['hpsearch run']['valid'] - means['plain Optuna script']['valid']:+.4f} and "
          f"test {means['hpsearch run']['test'] - means['plain Optuna script']['test']:+.4f} weighted F1")


if __name__ == "__main__":
    main()
