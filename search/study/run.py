"""Run a study until it has N finished trials (its run opened and checked first: search.study.setup); then
test its best model once."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import optuna
from optuna.artifacts import upload_artifact
from optuna.trial import FrozenTrial, TrialState
from optuna_dashboard import get_note, save_note
from tqdm.auto import tqdm

from search import objectives, record
from search.declare import said_duration
from search.errors import SearchFailed, StorageLost
from search.objectives import best_trial, metric_of
from search.record import DataRecord, StudyRecord, TrialRecord
from search.review.front import save_front_plot
from search.review.notes import study_note
from search.review.report import each_with_limit, not_drawn_line
from search.study.config import RunConfig
from search.study.feasible import models_over_limits
from search.study.keep import drop_weights_outside_best
from search.study.known import DEFAULT
from search.study.objective import NOT_RUN, Objective, TrialFailed, plural
from search.study.resume import FINISHED, fail_stale_trials, remove_finished_checkpoints, stop_when_enough, taken_over
from search.study.setup import Run, open_run
from search.study.strategy import make_pruner, make_sampler
from search.study.workers import start_workers, stop_workers, wait_for
from search.winner.evaluate import evaluate_best
from spaces import Space
from trainers.costs import LIMITED
from trainers.errors import InputError
from trainers.prepare import BUILTIN_PREFIX

MAX_FAILURES_IN_A_ROW = 5


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    return record.own_trials(study, FINISHED)


def run(config: RunConfig, space: Space | None = None) -> dict | None:
    """Run the study to `config.trials` finished trials, on the space it names (or `space`, one made in code);
    return the best model's train/valid/test table."""
    opened = open_run(config, space)
    try:
        return _search(opened)
    except Exception:
        if getattr(opened.storage, "lost", False):  # whatever failed after the storage went away (Optuna's own clean-up too)
            raise StorageLost(opened.storage.lost_message) from None
        raise


def _search(run: Run) -> dict | None:
    config, space = run.config, run.space
    study, ruled_out = _study(run)
    if not config.worker:
        if run.objectives:
            tqdm.write(f"study {study.study_name!r} optimizes "
                       f"{', '.join(f'{n} ({objectives.direction(n)})' for n in run.objectives)} with multi-objective TPE; "
                       f"its trials are not pruned (Optuna's pruners take one objective)")
        recorded = StudyRecord.read(study).data
        note = study_note(space, run.epochs, recorded, run.prepared.decoded.skipped, config.command())
        if get_note(study) != note:
            save_note(study, note)
        if not _work_left(study, config.trials) and not _running(study):
            tqdm.write(f"study {study.study_name!r} already has {len(finished_trials(study))} finished trials (asked for "
                       f"{config.trials}): nothing to do; ask for more with --trials, see the winner with `hpsearch best`")
            return StudyRecord.read(study).best_evaluation
    known = [k for k in run.prior.known if not (k.source == DEFAULT and k.params.get("model") in ruled_out)]
    dataclasses.replace(run.prior, known=known).give(study)  # the space's default is a wasted trial where its model is ruled out
    workers = start_workers(config, run.gpus)  # they find the data decoded in the cache
    try:
        failures = _trials(study, run, ruled_out)
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
    if config.worker:
        return None
    evaluation = evaluate_best(study, run.data, run.store)
    if config.timeout:
        tqdm.write(_budget_line(study, run))
    return evaluation


def _budget_line(study: optuna.Study, run: Run) -> str:
    """How the run spent its --timeout, in one line: its trials, its time, the best so far."""
    config = run.config
    started = config.deadline - config.timeout
    ran = [t for t in finished_trials(study) if t.datetime_start and t.datetime_start.timestamp() >= started]
    best = best_trial(study)
    said = f"best valid {run.space.metric} {metric_of(best):.4f} (trial {best.number})" if best else "no trial has a result yet"
    spent = f"{plural(len(ran), 'trial')} finished in {said_duration(time.time() - started)}"
    if run.seconds_left > 0:
        return f"{spent}, within the time budget of {said_duration(config.timeout)}; {said}"
    return (f"time budget of {said_duration(config.timeout)} spent: {spent}; {said}; the same command (with a new "
            f"--timeout) continues the study")


def _study(run: Run) -> tuple[optuna.Study, dict[str, str]]:
    """The study, made where it is new, with what this run says of it recorded; and the models its limits rule out
    (found before the study is made, and before the workers start)."""
    config, space = run.config, run.space
    pruner_options = space.pruner_options if run.choices["pruner"] == space.pruner else {}
    pruner = make_pruner(run.choices["pruner"], run.epochs, pruner_options)
    directions = [objectives.direction(n) for n in run.objectives] if run.objectives else ["maximize"]
    exists = config.study_name in optuna.get_all_study_names(run.storage)
    ruled_out = _models_ruled_out(run, optuna.load_study(study_name=config.study_name, storage=run.storage) if exists else None)
    study = optuna.create_study(storage=run.storage, study_name=config.study_name, directions=directions, load_if_exists=True,
                                pruner=pruner)
    if run.objectives and study.metric_names != run.objectives:
        study.set_metric_names(run.objectives)
    record.record_run(study, StudyRecord(search=run.choices, epochs=run.epochs, trials_wanted=config.trials,
                                         heartbeat=config.heartbeat, keep=config.keep, metric=space.metric,
                                         ruled_out=ruled_out, limits=run.limits.most,
                                         budget={"seconds": config.timeout, "deadline": config.deadline} if config.timeout else None))
    if not StudyRecord.read(study).data:
        _record_data(study, run)
    if run.start and not StudyRecord.read(study).started_from:
        study.set_user_attr(record.STARTED_FROM, run.start.lineage)
    return study, ruled_out


def _trials(study: optuna.Study, run: Run, ruled_out: dict[str, str]) -> FailureStreak:
    """This process's trials, until the study has its trials or too many fail in a row."""
    config = run.config
    run.expected.learn(study)  # from the trials the study has finished already
    sampler = make_sampler(run.choices["sampler"], config.seed, {"model": set(ruled_out)}, seconds=run.expected)
    study.sampler = run.start.sampler(sampler) if run.start else sampler
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say what happened, without tracebacks
    failures, objective = FailureStreak(), Objective(run)
    with tqdm(total=config.trials, initial=len(finished_trials(study)), desc=f"trials of {study.study_name}", unit="trial",
              disable=None if run.progress else True) as bar:  # None: a bar on a terminal only, never in a log
        callbacks = [stop_when_enough(config.trials), remove_finished_checkpoints(run.store),
                     drop_weights_outside_best(run.store, config.keep), _Progress(bar, run.space.metric), failures,
                     run.expected.learn]
        callbacks += [] if config.worker else [save_front_plot]  # one process writes the figure: its parts are many writes
        if _work_left(study, config.trials) and not run.out_of_time:
            _optimize(study, objective, callbacks, config.deadline)
        while not failures.stopped and not run.out_of_time and wait_for_running(study, run.heartbeat, config.trials):
            _optimize(study, objective, callbacks, config.deadline)  # a dead worker's trial came back to be retried
    return failures


def _models_ruled_out(run: Run, study: optuna.Study | None) -> dict[str, str]:
    """The models the limits rule out before any trial (search.study.feasible), each with the limit it breaks,
    said in a line; refused where none is left, or where every trial starts from one of them."""
    over = models_over_limits(run, study)
    if not over:
        return {}
    said, start = each_with_limit(over), run.start
    if set(run.space.model_choices()) <= set(over) or (start and start.architecture["model"] in over):
        flags = [f"--max-{kind.name}" for kind in LIMITED]
        raise InputError(f"no model {'the study starts from' if start else 'of space ' + repr(run.space.name)} meets the "
                         f"limits: {said}; raise {', '.join(flags[:-1])} or {flags[-1]}")
    if not run.config.worker:
        tqdm.write(not_drawn_line(over)[0])
    return over


def _record_data(study: optuna.Study, run: Run) -> DataRecord:
    """The study's data, recorded by the first run that finds none recorded; splits.csv in the artifact store."""
    prepared, space = run.prepared, run.space
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "splits.csv"
        prepared.split.write_csv(prepared.decoded.items, path)
        splits = upload_artifact(artifact_store=run.store, file_path=str(path), study_or_trial=study)
    source = run.config.data or space.data
    recorded = DataRecord(
        source=source if source.startswith(BUILTIN_PREFIX) else str(Path(source).expanduser().resolve()),
        fingerprint=prepared.fingerprint, split_digest=prepared.split_digest, files=len(prepared.found.items),
        images=len(prepared.decoded.items), class_names=run.data.class_names, counts=prepared.counts(),
        skipped=len(prepared.decoded.skipped), image_size=space.image_size, resize=space.resize, crop=space.crop,
        split=space.split, seed=run.config.seed, splits_artifact=splits)
    record.record_data(study, recorded, space.name, run.config.location.safe)
    return recorded


def _optimize(study: optuna.Study, objective: Objective, callbacks: list, deadline: float | None = None) -> None:
    """Run trials. Where another worker failed this one's trial as stale (no heartbeat for three beats, as on
    a starved machine) and retries it, Optuna cannot store its end (it fails on it in one of several ways:
    a ValueError, its own AssertionError): say so in one line and go on with the next trial. With a `deadline`
    (--timeout), Optuna's own timeout: no trial starts after it."""
    while True:
        left = None if deadline is None else deadline - time.time()
        if left is not None and left <= 0:
            return
        try:
            study.optimize(objective, catch=(TrialFailed,), callbacks=callbacks, timeout=left)
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


class FailureStreak:
    """After each trial: stop the search once MAX_FAILURES_IN_A_ROW trials in a row have failed."""

    def __init__(self):
        self.streak, self.stopped, self.last = 0, False, None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        reason = TrialRecord.read(trial).fail_reason
        if reason in NOT_RUN:
            return
        self.streak = self.streak + 1 if trial.state == TrialState.FAIL else 0
        self.last = reason
        if self.streak >= MAX_FAILURES_IN_A_ROW:
            self.stopped = True
            study.stop()


class _Progress:
    """After each trial: its one line, and the bar (on a terminal only)."""

    def __init__(self, bar: tqdm, metric: str):
        self.bar, self.metric = bar, metric

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        recorded = TrialRecord.read(trial)
        if recorded.fail_reason in NOT_RUN:
            return
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        if trial.state == TrialState.COMPLETE:
            chance = " (no better than chance)" if recorded.no_better_than_chance else ""
            outcome = f"{self.metric} {metric_of(trial):.4f}{chance}"
        elif recorded.pruned_reason == record.TIME_BUDGET:
            outcome = f"{self.metric} {metric_of(trial):.4f}, time budget after {plural(recorded.steps_run or 0, recorded.unit)}"
        elif trial.state == TrialState.PRUNED and any(v > 0 for v in trial.constraints.values()):
            outcome = "over a limit, not trained"
        elif trial.state == TrialState.PRUNED:
            outcome = f"pruned after {plural(recorded.steps_run or 0, recorded.unit)}"
        else:
            outcome = f"failed: {recorded.fail_reason or 'see the log'}"
        known = f" ({recorded.enqueued})" if recorded.enqueued else ""
        tqdm.write(f"trial {trial.number:3d} {outcome:28s} {params}{known}")
        if trial.state in FINISHED:
            self.bar.update()
        best = best_trial(study)
        if best is not None:
            self.bar.set_postfix_str(f"best {self.metric} {metric_of(best):.4f} (trial {best.number})")
