"""The seam between Optuna and the trainer: one trial = suggest, train, report, record."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
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
from search.objectives import figure, metric_of
from search.errors import StorageLost
from search.review import pictures
from search.review.notes import trial_note
from search.study.keep import KEEP, keeps_weights
from search.study.known import duplicate_of
from search.study.resume import (
    CHECKPOINT_EVERY, UnreadableCheckpoint, checkpoint_id, every, first_attempt, is_surplus, load_checkpoint, retry,
    save_checkpoint, system_attrs,
)
from search.study.strategy import prune_now
from spaces import Space
from trainers.costs import CostLimits, Costs, measure_once
from trainers.crossval import fit
from trainers.loop import (
    Diverged, TrainConfig, TrainData, TrainResult, build_model, chance_level, gpu_of, predict, save_weights,
)
from trainers.tasks import Task, get_task, task_options
from trainers.errors import InputError


SURPLUS = "surplus: the study has its trials (another worker started one at the same moment)"
DUPLICATE = "duplicate: a known configuration that another process queued too, and an earlier trial runs"
NOT_RUN = (SURPLUS, DUPLICATE)  # the fail reasons of trials that ended before they began: not the study's failures
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class TrialFailed(Exception):
    """A trial that cannot finish (NaN loss, overflow, out of memory, any error of its step); the study
    records it with its reason and goes on."""


def make_config(space: Space, params: dict, *, epochs: int | None = None, seed: int = 0, **options) -> tuple[TrainConfig, Task]:
    """The trainer's config and the task: the space's fixed settings, then the trial's choices, then run
    options. Each name goes to the training config or, where it is one of the task's options, to the task."""
    fields, for_task = {f.name for f in dataclasses.fields(TrainConfig)}, task_options(space.task)
    values = {
        "epochs": epochs or space.epochs,
        "augment": space.augment,
        "pretrained": space.pretrained,
        "trainable_blocks": space.trainable_blocks,
        "seed": seed,
        **space.fixed,
        **params,
        **{k: v for k, v in options.items() if v is not None},
    }
    unknown = sorted(set(values) - fields - for_task)
    if unknown:
        raise InputError(f"space {space.name!r} sets unknown training options {unknown}: use fields of TrainConfig "
                         f"or options of the task {space.task!r} ({', '.join(sorted(for_task)) or 'none'})")
    task = get_task(space.task, **{k: v for k, v in values.items() if k in for_task})
    return TrainConfig(**{k: v for k, v in values.items() if k in fields}), task


def model_card(space: Space, config: TrainConfig, task: Task, data: TrainData, started_from: dict | None = None) -> dict:
    """Everything needed to rebuild the model and feed it images, and the model it was fine-tuned from."""
    return {
        "space": space.name,
        "task": space.task,
        "task_options": dataclasses.asdict(task),
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("augment", "start_weights")},
        "class_names": data.class_names,
        "image_size": int(data.images.shape[-1]),
        "resize": space.resize,
        "crop": space.crop,  # cut before resizing: left, top, right, bottom fractions
        "normalize": "imagenet" if config.starts_pretrained else {"mean": data.mean, "std": data.std},
        **({"started_from": started_from} if started_from else {}),
    }


def plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' * (n != 1)}"


def failure_reason(err: Exception) -> str:
    """The one line a failed trial records as the reason it failed."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, Diverged):
        return text
    if isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in text:  # the CPU allocator says it in words
        return f"out of memory: {text}"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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


class Objective:
    """One trial: train, report each epoch, and record the outcome, a note and (with a `store`) its files."""

    def __init__(self, space: Space, data: TrainData, store, *, epochs=None, progress=True, wanted=None, keep=KEEP,
                 checkpoint_every: float = CHECKPOINT_EVERY, cost_device: str | None = None, limits=CostLimits(),
                 objectives: list[str] | None = None, started_from: dict | None = None, **options):
        self.space, self.data, self.store = space, data, store
        self.epochs, self.progress, self.wanted, self.keep, self.options = epochs, progress, wanted, keep, options
        self.checkpoint_every, self.limits = checkpoint_every, limits
        self.objectives = objectives  # a multi-objective study's (search.objectives); None: the space's metric alone
        self.started_from = started_from  # the earlier model every trial starts from (search.study.lineage), for its card
        self.cost_device = torch.device(cost_device) if cost_device else data.device
        self.measured: dict[str, dict] = {}  # costs by architecture, as the study keeps them
        self.current: int | None = None  # the number of the trial this worker runs, or ran last

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.current = trial.number
        trial.set_user_attr(record.WORKER, f"{socket.gethostname()}:{os.getpid()}")
        if self.wanted and is_surplus(trial, self.wanted):
            trial.set_user_attr(record.FAIL_REASON, SURPLUS)
            raise TrialFailed(SURPLUS)
        trials = trial.study.get_trials(deepcopy=False)
        if duplicate_of(trials[trial.number], trials):
            trial.set_user_attr(record.FAIL_REASON, DUPLICATE)
            raise TrialFailed(DUPLICATE)
        config, task = make_config(self.space, self.space.suggest(trial), epochs=self.epochs, seed=trial.number, **self.options)
        trial.set_user_attr(record.DEVICE, str(self.data.device))
        if self.data.device.type == "cuda":
            trial.set_user_attr(record.GPU, gpu_of(self.data.device))
        if task.unit != "epoch":
            trial.set_user_attr(record.UNIT, task.unit)
        reports = Reports(trial, task, self.space.metric, task.steps(config.epochs, self.data.class_names), self._share_cores,
                          to_optuna=not self.objectives)
        start, outcome, error = time.perf_counter(), "failed", None
        try:
            costs = self._costs(trial, config, task)
            outcome, value = self._train(trial, config, task, reports)
            return value if not self.objectives else [value, *(figure(n, costs.as_record(), reports.best) for n in self.objectives[1:])]
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
                save_note(trial, trial_note(trial.number, outcome, reports.history, trial.params, trial.user_attrs, error))

    def _costs(self, trial: optuna.Trial, config: TrainConfig, task: Task) -> Costs:
        """What the configuration's model costs to use, and Optuna's constraint values for the limits, so that
        the sampler learns where they are met. Over a limit, the trial ends here, pruned before its first epoch."""
        costs = self.costs(trial.study, config, task)
        trial.set_user_attr(record.COSTS, costs.as_record())
        for name, value in self.limits.constraints(costs).items():
            trial.set_constraint(name, value)
        over = self.limits.over(costs)
        if over:
            raise optuna.TrialPruned(f"its costs, before training: over the limit ({over})")
        return costs

    def costs(self, study: optuna.Study | None, config: TrainConfig, task: Task) -> Costs:
        """What the configuration's model costs to use, measured on it untrained (the weights change none of
        it). Trials of one architecture share its figures, taken once for the study by whichever worker met it
        first (kept on the study), as its machine measured them the first time (trainers.costs.measure_once):
        they cost the same, and measured again by each worker they differed by the machine's noise, enough to
        put trials of one architecture on the front by chance. (Without a study: the machine's figures.)"""
        model = build_model(config, self.data, task)
        size = tuple(self.data.images.shape[-2:])
        key = record.MEASURED + hashlib.sha256(f"{model}|{size}|{self.cost_device}".encode()).hexdigest()[:16]
        recorded = self.measured.get(key) or (study.user_attrs.get(key) if study else None)
        costs = Costs(**recorded) if recorded else measure_once(model, size, self.cost_device)
        if study:  # without one yet, the machine's figures: the study keeps its own when a trial meets the architecture
            if not recorded:
                study.set_user_attr(key, costs.as_record())
            self.measured[key] = costs.as_record()
        return costs

    def _train(self, trial: optuna.Trial, config: TrainConfig, task: Task, reports: Reports) -> tuple[str, float]:
        """Train from the start, or from a retried trial's checkpoint; how it ended, and its value."""
        checkpoint = checkpoint_id(trial.study.study_name, trial) if self.store else None
        resume = self._resume(trial, checkpoint)
        self._share_cores(trial)
        if resume:  # a retry: the pruner and the dashboard see the epochs done before the crash
            trial.set_user_attr(record.RESUMED_FROM_EPOCH, resume["epoch"])
            start = [(0, resume["start"])] if resume.get("start") else []
            for step, metrics in start + list(enumerate(resume["history"], 1)):
                reports(step, metrics)
        save = every(self.checkpoint_every, lambda state: save_checkpoint(self.store, checkpoint, state)) if checkpoint else None
        metric = self.space.metric
        result = fit(config, self.data, task, metric, reports, self.progress, checkpoint=save, resume=resume)
        value = result.best[f"valid_{metric}"]
        outcome = f"complete, valid {metric} {value:.4f} {result.where}"
        chance = self._record(trial, config, task, result)
        if chance is not None:
            outcome += f", no better than chance (always the commonest answer: {chance:.4f})"
        return outcome, value

    def _share_cores(self, trial: optuna.Trial) -> None:
        """Trials training on this machine's CPU share its cores: torch's threads for each of them, so that
        workers do not outnumber the cores. (Two workers of two threads each on two cores trained a small
        model 15 times slower than one alone: their threads spin while waiting for each other.)"""
        if self.data.device.type != "cpu":
            return
        host = f"{socket.gethostname()}:"
        running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        here = sum(t.user_attrs.get(record.WORKER, "").startswith(host) for t in running)
        threads = max(1, CORES // max(1, here))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)

    def _resume(self, trial: optuna.Trial, checkpoint: str | None) -> dict | None:
        """A retry's checkpoint, and one line saying which trial it retries and from where."""
        if first_attempt(trial) == trial.number:
            return None
        try:
            state = load_checkpoint(self.store, checkpoint) if checkpoint else None
            where = f"from epoch {state['epoch'] + 1}" if state else "from the start (no checkpoint)"
        except UnreadableCheckpoint as err:
            state, where = None, f"from the start: its checkpoint is unreadable ({err})"
        previous = system_attrs(trial)[record.RETRY_HISTORY][-1]
        failed = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == previous)
        tqdm.write(f"trial {trial.number} retries trial {previous} {where}; trial {previous} failed: "
                   f"{failed.user_attrs.get(record.FAIL_REASON, 'see its note')}")
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
        metric, valid = self.space.metric, self.data.targets[self.data.splits["valid"]].cpu()
        chance, one_better = chance_level(task, self.data, metric)
        no_better = task.metrics(result.valid_outputs, valid)[metric] < one_better
        trial.set_user_attr(record.CHANCE_LEVEL, round(chance, 4))
        trial.set_user_attr(record.NO_BETTER_THAN_CHANCE, bool(no_better))
        if self.store is not None:
            self._store_files(trial, config, task, result)
        return chance if no_better else None

    def _store_files(self, trial: optuna.Trial, config: TrainConfig, task: Task, result: TrainResult) -> None:
        """Its learning curves and the pictures its task draws of the valid split; for a trial that is the best
        when it ends, those of the test split too; for one among the `keep` best, its weights and card."""
        value = result.best[f"valid_{self.space.metric}"]
        others = [metric_of(t) for t in record.own_trials(trial.study, (TrialState.COMPLETE,))]
        best_so_far = not others or value >= max(others)
        where = f", epoch {result.best_epoch}" if result.unit == "epoch" else ", each class's best fold"
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            curves = result.unit == "epoch"  # folds make no curve
            made = [pictures.learning_curves(result.history, self.space.metric, folder / "learning_curves.png")] if curves else []
            valid = self.data.targets[self.data.splits["valid"]].cpu()
            made += pictures.of_split(task.pictures, "valid", result.valid_outputs, valid, self.data.class_names,
                                      "valid" + where, folder)
            if best_so_far and task.pictures:
                made += self._test_pictures(config, task, result, folder)
            if keeps_weights(trial.study, value, trial.user_attrs.get(record.COSTS), trial.user_attrs.get(record.BEST_METRICS, {}),
                             self.keep):
                # weights for the K best and the front (search.study.keep)
                self._save_model(trial, config, task, result, folder)
            for path in made:
                upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=trial)

    def _test_pictures(self, config: TrainConfig, task: Task, result: TrainResult, folder: Path) -> list[Path]:
        """The best epoch's model on the test split, drawn as its task's pictures (with its images)."""
        model = build_model(dataclasses.replace(config, pretrained=False, start_weights=None), self.data, task)
        model.load_state_dict(result.state_dict)
        rows = self.data.splits["test"]
        outputs, truth = predict(model, config, self.data, rows), self.data.targets[rows].cpu()
        title = "test" + (f", epoch {result.best_epoch}" if result.unit == "epoch" else "")
        return pictures.of_split(task.pictures, "test", outputs, truth, self.data.class_names, title, folder,
                                 images=self.data.pixels(rows).cpu())

    def _save_model(self, trial: optuna.Trial, config: TrainConfig, task: Task, result: TrainResult, folder: Path) -> None:
        weights, card = folder / "model.safetensors", folder / "model.json"
        save_weights(result.state_dict, weights)
        card.write_text(json.dumps(model_card(self.space, config, task, self.data, self.started_from), indent=2))
        for key, path in ((record.WEIGHTS_ARTIFACT, weights), (record.MODEL_ARTIFACT, card)):
            trial.set_user_attr(key, upload_artifact(artifact_store=self.store, file_path=str(path), study_or_trial=trial))
