"""The seam between Optuna and the trainer: one trial = suggest, train, report, record."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import socket
import tempfile
import time
import traceback
from pathlib import Path

import optuna
import torch
from optuna.artifacts import upload_artifact
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from optuna_dashboard import save_note
from tqdm.auto import tqdm

from search import record
from search.errors import StorageLost
from search.objectives import figure, metric_of
from search.record import TrialRecord
from search.review import pictures
from search.review.notes import trial_note
from search.review.pictures import Predictions
from search.study.keep import keeps_weights
from search.study.known import duplicate_of
from search.study.resume import (
    UnreadableCheckpoint, checkpoint_id, every, first_attempt, is_surplus, load_checkpoint, retry, save_checkpoint,
    system_attrs,
)
from search.study.setup import Run
from search.study.strategy import prune_now
from search.study.training import make_config, model_card
from trainers.cores import trial_threads
from trainers.costs import Costs
from trainers.crossval import fit
from trainers.loop import (
    Diverged, Hooks, TrainConfig, TrainResult, build_model, chance_level, failure_reason, gpu_of, predict, save_weights,
)
from trainers.tasks import Task


SURPLUS = "surplus: the study has its trials (another worker started one at the same moment)"
DUPLICATE = "duplicate: a known configuration that another process queued too, and an earlier trial runs"
NOT_RUN = (SURPLUS, DUPLICATE)  # the fail reasons of trials that ended before they began: not the study's failures


class TrialFailed(Exception):
    """A trial that cannot finish (NaN loss, overflow, out of memory, any error of its step); the study
    records it with its reason and goes on."""


def plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' * (n != 1)}"


class Reports:
    """A trial's report callback: each epoch's (or fold's) metrics go to Optuna as its intermediate value and
    the best so far as its BEST_METRICS; the pruner may stop it, never at its last step."""

    def __init__(self, trial: optuna.Trial, task: Task, metric: str, last: int, before=None, to_optuna: bool = True):
        self.trial, self.unit, self.metric, self.last, self.before = trial, task.unit, metric, last, before
        self.to_optuna = to_optuna  # False in a multi-objective study: Optuna takes no intermediate values there
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] = {}  # the best step's metrics (of folds, their mean)

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if self.before:
            self.before(self.trial)
        if step == 0:  # a model that started trained, before its first epoch: where its curve starts, not an epoch
            self.trial.set_user_attr(record.START_METRICS, metrics)
            if self.to_optuna:
                self.trial.report(metrics[f"valid_{self.metric}"], 0)
            return
        self.history.append(metrics)
        key = f"valid_{self.metric}"
        if self.unit == "fold":  # one-vs-rest: the mean of its folds
            self.best = {k: sum(h[k] for h in self.history) / len(self.history) for k in metrics}
            self.trial.set_user_attr(record.BEST_METRICS, self.best)
        elif metrics[key] > max((h[key] for h in self.history[:-1]), default=-float("inf")):
            self.best = metrics
            self.trial.set_user_attr(record.BEST_METRICS, metrics)
        if not self.to_optuna:
            return
        self.trial.report(metrics[key], step)
        if prune_now(self.trial, len(self.history), self.last):
            pruner = type(self.trial.study.pruner).__name__
            raise optuna.TrialPruned(f"{pruner} after {plural(len(self.history), self.unit)}, valid {self.metric} {metrics[key]:.4f}")


class OutOfTime:
    """Asked after each epoch: whether the run's --timeout is spent (and so, that training stops there)."""

    def __init__(self, run: Run):
        self.run, self.stopped = run, False

    def __call__(self) -> bool:
        self.stopped = self.run.out_of_time
        return self.stopped


class Objective:
    """One trial of a run: train, report each epoch, and record the outcome, a note and its files."""

    def __init__(self, run: Run):
        self.run = run
        self.current: int | None = None  # the number of the trial this worker runs, or ran last

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        run = self.run
        self.current = trial.number
        trial.set_user_attr(record.WORKER, f"{socket.gethostname()}:{os.getpid()}")
        if is_surplus(trial, run.config.trials):
            trial.set_user_attr(record.FAIL_REASON, SURPLUS)
            raise TrialFailed(SURPLUS)
        trials = trial.study.get_trials(deepcopy=False)
        if duplicate_of(trials[trial.number], trials):
            trial.set_user_attr(record.FAIL_REASON, DUPLICATE)
            raise TrialFailed(DUPLICATE)
        config, task = make_config(run.space, run.space.suggest(trial), run.training, seed=trial.number)
        trial.set_user_attr(record.EXPECTED_SECONDS, round(run.expected(trial.params), 2))
        trial.set_user_attr(record.DEVICE, str(run.data.device))
        if run.data.device.type == "cuda":
            trial.set_user_attr(record.GPU, gpu_of(run.data.device))
        if task.unit != "epoch":
            trial.set_user_attr(record.UNIT, task.unit)
        reports = Reports(trial, task, run.space.metric, task.steps(config.epochs, run.data.class_names), self._share_cores,
                          to_optuna=not run.objectives)
        start, outcome, error = time.perf_counter(), "failed", None
        try:
            costs = self._measure_within_limits(trial, config, task)
            outcome, value = self._train(trial, config, task, reports)
            if not run.objectives:
                return value
            return [value, *(figure(n, costs.as_record(), reports.best) for n in run.objectives[1:])]
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: Optuna marks the trial failed; queue it to go on from its checkpoint
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already: the SIGTERM passed on to workers must not cut this short
            outcome = "interrupted"
            retry(trial.study, next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number))
            trial.set_user_attr(record.FAIL_REASON, outcome)
            raise
        except optuna.TrialPruned as pruned:
            trial.set_user_attr(record.PRUNED_REASON, str(pruned))
            outcome = f"pruned by {pruned}"
            raise
        except (StorageLost, UpdateFinishedTrialError):  # not this trial's doing, and nothing more can be stored
            outcome = None
            raise
        except Exception as err:  # NaN, overflow, out of memory, whatever a step raises: this trial fails, the study goes on
            reason = failure_reason(err)
            outcome = f"failed: {reason}"
            error = None if isinstance(err, Diverged) or reason.startswith("out of memory") else traceback.format_exc()
            raise self._fail(trial, reason) from err
        finally:  # for pruned and failed trials too
            if outcome is not None:
                trial.set_user_attr(record.steps_run(task.unit), len(reports.history))
                trial.set_user_attr(record.SECONDS, round(time.perf_counter() - start, 2))
                save_note(trial, trial_note(TrialRecord.read(trial), outcome, reports.history, trial.params, error))

    def _measure_within_limits(self, trial: optuna.Trial, config: TrainConfig, task: Task) -> Costs:
        """What the configuration's model costs to use (search.study.meter), and Optuna's constraint values for
        the limits, so that the sampler learns where they are met. Over a limit, the trial ends here, pruned
        before its first epoch."""
        costs = self.run.meter.costs(trial.study, config, task)
        trial.set_user_attr(record.COSTS, costs.as_record())
        limits = self.run.limits
        for name, value in limits.constraints(costs).items():
            trial.set_constraint(name, value)
        over = limits.over(costs)
        if over:
            raise optuna.TrialPruned(f"its costs, before training: over the limit ({over})")
        return costs

    def _train(self, trial: optuna.Trial, config: TrainConfig, task: Task, reports: Reports) -> tuple[str, float]:
        """Train from the start, or from a retried trial's checkpoint; how it ended, and its value."""
        checkpoint = checkpoint_id(trial.study.study_name, trial) if self.run.store else None
        resume = self._resume(trial, checkpoint)
        self._share_cores(trial)
        if resume:  # a retry: the pruner and the dashboard see the epochs done before the crash
            trial.set_user_attr(record.RESUMED_FROM_EPOCH, resume["epoch"])
            start = [(0, resume["start"])] if resume.get("start") else []
            for step, metrics in start + list(enumerate(resume["history"], 1)):
                reports(step, metrics)
        store, metric = self.run.store, self.run.space.metric
        save = None if checkpoint is None else every(self.run.config.checkpoint_every,
                                                     lambda state: save_checkpoint(store, checkpoint, state))
        out_of_time, started = OutOfTime(self.run), time.perf_counter()
        try:
            result = fit(config, self.run.data, task, metric, Hooks(reports, save, resume, self.run.progress, out_of_time))
        except optuna.TrialPruned:  # its epochs so far: what it was expected to take is corrected by them too
            trial.set_user_attr(record.TRAINING_SECONDS, round(time.perf_counter() - started, 2))
            raise
        trial.set_user_attr(record.TRAINING_SECONDS, round(time.perf_counter() - started, 2))
        value = result.best[f"valid_{metric}"]
        outcome = f"complete, valid {metric} {value:.4f} {result.where}"
        chance = self._record(trial, config, task, result)
        if chance is not None:
            outcome += f", no better than chance (always the commonest answer: {chance:.4f})"
        if out_of_time.stopped and len(result.history) < config.epochs:  # recorded as the others, then pruned: it may be the best
            trial.set_user_attr(record.BUDGET_VALUE, value)
            raise optuna.TrialPruned(record.TIME_BUDGET)
        return outcome, value

    def _share_cores(self, trial: optuna.Trial) -> None:
        """Trials training on this machine's CPU share its cores, and leave those that other work keeps busy
        (trainers.cores). (Two workers of two threads each on two cores trained a small model 15 times slower
        than one alone: their threads spin while waiting for each other.)"""
        if self.run.data.device.type != "cpu":
            return
        host = f"{socket.gethostname()}:"
        running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        here = sum((TrialRecord.read(t).worker or "").startswith(host) for t in running)
        threads = trial_threads(here)
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)

    def _resume(self, trial: optuna.Trial, checkpoint: str | None) -> dict | None:
        """A retry's checkpoint, and one line saying which trial it retries and from where."""
        if first_attempt(trial) == trial.number:
            return None
        try:
            state = load_checkpoint(self.run.store, checkpoint) if checkpoint else None
            where = f"from epoch {state['epoch'] + 1}" if state else "from the start (no checkpoint)"
        except UnreadableCheckpoint as err:
            state, where = None, f"from the start: its checkpoint is unreadable ({err})"
        previous = system_attrs(trial)[record.RETRY_HISTORY][-1]
        failed = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == previous)
        tqdm.write(f"trial {trial.number} retries trial {previous} {where}; trial {previous} failed: "
                   f"{TrialRecord.read(failed).fail_reason or 'see its note'}")
        return state

    def _fail(self, trial: optuna.Trial, reason: str) -> TrialFailed:
        trial.set_user_attr(record.FAIL_REASON, reason)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return TrialFailed(reason)

    def _record(self, trial: optuna.Trial, config: TrainConfig, task: Task, result: TrainResult) -> float | None:
        """Store what the trial found; the chance level where the kept model is no better than it."""
        trial.set_user_attr(record.TRAINABLE_PARAMS, result.trainable_params)
        trial.set_user_attr(record.TOTAL_PARAMS, result.total_params)
        if result.unit == "epoch":
            trial.set_user_attr(record.BEST_EPOCH, result.best_epoch)
        trial.set_user_attr(record.INFERENCE_MS, round(result.inference_ms, 4))
        metric, valid = self.run.space.metric, self.run.data.targets[self.run.data.splits["valid"]].cpu()
        chance, one_better = chance_level(task, self.run.data, metric)
        no_better = task.metrics(result.valid_outputs, valid)[metric] < one_better
        trial.set_user_attr(record.CHANCE_LEVEL, round(chance, 4))
        trial.set_user_attr(record.NO_BETTER_THAN_CHANCE, bool(no_better))
        if self.run.store is not None:
            self._store_files(trial, config, task, result)
        return chance if no_better else None

    def _store_files(self, trial: optuna.Trial, config: TrainConfig, task: Task, result: TrainResult) -> None:
        """Its learning curves and the pictures its task draws of the valid split; for a trial that is the best
        when it ends, those of the test split too; for one among the `keep` best, its weights and card."""
        metric, data = self.run.space.metric, self.run.data
        value = result.best[f"valid_{metric}"]
        others = [metric_of(t) for t in record.trained_trials(trial.study)]
        best_so_far = not others or value >= max(others)
        where = f", epoch {result.best_epoch}" if result.unit == "epoch" else ", each class's best fold"
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            curves = result.unit == "epoch"  # folds make no curve
            made = [pictures.learning_curves(result.history, metric, folder / "learning_curves.png")] if curves else []
            valid = Predictions(result.valid_outputs, data.targets[data.splits["valid"]].cpu(), data.class_names)
            made += pictures.of_split(task.pictures, "valid", valid, "valid" + where, folder)
            if best_so_far and task.pictures:
                made += self._test_pictures(config, task, result, folder)
            recorded = TrialRecord.read(trial)
            if keeps_weights(trial.study, value, recorded.costs, recorded.best_metrics, self.run.config.keep):
                # weights for the K best and the front (search.study.keep)
                self._save_model(trial, config, task, result, folder)
            for path in made:
                upload_artifact(artifact_store=self.run.store, file_path=str(path), study_or_trial=trial)

    def _test_pictures(self, config: TrainConfig, task: Task, result: TrainResult, folder: Path) -> list[Path]:
        """The best epoch's model on the test split, drawn as its task's pictures (with its images)."""
        model = build_model(dataclasses.replace(config, pretrained=False, start_weights=None), self.run.data, task)
        model.load_state_dict(result.state_dict)
        rows = self.run.data.splits["test"]
        outputs, truth = predict(model, config, self.run.data, rows), self.run.data.targets[rows].cpu()
        title = "test" + (f", epoch {result.best_epoch}" if result.unit == "epoch" else "")
        seen = Predictions(outputs, truth, self.run.data.class_names, images=self.run.data.pixels(rows).cpu())
        return pictures.of_split(task.pictures, "test", seen, title, folder)

    def _save_model(self, trial: optuna.Trial, config: TrainConfig, task: Task, result: TrainResult, folder: Path) -> None:
        weights, card = folder / "model.safetensors", folder / "model.json"
        save_weights(result.state_dict, weights)
        card.write_text(json.dumps(model_card(self.run.space, config, task, self.run.data, self.run.started_from), indent=2))
        for key, path in ((record.WEIGHTS_ARTIFACT, weights), (record.MODEL_ARTIFACT, card)):
            trial.set_user_attr(key, upload_artifact(artifact_store=self.run.store, file_path=str(path), study_or_trial=trial))
