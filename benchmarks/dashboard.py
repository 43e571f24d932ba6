"""How fast optuna-dashboard opens a big study: a synthetic 1,000-trial study against a 10-trial one,
both shaped like hpsearch's (the checkbox space's parameters, an intermediate value per epoch, the
user attributes and a Markdown note on every trial), served by `hpsearch dashboard` and opened in
headless Chromium with a cold cache.

    python benchmarks/dashboard.py [--trials 1000] [--repeats 3]

"first page" is /dashboard/ until the study's name shows; "study page" is the study's own page
until its optimization-history plot is drawn. Most of a first page's time is the browser starting
optuna-dashboard's 6 MB script, the same for any study; the server's part is timed on its own.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
from optuna_dashboard import save_note

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import chromium, dashboard

from search.record import BEST_EPOCH, DEVICE, SECONDS, TrialRecord
from search.review.notes import trial_note
from search.storage import Location

EPOCHS = 10


def make_study(storage_url: str, name: str, trials: int) -> None:
    """Trials shaped like the checkbox space's, from a trivial objective; pruned ones stop early."""
    study = optuna.create_study(study_name=name, storage=Location(storage_url).open(), direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0), pruner=optuna.pruners.NopPruner())
    rng = random.Random(0)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_categorical("model", ["baseline", "mobilenetv2_050", "resnet18"])
        trial.suggest_categorical("batch_size", [8, 16, 32, 64])
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
        history, value = [], rng.random() * 0.5
        for epoch in range(rng.choice([3, EPOCHS])):
            value = min(1.0, value + rng.random() * 0.1)
            history.append({"train_loss": 1 - value, "valid_loss": 1.1 - value, "valid_f1_weighted": value})
            trial.report(value, epoch)
        trial.set_user_attr(SECONDS, rng.random() * 30)
        trial.set_user_attr(DEVICE, "cpu")
        trial.set_user_attr(BEST_EPOCH, len(history))
        save_note(trial, trial_note(TrialRecord.read(trial), "complete", history, trial.params))
        return value

    study.optimize(objective, n_trials=trials)


def page_seconds(browser, url: str, wait_for: str) -> float:
    context = browser.new_context()  # a cold cache every time
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(wait_for, timeout=60_000)
    seconds = time.perf_counter() - start
    context.close()
    return seconds


def api_seconds(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as answer:
        answer.read()
    return time.perf_counter() - start


def measure(browser, base: str, name: str, repeats: int) -> tuple[float, float, float]:
    first = [page_seconds(browser, f"{base}/dashboard/", f"text={name}") for _ in range(repeats)]
    study = [page_seconds(browser, f"{base}/dashboard/studies/1", ".js-plotly-plot .main-svg") for _ in range(repeats)]
    api = [api_seconds(f"{base}/api/studies/1?after=0") for _ in range(repeats)]
    return statistics.median(first), statistics.median(study), statistics.median(api)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = {}
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        for trials in (10, args.trials):
            folder = Path(tmp) / f"n{trials}"
            folder.mkdir()
            url, name = f"sqlite:///{folder / 'studies.db'}", f"synthetic-{trials}"
            start = time.perf_counter()
            make_study(url, name, trials)
            print(f"made a {trials}-trial study in {time.perf_counter() - start:.1f} s", flush=True)
            with dashboard(url, folder, folder / "dashboard.log") as base:
                page_seconds(browser, f"{base}/dashboard/", f"text={name}")  # warm the server, not the browser
                results[trials] = measure(browser, base, name, args.repeats)
    (small_first, small_study, small_api), (big_first, big_study, big_api) = results[10], results[args.trials]
    print(f"optuna-dashboard in headless Chromium, medians of {args.repeats} cold loads:")
    print(f"  first page:  {small_first:5.2f} s for 10 trials, {big_first:5.2f} s for {args.trials} "
          f"(ratio {big_first / small_first:.2f}; target under 2 s)")
    print(f"  study page:  {small_study:5.2f} s for 10 trials, {big_study:5.2f} s for {args.trials} "
          f"(ratio {big_study / small_study:.2f})")
    print(f"  the study's trials from the server (/api/studies/1): {small_api:5.3f} s for 10 trials, "
          f"{big_api:5.3f} s for {args.trials} (ratio {big_api / small_api:.1f})")


if __name__ == "__main__":
    main()
