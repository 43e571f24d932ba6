"""Open or create a study and run it until it has N finished trials; then test its best model once."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import optuna
import torch
from optuna.artifacts import upload_artifact
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import get_note, save_note
from tqdm.auto import tqdm

from search import objectives, record
from search.errors import SearchFailed, StorageLost
from search.objectives import best_trial, metric_of
from search.record import DataRecord, StudyRecord
from search.review.front import save_front_plot
from search.review.notes import study_note
from search.review.report import each_with_limit, not_drawn_line
from search.storage import Location
from search.study.checks import check_space, checked_data, checked_objectives
from search.study.objective import NOT_RUN, Objective, TrialFailed, plural
from search.study.keep import drop_weights_outside_best
from search.study.known import DEFAULT, Prior, history_from, known_configurations
from search.study.lineage import Start, starting_model
from search.study.options import RunOptions, spread_over, start_workers, stop_workers, wait_for
from search.study.resume import (
    FINISHED, fail_stale_trials, remove_finished_checkpoints, retry, stop_when_enough, taken_over,
)
from search.study.feasible import models_over_limits
from search.study.strategy import make_pruner, make_sampler
from search.winner.evaluate import evaluate_best
from trainers.costs import CostLimits
from trainers.errors import InputError
from trainers.loop import TrainData, pick_device
from trainers.prepare import BUILTIN_PREFIX, Prepared, to_device
from trainers.tasks import get_task

MAX_FAILURES_IN_A_ROW = 5


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    return record.own_trials(study, FINISHED)


def run(opts: RunOptions) -> dict | None:
    """Run the study to `opts.trials` finished trials; return the best model's train/valid/test table."""
    device = pick_device(opts.device)
    gpus = spread_over(device, opts.gpus)
    device = torch.device("cuda", gpus[0]) if gpus else device  # this process is worker 0
    if opts.cost_device == "cuda" and not torch.cuda.is_available():
        raise InputError("--cost-device cuda: no CUDA device is available here; measure on the CPU with --cost-device cpu")
    where = opts.location
    where.check_folder()
    heartbeat = None if where.journal else opts.heartbeat  # journals keep none
    # opened once, before any work where the study may exist; for a new database file, only once the data is
    # found good: bad input leaves no database behind
    storage = where.open(heartbeat, opts.storage_wait, retry) if where.exists() else None
    exists = storage is not None and opts.study_name in optuna.get_all_study_names(storage)
    existing = optuna.load_study(study_name=opts.study_name, storage=storage) if exists else None
    attrs = existing.user_attrs if existing else {}
    if exists and opts.new_study:
        raise InputError(f"study {opts.study_name!r} already exists in {where.safe}: name another with --new-study")
    others = Location(opts.from_storage) if opts.from_storage else where  # where --from, --enqueue and --learn-from find studies
    start = started(opts, others, existing)
    options = start.options if start else {"pretrained": opts.pretrained, "weights": opts.weights}
    if start:
        opts = dataclasses.replace(opts, space=start.space(opts.space))
    check_space(opts.space, options)
    choices = search_choices(opts, StudyRecord.read(attrs).search or {})
    asked = [n.strip() for n in opts.objectives.split(",")] if opts.objectives else None
    prior = Prior() if opts.worker else Prior(  # the main process gives it, before any worker starts
        history_from(opts.learn_from, others, opts.space, asked or (objectives.objectives_of(existing) if existing else None)),
        known_configurations(opts.space, opts.enqueue, opts.enqueue_top, default_first=not opts.no_default_first, where=others,
                             study_is_new=not (existing and existing.get_trials(deepcopy=False))))
    if start and any(k.params.get("model", start.architecture["model"]) != start.architecture["model"] for k in prior.known):
        raise InputError(f"--enqueue with --from: a set names another model than {start.architecture['model']!r}, "
                        f"which every trial starts from; leave the model out of the sets")
    prepared = checked_data(opts, DataRecord.read(attrs), where.artifact_store(create=False), start)  # before the study
    names = checked_objectives(opts, existing, prepared)
    store = where.artifact_store()
    storage = storage or where.open(heartbeat, opts.storage_wait, retry)
    try:
        data = to_device(prepared, get_task(opts.space.task), device)
        return _search(opts, choices, names, prior, storage, heartbeat, store, prepared, data, options, gpus, start)
    except Exception:
        if getattr(storage, "lost", False):  # whatever failed after the storage went away (Optuna's own clean-up too)
            raise StorageLost(storage.lost_message) from None
        raise


def _search(opts: RunOptions, choices: dict, names: list[str] | None, prior: Prior, storage, heartbeat: int | None, store,
            prepared: Prepared, data: TrainData, options: dict, gpus: list[int] | None, start: Start | None) -> dict | None:
    space, epochs = opts.space, opts.epochs or opts.space.epochs
    pruner_options = space.pruner_options if choices["pruner"] == space.pruner else {}
    if names:  # Optuna's pruners take one objective: a study of several runs every trial to its end
        choices = {**choices, "pruner": "none"}
    pruner = make_pruner(choices["pruner"], epochs, pruner_options)
    directions = [objectives.direction(n) for n in names] if names else ["maximize"]
    objective = Objective(space, data, store, epochs=opts.epochs, progress=opts.progress, wanted=opts.trials, keep=opts.keep,
                          checkpoint_every=opts.checkpoint_every, cost_device=opts.cost_device,
                          limits=CostLimits(opts.max_ms, opts.max_params, opts.max_mb), objectives=names,
                          started_from=start.lineage if start else None, **options)
    exists = opts.study_name in optuna.get_all_study_names(storage)
    ruled_out = _models_ruled_out(objective, optuna.load_study(study_name=opts.study_name, storage=storage) if exists else None,
                                  opts, start)  # before the study is made, and before the workers start
    study = optuna.create_study(storage=storage, study_name=opts.study_name, directions=directions, load_if_exists=True,
                                pruner=pruner)
    if names and study.metric_names != names:
        study.set_metric_names(names)
    record.record_run(study, search=choices, epochs=epochs, trials_wanted=opts.trials, heartbeat=opts.heartbeat, keep=opts.keep,
                      metric=space.metric, ruled_out=ruled_out)
    recorded = StudyRecord.read(study).data or _record_data(study, prepared, data, opts, store)
    if start and not StudyRecord.read(study).started_from:
        study.set_user_attr(record.STARTED_FROM, start.lineage)
    if not opts.worker:
        if names:
            tqdm.write(f"study {study.study_name!r} optimizes {', '.join(f'{n} ({objectives.direction(n)})' for n in names)} "
                       f"with multi-objective TPE; its trials are not pruned (Optuna's pruners take one objective)")
        note = study_note(space, epochs, recorded, prepared.decoded.skipped, opts.command())
        if get_note(study) != note:
            save_note(study, note)
        if not _work_left(study, opts.trials) and not _running(study):
            tqdm.write(f"study {study.study_name!r} already has {len(finished_trials(study))} finished trials (asked for "
                       f"{opts.trials}): nothing to do; ask for more with --trials, see the winner with `hpsearch best`")
            return StudyRecord.read(study).best_evaluation
    known = [k for k in prior.known if not (k.source == DEFAULT and k.params.get("model") in ruled_out)]
    dataclasses.replace(prior, known=known).give(study)  # the space's default is a wasted trial where its model is ruled out
    workers = start_workers(opts, gpus)  # they find the data decoded in the cache
    try:
        failures = _trials(study, opts, choices, objective, heartbeat, store, start, ruled_out)
    except BaseException:  # Ctrl-C, SIGTERM, a lost storage: the workers stop too, their trials ready to resume
        stop_workers(workers)
        raise
    finally:
        failed = wait_for(workers)
    if failed:
        tqdm.write(f"{failed} of {len(workers)} worker processes failed: see their lines above")
    if failures.stopped:
        raise SearchFailed(f"{MAX_FAILURES_IN_A_ROW} trials in a row failed, the last with {failures.last!r}: see each "
                           f"trial's fail_reason (`hpsearch export`, the dashboard); fix the space, data or options, then run again")
    return None if opts.worker else evaluate_best(study, data, store)


def _trials(study: optuna.Study, opts: RunOptions, choices: dict, objective: Objective, heartbeat: int | None, store,
            start: Start | None, ruled_out: dict[str, str]) -> FailureStreak:
    """This process's trials, until the study has its trials or too many fail in a row."""
    sampler = make_sampler(choices["sampler"], opts.seed, {"model": set(ruled_out)})
    study.sampler = start.sampler(sampler) if start else sampler
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened, without tracebacks
    failures = FailureStreak()
    with tqdm(total=opts.trials, initial=len(finished_trials(study)), desc=f"trials of {study.study_name}", unit="trial",
              disable=None if opts.progress else True) as bar:  # None: a bar on a terminal only, never in a log
        callbacks = [stop_when_enough(opts.trials), remove_finished_checkpoints(store), drop_weights_outside_best(store, opts.keep),
                     _Progress(bar, opts.space.metric), failures]
        callbacks += [] if opts.worker else [save_front_plot]  # one process writes the figure: its parts are many writes
        if _work_left(study, opts.trials):
            _optimize(study, objective, callbacks)
        while not failures.stopped and wait_for_running(study, heartbeat, opts.trials):
            _optimize(study, objective, callbacks)  # a dead worker's trial came back to be retried
    return failures


def _models_ruled_out(objective: Objective, study: optuna.Study | None, opts: RunOptions,
                      start: Start | None) -> dict[str, str]:
    """The models the limits rule out before any trial (search.study.feasible), each with the limit it breaks,
    said in a line; refused where none is left, or where every trial starts from one of them."""
    over = models_over_limits(objective, study)
    if not over:
        return {}
    choices = opts.space.model_choices()
    said = each_with_limit(over)
    if set(choices) <= set(over) or (start and start.architecture["model"] in over):
        raise InputError(f"no model {'the study starts from' if start else 'of space ' + repr(opts.space.name)} meets the "
                        f"limits: {said}; raise --max-ms, --max-params or --max-mb")
    if not opts.worker:
        tqdm.write(not_drawn_line(over)[0])
    return over


def started(opts: RunOptions, others: Location, existing: optuna.Study | None) -> Start | None:
    """The earlier model every trial starts from (--from), where there is one; checked before any work."""
    if opts.from_model and (opts.pretrained or opts.weights):
        raise InputError(f"--from {opts.from_model} with --pretrained or --weights: every trial starts from that study's "
                        f"model, not from ImageNet's weights; leave them out")
    recorded = StudyRecord.read(existing).started_from if existing else None
    if opts.from_model and existing and not recorded and existing.get_trials(deepcopy=False):
        raise InputError(f"--from {opts.from_model}: study {opts.study_name!r} has trials that started from scratch; "
                        f"start a new study with --new-study NAME")
    return starting_model(opts.from_model, others, opts.space, opts.study_name, recorded)


def _record_data(study: optuna.Study, prepared: Prepared, data: TrainData, opts: RunOptions, store) -> DataRecord:
    """The study's data, recorded by the first run that finds none recorded; splits.csv in the artifact store."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "splits.csv"
        prepared.split.write_csv(prepared.decoded.items, path)
        splits = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
    source = opts.data or opts.space.data
    space = opts.space
    recorded = DataRecord(
        source=source if source.startswith(BUILTIN_PREFIX) else str(Path(source).expanduser().resolve()),
        fingerprint=prepared.fingerprint, split_digest=prepared.split_digest, files=len(prepared.found.items),
        images=len(prepared.decoded.items), class_names=data.class_names, counts=prepared.counts(),
        skipped=len(prepared.decoded.skipped), image_size=space.image_size, resize=space.resize, crop=space.crop,
        split=space.split, seed=opts.seed, splits_artifact=splits)
    record.record_data(study, recorded, space.name, opts.location.safe)
    return recorded


def _optimize(study: optuna.Study, objective: Objective, callbacks: list) -> None:
    """Run trials. Where another worker failed this one's trial as stale (no heartbeat for three beats, as on
    a starved machine) and retries it, Optuna cannot store its end (it fails on it in one of several ways:
    a ValueError, its own AssertionError): say so in one line and go on with the next trial."""
    while True:
        try:
            study.optimize(objective, catch=(TrialFailed,), callbacks=callbacks)
            return
        except Exception:
            if objective.current is None or not taken_over(study, objective.current):
                raise
            tqdm.write(f"trial {objective.current}: another worker failed it as stale after this one sent no heartbeat "
                       f"for too long, and retries it; this worker goes on with the next trial")


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


def search_choices(opts: RunOptions, then: dict[str, str]) -> dict[str, str]:
    """The sampler and the pruner: as asked, else as the study recorded, else the space's. A resumed study
    refuses another: its trials would mix two searches."""
    chosen = {}
    for what, asked, default in (("sampler", opts.sampler, opts.space.sampler), ("pruner", opts.pruner, opts.space.pruner)):
        if asked and then.get(what) and asked != then[what]:
            raise InputError(f"study {opts.study_name!r} searches with --{what} {then[what]}: it keeps it; to try {asked}, "
                            f"start a new study with --new-study NAME")
        chosen[what] = asked or then.get(what) or default
    return chosen


class FailureStreak:
    """After each trial: stop the search once MAX_FAILURES_IN_A_ROW trials in a row have failed."""

    def __init__(self):
        self.streak, self.stopped, self.last = 0, False, None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get(record.FAIL_REASON) in NOT_RUN:
            return
        self.streak = self.streak + 1 if trial.state == TrialState.FAIL else 0
        self.last = trial.user_attrs.get(record.FAIL_REASON)
        if self.streak >= MAX_FAILURES_IN_A_ROW:
            self.stopped = True
            study.stop()


class _Progress:
    """After each trial: its one line, and the bar (on a terminal only)."""

    def __init__(self, bar: tqdm, metric: str):
        self.bar, self.metric = bar, metric

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get(record.FAIL_REASON) in NOT_RUN:
            return
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        if trial.state == TrialState.COMPLETE:
            chance = " (no better than chance)" if trial.user_attrs.get(record.NO_BETTER_THAN_CHANCE) else ""
            outcome = f"{self.metric} {metric_of(trial):.4f}{chance}"
        elif trial.state == TrialState.PRUNED and any(v > 0 for v in trial.constraints.values()):
            outcome = "over a limit, not trained"
        elif trial.state == TrialState.PRUNED:
            unit = trial.user_attrs.get(record.UNIT, "epoch")
            outcome = f"pruned after {plural(trial.user_attrs.get(record.steps_run(unit), 0), unit)}"
        else:
            outcome = f"failed: {trial.user_attrs.get(record.FAIL_REASON, 'see the log')}"
        known = f" ({trial.user_attrs[record.ENQUEUED]})" if record.ENQUEUED in trial.user_attrs else ""
        tqdm.write(f"trial {trial.number:3d} {outcome:28s} {params}{known}")
        if trial.state in FINISHED:
            self.bar.update()
        best = best_trial(study)
        if best is not None:
            self.bar.set_postfix_str(f"best {self.metric} {metric_of(best):.4f} (trial {best.number})")
