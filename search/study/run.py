"""Open or create a study and run it until it has N finished trials; then test its best model once."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.artifacts import upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import get_note, save_note
from tqdm.auto import tqdm

from search.errors import SearchFailed, StorageLost
from search.review.notes import study_note
from search.review.report import format_table, skipped_summary, space_distributions
from search.storage import (
    JOURNAL_PREFIX, PASSWORD_VARIABLE, STORAGE_WAIT, artifact_store, check_database_folder, open_storage,
    password_of, safe_url, sqlite_path, without_password,
)
from search.study.keep import KEEP, drop_weights_outside_best
from search.study.objective import SURPLUS, Objective, TrialFailed, failure_reason, make_config, plural
from search.study.resume import (
    CHECKPOINT_EVERY, FINISHED, fail_stale_trials, remove_finished_checkpoints, stop_when_enough,
)
from search.study.strategy import PRUNERS, SAMPLERS, make_pruner, make_sampler
from search.winner import evaluate
from search.winner.models import load_predictor, top_trials
from spaces import Space
from trainers.data import DataError, Discovery, discover
from trainers.loop import TrainData, pick_device
from trainers.models import is_ours
from trainers.predict import Ensemble
from trainers.prepare import BUILTIN_PREFIX, Prepared, prepare, resolve_source, to_device
from trainers.tasks import get_task

MAX_FAILURES_IN_A_ROW = 5


@dataclass
class RunOptions:
    space: Space
    storage: str
    study_name: str
    trials: int
    data: str | None = None  # None: the space's own data
    epochs: int | None = None  # None: the space's epochs
    device: str = "auto"
    seed: int = 0
    pretrained: bool | None = None  # None: as the space says
    weights: str | None = None
    artifacts: str | None = None
    progress: bool = True
    space_arg: str | None = None  # the space as the user named it (a name or a .py file); None: its name
    new_study: bool = False  # refuse to continue an existing study of that name
    heartbeat: int = 30  # seconds; a trial silent for three heartbeats is failed and retried
    storage_wait: float = STORAGE_WAIT  # seconds a lost database is waited for before the worker stops
    keep: int = KEEP  # the weights of this many best trials are kept
    checkpoint_every: float = CHECKPOINT_EVERY  # seconds of training between a trial's epoch checkpoints (0: every epoch)
    sampler: str | None = None  # None: as the study recorded, or the space says
    pruner: str | None = None
    jobs: int = 1  # worker processes on this machine
    worker: int = 0  # > 0: one of the --jobs workers, which only searches; the first process tests the best model

    def command(self) -> list[str]:
        """The command line that runs this study again, password left out."""
        words = ["hpsearch", "run", "--space", self.space_arg or self.space.name, "--trials", str(self.trials)]
        for flag, value in (("--data", self.data), ("--epochs", self.epochs), ("--weights", self.weights),
                            ("--artifacts", self.artifacts)):
            if value is not None:
                words += [flag, str(value)]
        words += ["--pretrained"] if self.pretrained and not self.weights else []
        words += ["--storage-wait", f"{self.storage_wait:g}"] if self.storage_wait != STORAGE_WAIT else []
        words += ["--keep", str(self.keep)] if self.keep != KEEP else []
        words += ["--checkpoint-every", f"{self.checkpoint_every:g}"] if self.checkpoint_every != CHECKPOINT_EVERY else []
        words += [w for flag, value in (("--sampler", self.sampler), ("--pruner", self.pruner)) if value for w in (flag, value)]
        return words + ["--seed", str(self.seed), "--storage", without_password(self.storage), "--study", self.study_name]


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def run(opts: RunOptions) -> dict | None:
    """Run the study to `opts.trials` finished trials; return the best model's train/valid/test table."""
    space = opts.space
    device = pick_device(opts.device)
    options = {"pretrained": opts.pretrained, "weights": opts.weights}
    check_space(space, options)
    check_database_folder(opts.storage)
    heartbeat = None if opts.storage.startswith(JOURNAL_PREFIX) else opts.heartbeat  # journals keep none
    attrs = recorded(opts.storage, opts.study_name)
    if attrs and opts.new_study:
        raise DataError(f"study {opts.study_name!r} already exists in {safe_url(opts.storage)}: name another with --new-study")
    choices = search_choices(opts, attrs)
    prepared = checked_data(opts, attrs, artifact_store(opts.storage, opts.artifacts, create=False))  # before the study
    store = artifact_store(opts.storage, opts.artifacts)
    storage = open_storage(opts.storage, heartbeat=heartbeat, wait=opts.storage_wait)
    try:
        return _search(opts, choices, storage, heartbeat, store, prepared, device, options)
    except Exception:
        if getattr(storage, "lost", False):  # whatever failed after the storage went away (Optuna's own clean-up too)
            raise StorageLost(storage.lost_message) from None
        raise


def _search(opts: RunOptions, choices: dict, storage, heartbeat: int | None, store, prepared: Prepared,
            device: torch.device, options: dict) -> dict | None:
    space = opts.space
    pruner_options = space.pruner_options if choices["pruner"] == space.pruner else {}
    pruner = make_pruner(choices["pruner"], opts.epochs or space.epochs, pruner_options)
    study = optuna.create_study(storage=storage, study_name=opts.study_name, direction="maximize", load_if_exists=True,
                                pruner=pruner)
    study.set_user_attr("search", choices)
    study.set_user_attr("epochs", opts.epochs or space.epochs)  # for `hpsearch status`: what trials run to the end cost
    record_data(study, prepared, opts, store)
    study.set_user_attr("trials_wanted", opts.trials)  # for `hpsearch status`, and for retries
    study.set_user_attr("heartbeat", opts.heartbeat)  # for `hpsearch copy`, to tell dead workers from live ones
    study.set_user_attr("keep", opts.keep)  # the trials whose weights are kept
    note = study_note(space, opts.epochs or space.epochs, study.user_attrs["data"], prepared.decoded.skipped, opts.command())
    if not opts.worker and get_note(study) != note:
        save_note(study, note)
    if not opts.worker and not _work_left(study, opts.trials) and not _running(study):
        done = len(finished_trials(study))
        tqdm.write(f"study {study.study_name!r} already has {done} finished trials (asked for {opts.trials}): "
                   f"nothing to do; ask for more with --trials, see the winner with `hpsearch best`")
        return study.user_attrs.get("best_evaluation")
    workers = start_workers(opts)  # they find the data decoded in the cache
    study.sampler = make_sampler(choices["sampler"], opts.seed)
    data = to_device(prepared, get_task(space.task), device)
    objective = Objective(space, data, store, epochs=opts.epochs, progress=opts.progress, wanted=opts.trials, keep=opts.keep,
                          checkpoint_every=opts.checkpoint_every, **options)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened, without tracebacks
    failures = FailureStreak()
    with tqdm(total=opts.trials, initial=len(finished_trials(study)), desc=f"trials of {study.study_name}", unit="trial",
              disable=not opts.progress) as bar:
        callbacks = [stop_when_enough(opts.trials), remove_finished_checkpoints(store), drop_weights_outside_best(store, opts.keep),
                     _Progress(bar, space.metric), failures]
        if _work_left(study, opts.trials):
            _optimize(study, objective, callbacks)
        while not failures.stopped and wait_for_running(study, heartbeat, opts.trials):
            _optimize(study, objective, callbacks)  # a dead worker's trial came back to be retried
    wait_for(workers)
    if failures.stopped:
        raise SearchFailed(f"{MAX_FAILURES_IN_A_ROW} trials in a row failed, the last with {failures.last!r}: see each "
                           f"trial's fail_reason (`hpsearch export`, the dashboard); fix the space, data or options, then run again")
    return None if opts.worker else test_best(study, data, store)


def _optimize(study: optuna.Study, objective: Objective, callbacks: list) -> None:
    """Run trials. Where another worker failed this one's trial as stale (no heartbeat for three beats, as on
    a starved machine) and retries it, Optuna cannot store its end: say so and go on with the next trial."""
    while True:
        try:
            study.optimize(objective, catch=(TrialFailed,), callbacks=callbacks)
            return
        except ValueError:
            if objective.taken_over is None:
                raise
            tqdm.write(f"trial {objective.taken_over}: another worker failed it after this one sent no heartbeat "
                       f"for too long, and retries it")
            objective.taken_over = None


def check_space(space: Space, options: dict) -> None:
    """A space's own mistakes (a failing suggest(), options no trainer knows) stop the run before any work."""
    trial = optuna.create_study().ask()
    try:
        params = space.suggest(trial)
    except Exception as err:
        raise ValueError(f"space {space.name!r}: its suggest() fails ({failure_reason(err)}): fix the space") from err
    make_config(space, params, **options)
    for what, name, known in (("sampler", space.sampler, SAMPLERS), ("pruner", space.pruner, PRUNERS)):
        if name not in known:
            raise ValueError(f"space {space.name!r}: unknown {what} {name!r}: use one of {', '.join(known)}")


def _work_left(study: optuna.Study, wanted: int) -> bool:
    fail_stale_trials(study)  # trials of workers that died: failed, and queued again
    return len(finished_trials(study)) + len(_running(study)) < wanted


def _running(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def wait_for_running(study: optuna.Study, heartbeat: int | None, wanted: int) -> bool:
    """Wait while other workers' trials run. True when a trial waits to be run again (its worker died, and
    it was failed after three heartbeats of silence); False when none runs any more, or without heartbeats."""
    announced = False
    while heartbeat:
        fail_stale_trials(study)
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) and len(finished_trials(study)) < wanted:
            return True
        running = _running(study)
        if not running:
            return False
        if not announced:
            tqdm.write(f"waiting for {len(running)} running trial(s): other workers', or a dead worker's, "
                       f"which is retried here after {3 * heartbeat} s without a heartbeat")
            announced = True
        time.sleep(min(heartbeat, 2))
    return False


def start_workers(opts: RunOptions) -> list[subprocess.Popen]:
    """--jobs K: K-1 more processes run the same command on the same study; this one is the K-th."""
    if opts.jobs <= 1 or opts.worker:
        return []
    if sqlite_path(opts.storage) is None and opts.storage.startswith("sqlite"):
        raise DataError("--jobs needs a database file that all workers can open, not an in-memory SQLite")
    command = [sys.executable, "-m", "search.cli", *opts.command()[1:], "--heartbeat", str(opts.heartbeat), "--jobs", str(opts.jobs), "--quiet"]
    password = password_of(opts.storage)  # through the environment, not the command line others can read
    env = {**os.environ, PASSWORD_VARIABLE: password} if password else None
    return [subprocess.Popen([*command, "--worker", str(i)], env=env) for i in range(1, opts.jobs)]


def wait_for(workers: list[subprocess.Popen]) -> None:
    failed = sum(w.wait() not in (0, 130) for w in workers)
    if failed:
        tqdm.write(f"{failed} of {len(workers)} worker processes failed: see their lines above")


def recorded(url: str, study_name: str) -> dict:
    """An existing study's user attributes (its data, its search...); empty for a new study. Creates no database file."""
    database = sqlite_path(url)
    if database is not None and not database.exists():
        return {}
    storage = open_storage(url)
    if study_name not in optuna.get_all_study_names(storage):
        return {}
    return optuna.load_study(study_name=study_name, storage=storage).user_attrs


def search_choices(opts: RunOptions, attrs: dict) -> dict[str, str]:
    """The sampler and the pruner: as asked, else as the study recorded, else the space's. A resumed study
    refuses another: its trials would mix two searches."""
    then, chosen = attrs.get("search", {}), {}
    for what, asked, default in (("sampler", opts.sampler, opts.space.sampler), ("pruner", opts.pruner, opts.space.pruner)):
        if asked and then.get(what) and asked != then[what]:
            raise DataError(f"study {opts.study_name!r} searches with --{what} {then[what]}: it keeps it; to try {asked}, "
                            f"start a new study with --new-study NAME")
        chosen[what] = asked or then.get(what) or default
    return chosen


def checked_data(opts: RunOptions, attrs: dict, store) -> Prepared:
    """Find, check and decode the data: other images than the study's are refused before decoding."""
    space, source = opts.space, opts.data or opts.space.data
    if space.pretrained if opts.pretrained is None else opts.pretrained:
        check_weights(space, opts.weights)
    found = discover(resolve_source(source))
    # Only "data" says the data was recorded: a worker started beside the study's first one may find the
    # study with its search choices but no data yet (four workers started at once hit that in CI).
    recorded = {**attrs["data"], "splits_artifact": attrs.get("splits_artifact")} if "data" in attrs else {}
    if recorded and recorded["fingerprint"] != found.fingerprint:
        raise DataError(
            f"study {opts.study_name!r} was run on other images than {source} now holds "
            f"({data_difference(store, recorded, found)}): use the study's images (at any path), "
            f"or start a new study on these with --new-study NAME"
        )
    prepared = prepare(found, space.image_size, space.resize, space.split, opts.seed, progress=opts.progress, crop=space.crop)
    for line in skipped_summary(prepared.decoded.skipped):
        tqdm.write(line)
    if recorded and recorded["split_digest"] != prepared.split_digest:
        raise DataError(
            f"study {opts.study_name!r} used another train/valid/test split (digest {recorded['split_digest']}, "
            f"now {prepared.split_digest}): keep the same --seed and split, or start a new study with --new-study NAME"
        )
    return prepared


def data_difference(store, recorded: dict, found: Discovery) -> str:
    """What differs between the study's images (its splits.csv) and the images found now, by content."""
    counts = f"{recorded['files']} files then, {len(found.items)} now"
    try:
        with store.open_reader(recorded["splits_artifact"]) as reader:
            then = {(row["digest"], row["label"]): row["path"] for row in csv.DictReader(io.TextIOWrapper(reader))}
    except (ArtifactNotFound, KeyError, TypeError):  # the artifact store stayed on another machine
        return counts
    now = {(i.digest, i.label): i.relpath for i in found.items}
    parts = [counts]
    for what, keys, paths in (("new", now.keys() - then.keys(), now), ("missing", then.keys() - now.keys(), then)):
        if keys:
            example = paths[min(keys, key=lambda k: paths[k])]
            parts.append(f"{len(keys)} {what} or relabelled, e.g. {example}")
    if len(parts) == 1:
        parts.append("the same images, with a split column or left-out files that differ")
    return "; ".join(parts)


def check_weights(space: Space, weights: str | None) -> None:
    """Load each pretrained model the space may pick once now, so that missing weights stop the run
    with one error before any trial, not in every trial."""
    choice = space_distributions(space).get("model")
    names = choice.choices if isinstance(choice, optuna.distributions.CategoricalDistribution) else []
    task = get_task(space.task)
    for name in names:
        if not is_ours(name):
            tqdm.write(f"checking pretrained weights for {name}")
            task.create_model(name, 2, pretrained=True, weights=weights)


def record_data(study: optuna.Study, prepared: Prepared, opts: RunOptions, store) -> None:
    if "data" in study.user_attrs:
        return
    study.set_user_attr("space", opts.space.name)
    study.set_user_attr(
        "data",
        {
            "source": absolute(opts.data or opts.space.data),
            "fingerprint": prepared.fingerprint,
            "split_digest": prepared.split_digest,
            "files": len(prepared.found.items),
            "images": len(prepared.decoded.items),
            "class_names": prepared.class_names,
            "counts": prepared.counts(),
            "skipped": len(prepared.decoded.skipped),
            "image_size": opts.space.image_size,
            "resize": opts.space.resize,
            "crop": opts.space.crop,
            "split": list(opts.space.split),
            "seed": opts.seed,
        },
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "splits.csv"
        prepared.split.write_csv(prepared.decoded.items, path)
        study.set_user_attr("splits_artifact", upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study))
    study.set_user_attr("storage", safe_url(opts.storage))


def absolute(source: str) -> str:
    """Where the data is, from any working directory: a path made absolute; built-in data as named."""
    return source if source.startswith(BUILTIN_PREFIX) else str(Path(source).expanduser().resolve())


class FailureStreak:
    """After each trial: stop the search once MAX_FAILURES_IN_A_ROW trials in a row have failed."""

    def __init__(self):
        self.streak, self.stopped, self.last = 0, False, None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get("fail_reason") == SURPLUS:
            return
        self.streak = self.streak + 1 if trial.state == TrialState.FAIL else 0
        self.last = trial.user_attrs.get("fail_reason")
        if self.streak >= MAX_FAILURES_IN_A_ROW:
            self.stopped = True
            study.stop()


class _Progress:
    def __init__(self, bar: tqdm, metric: str):
        self.bar, self.metric = bar, metric

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get("fail_reason") == SURPLUS:
            return
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        if trial.state == TrialState.COMPLETE:
            outcome = f"{self.metric} {trial.value:.4f}" + (" (no better than chance)" if trial.user_attrs.get("no_better_than_chance") else "")
        elif trial.state == TrialState.PRUNED:
            unit = trial.user_attrs.get("unit", "epoch")
            outcome = f"pruned after {plural(trial.user_attrs.get(f'{unit}s_run', 0), unit)}"
        else:
            outcome = f"failed: {trial.user_attrs.get('fail_reason', 'see the log')}"
        tqdm.write(f"trial {trial.number:3d} {outcome:28s} {params}")
        if trial.state in FINISHED:
            self.bar.update()
        try:
            self.bar.set_postfix_str(f"best {self.metric} {study.best_value:.4f} (trial {study.best_trial.number})")
        except ValueError:  # no trial has completed yet
            pass


def test_best(study: optuna.Study, data: TrainData, store) -> dict | None:
    """Evaluate the best trial's stored model on train, valid and test; store and print the table."""
    try:
        best = study.best_trial
    except ValueError:
        tqdm.write("no trial completed: nothing to test")
        return None
    if best.number not in [t.number for t in top_trials(study, store, 1)]:
        tqdm.write(f"trial {best.number} is the best but has no stored weights: cannot test it")
        return None
    table = evaluate.table(Ensemble([load_predictor(store, best, data.device)]), data)
    evaluation = {"trial": best.number, "params": best.params, "table": table}
    study.set_user_attr("best_evaluation", evaluation)
    tqdm.write(f"\nbest trial {best.number}: " + json.dumps(best.params))
    tqdm.write(format_table(table))
    return evaluation
