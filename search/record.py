"""What a study stores about itself, and the names of the attributes hpsearch writes on its trials: the one
module that spells these keys. Every room reads and writes them through it (review reads trials, winner
reads the weights and the data record, study writes them), so it sits on the ground floor beside the
storage. Keys are permanent in every stored study: a renamed key is read under its old name too."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from trainers.data import SPLIT_FRACTIONS, Discovery
from trainers.errors import InputError

# What a trial records (its user attributes)
WORKER = "worker"  # host:pid of the process that ran it
DEVICE = "device"  # where it trained
GPU = "gpu"  # on a GPU: {"index": the machine's index for it, "name": the card's}
UNIT = "unit"  # "fold" where its steps are folds (one-vs-rest); absent for epochs
BEST_METRICS = "best_metrics"  # the metrics of its best epoch so far (of its folds, their mean)
EPOCH_METRICS = "epochs"  # a trial's every epoch's metrics: written by studies before BEST_METRICS, read from them still
RESUMED_FROM_EPOCH = "resumed_from_epoch"
FAIL_REASON = "fail_reason"
PRUNED_REASON = "pruned_reason"
SECONDS = "seconds"  # how long it took, from its start to its end (this attempt's, for a retry)
TRAINING_SECONDS = "training_seconds"  # of those, its training's (its epochs and their evaluation)
EXPECTED_SECONDS = "expected_seconds"  # what its training was expected to take to the end, before it began (search.study.expected)
TRAINABLE_PARAMS = "trainable_params"
TOTAL_PARAMS = "total_params"
BEST_EPOCH = "best_epoch"
INFERENCE_MS = "inference_ms_per_image"  # of the valid split's batched evaluation, while training
COSTS = "costs"  # what its model costs to use, measured before training: trainers.costs.Costs
CHANCE_LEVEL = "chance_level"
NO_BETTER_THAN_CHANCE = "no_better_than_chance"
WEIGHTS_ARTIFACT = "weights_artifact"  # the artifact ids of its model.safetensors and model.json
MODEL_ARTIFACT = "model_artifact"
ENQUEUED = "enqueued"  # where its parameters came from when they were known before it ran (search.study.known)
START_METRICS = "start_metrics"  # the valid metrics of the model it started from, before its first epoch (--from)
BUDGET_VALUE = "value_at_time_budget"  # its best epoch's metric, where the run's time budget stopped it (TIME_BUDGET)
IMPORTED = "imported_from"  # "study v1 trial 7": another study's trial, history for the sampler (--learn-from), never one of ours

# What a trial's system attributes hold: ours, and Optuna's own retry records
SAMPLER_SEED = "sampler_seed"  # the seed its parameters were drawn with
FAILED_TRIAL = "failed_trial"  # RetryFailedTrialCallback: the first attempt a retry retries
RETRY_HISTORY = "retry_history"  # and every attempt before it


TIME_BUDGET = "time budget"  # the pruned_reason of a trial that the run's --timeout stopped at the end of an epoch


def own_trials(study: optuna.Study, states=None) -> list[FrozenTrial]:
    """The study's trials (of `states`: None, every state), but for those imported from another (--learn-from):
    what it counts, ranks and keeps."""
    return [t for t in study.get_trials(deepcopy=False, states=states) if IMPORTED not in t.user_attrs]


def trained_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's own trials that trained to a result: the completed ones, and those the time budget stopped
    at the end of an epoch (pruned, with their best epoch so far as their value: search.objectives.metric_of)."""
    return [t for t in own_trials(study, (TrialState.COMPLETE, TrialState.PRUNED))
            if t.state == TrialState.COMPLETE or BUDGET_VALUE in t.user_attrs]


def stale_reason(seconds: float) -> str:
    """The FAIL_REASON of a trial failed because its worker went silent (see search.study.resume)."""
    return f"worker stopped (no heartbeat for {seconds:g} s)"


def steps_run(unit: str) -> str:
    """The attribute that counts a trial's steps run: epochs_run, or folds_run."""
    return f"{unit}s_run"


# the trial attributes worth a column of `hpsearch export --csv`, in this order
COLUMNS = (BEST_EPOCH, steps_run("epoch"), steps_run("fold"), RESUMED_FROM_EPOCH, SECONDS, TRAINING_SECONDS, EXPECTED_SECONDS,
           TOTAL_PARAMS,
           TRAINABLE_PARAMS, INFERENCE_MS, CHANCE_LEVEL, NO_BETTER_THAN_CHANCE, DEVICE, GPU, WORKER, ENQUEUED, IMPORTED, FAIL_REASON, PRUNED_REASON)


@dataclass(frozen=True)
class TrialRecord:
    """What a trial recorded about itself (its user attributes), read once: what the rest of hpsearch reads of a
    trial. A field is None where the trial recorded nothing of the kind (yet)."""

    number: int
    unit: str = "epoch"  # what its steps are: epochs, or folds (one-vs-rest)
    steps_run: int | None = None  # the epochs (or folds) it ran
    best_metrics: dict[str, float] = field(default_factory=dict)  # its best epoch's valid metrics (of folds, their mean)
    start_metrics: dict[str, float] | None = None
    best_epoch: int | None = None
    resumed_from_epoch: int | None = None
    seconds: float | None = None
    training_seconds: float | None = None
    expected_seconds: float | None = None
    costs: dict | None = None  # trainers.costs.Costs, as stored
    total_params: int | None = None
    trainable_params: int | None = None
    inference_ms: float | None = None
    chance_level: float | None = None
    no_better_than_chance: bool = False
    worker: str | None = None
    device: str | None = None
    gpu: dict | None = None
    fail_reason: str | None = None
    pruned_reason: str | None = None
    weights_artifact: str | None = None
    model_artifact: str | None = None
    enqueued: str | None = None
    imported: str | None = None
    ensemble: list[int] | None = None  # an ensemble's members, where it stands beside the trials (search.objectives)
    columns: dict = field(default_factory=dict)  # those of COLUMNS it recorded, by attribute name

    @classmethod
    def read(cls, trial: optuna.Trial | FrozenTrial) -> TrialRecord:
        attrs = trial.user_attrs
        unit = attrs.get(UNIT, "epoch")
        plain = {k: attrs.get(k) for k in (BEST_EPOCH, RESUMED_FROM_EPOCH, SECONDS, TRAINING_SECONDS, EXPECTED_SECONDS, COSTS, TOTAL_PARAMS, TRAINABLE_PARAMS,
                                            CHANCE_LEVEL, WORKER, DEVICE, GPU, FAIL_REASON, PRUNED_REASON, WEIGHTS_ARTIFACT,
                                            MODEL_ARTIFACT, ENQUEUED, START_METRICS, ENSEMBLE)}
        return cls(number=trial.number, unit=unit, steps_run=attrs.get(steps_run(unit)), best_metrics=_best_metrics(trial),
                   inference_ms=attrs.get(INFERENCE_MS), imported=attrs.get(IMPORTED),
                   no_better_than_chance=bool(attrs.get(NO_BETTER_THAN_CHANCE)),
                   columns={k: attrs[k] for k in COLUMNS if k in attrs}, **plain)

    @property
    def failed_as_stale(self) -> bool:
        return str(self.fail_reason or "").startswith(stale_reason(0).split(" (")[0])

    @property
    def has_weights_recorded(self) -> bool:
        return self.weights_artifact is not None and self.model_artifact is not None


def _best_metrics(trial: optuna.Trial | FrozenTrial) -> dict[str, float]:
    """The valid metrics of a trial's best epoch (of its folds, their mean), from what it recorded."""
    attrs = trial.user_attrs
    if BEST_METRICS in attrs:
        return attrs[BEST_METRICS]
    history = attrs.get(EPOCH_METRICS) or []  # a study made before BEST_METRICS
    if not history:
        return {}
    if attrs.get(UNIT) == "fold":
        return {k: sum(h[k] for h in history) / len(history) for k in history[0]}
    values = getattr(trial, "intermediate_values", {})
    best = attrs.get(BEST_EPOCH) or 1 + max(range(len(history)), key=lambda i: values.get(i + 1, -1))
    return history[best - 1]


@dataclass(frozen=True)
class DataRecord:
    """The images a study runs on, by content, and how they were prepared and split."""

    source: str  # where they were (a path made absolute, or builtin:NAME)
    fingerprint: str  # of their content and labels: the same images at any path
    split_digest: str
    files: int
    images: int  # decoded; files minus those left out
    class_names: list[str]  # what the model's outputs stand for (the task's)
    counts: dict[str, dict[str, int]]  # images per label in each split
    skipped: int
    image_size: int
    resize: str
    crop: tuple[float, float, float, float] | str | None = None
    split: tuple[float, float, float] = SPLIT_FRACTIONS
    seed: int = 0
    splits_artifact: str | None = None  # splits.csv in the artifact store: path, label, split and digest per image

    @classmethod
    def read(cls, attrs: dict) -> DataRecord | None:
        """From a study's user attributes; None where no data is recorded yet (a worker may start beside the
        study's first one, which has made the study but not yet recorded its data)."""
        if DATA not in attrs:
            return None
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in attrs[DATA].items() if k in known}
        crop = data.get("crop")
        return cls(**{**data, "crop": tuple(crop) if isinstance(crop, list) else crop,
                      "split": tuple(data.get("split", SPLIT_FRACTIONS)), "splits_artifact": attrs.get(SPLITS_ARTIFACT)})

    def check(self, found: Discovery, where: str, remedy: str, store=None) -> None:
        """Refuse other images than the study's, before they are decoded, saying what differs."""
        if found.fingerprint != self.fingerprint:
            raise InputError(f"{where} ({self.difference(found, store)}): {remedy}")

    def check_split(self, split_digest: str, where: str, remedy: str) -> None:
        if split_digest != self.split_digest:
            raise InputError(f"{where} used another train/valid/test split (digest {self.split_digest}, now {split_digest}): "
                             f"{remedy}")

    def difference(self, found: Discovery, store=None) -> str:
        """What differs between the study's images (its splits.csv) and the images found now, by content."""
        counts = f"{self.files} files then, {len(found.items)} now"
        try:
            with store.open_reader(self.splits_artifact) as reader:
                then = {(row["digest"], row["label"]): row["path"] for row in csv.DictReader(io.TextIOWrapper(reader))}
        except (ArtifactNotFound, AttributeError, KeyError, TypeError):  # no store, or it stayed on another machine
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


# What a study records (its user attributes)
SPACE = "space"
DATA = "data"  # a DataRecord, but for its splits_artifact
SPLITS_ARTIFACT = "splits_artifact"
STORAGE = "storage"  # where it was made, without a password
SEARCH = "search"  # {"sampler": name, "pruner": name}: kept for good
EPOCHS_PER_TRIAL = "epochs"  # a study's epochs per trial, for `hpsearch status`: what running every trial to its end costs
TRIALS_WANTED = "trials_wanted"  # finished trials the last run asked for: for `status`, and for retries
HEARTBEAT = "heartbeat"  # seconds: for `hpsearch copy`, to tell dead workers from live ones
KEEP = "keep"  # the weights of this many best trials are kept
BEST_EVALUATION = "best_evaluation"  # {"trial", "params", "table"}: the best trial tested once on train/valid/test
METRIC = "metric"  # the valid metric its trials' values are (the first objective of several)
MEASURED = "costs_"  # + an architecture's digest: its costs, measured once for the whole study (search.study.meter)
STARTED_FROM = "started_from"  # {"study", "trial", "storage", "model", "valid"}: the model its trials start from (--from)
ENSEMBLE = "ensemble"  # {"trials", "valid", "test", "costs"}: the K best ensembled, as `hpsearch evaluate` measured it
RULED_OUT = "ruled_out"  # {model: the limit it breaks}: the models the latest run's limits kept from being drawn
LIMITS = "limits"  # {cost: its limit}: what the latest run's trials could cost at most (trainers.costs.CostLimits)
BUDGET = "time_budget"  # the latest run's --timeout: {"seconds": its length, "deadline": its end as a Unix time}; None without


@dataclass(frozen=True)
class StudyRecord:
    """A study's own record, read once. Every field is None where the study has not recorded it (yet)."""

    space: str | None = None
    data: DataRecord | None = None
    storage: str | None = None
    search: dict[str, str] | None = None
    epochs: int | None = None
    trials_wanted: int | None = None
    heartbeat: int | None = None
    keep: int | None = None
    best_evaluation: dict | None = None
    ensemble: dict | None = None
    metric: str | None = None
    started_from: dict | None = None
    ruled_out: dict[str, str] | None = None
    limits: dict[str, float] | None = None
    budget: dict[str, float] | None = None

    @classmethod
    def read(cls, study: optuna.Study | dict) -> StudyRecord:
        attrs = study if isinstance(study, dict) else study.user_attrs
        return cls(data=DataRecord.read(attrs), **{field: attrs.get(key) for key, field in _STUDY_FIELDS.items()})


# a study's attributes, by the field of StudyRecord that reads each (its data apart); those a run writes each time
_STUDY_FIELDS = {SPACE: "space", STORAGE: "storage", SEARCH: "search", EPOCHS_PER_TRIAL: "epochs", TRIALS_WANTED: "trials_wanted",
                 HEARTBEAT: "heartbeat", KEEP: "keep", BEST_EVALUATION: "best_evaluation", ENSEMBLE: "ensemble",
                 METRIC: "metric", STARTED_FROM: "started_from", RULED_OUT: "ruled_out", LIMITS: "limits", BUDGET: "budget"}
_RUN_WRITES = (SEARCH, EPOCHS_PER_TRIAL, TRIALS_WANTED, HEARTBEAT, KEEP, METRIC, RULED_OUT, LIMITS, BUDGET)


def record_run(study: optuna.Study, run: StudyRecord) -> None:
    """What each run of a study says about how it runs (those fields of `run`): the latest run's word stands."""
    for key in _RUN_WRITES:
        study.set_user_attr(key, getattr(run, _STUDY_FIELDS[key]))


def record_data(study: optuna.Study, data: DataRecord, space: str, storage: str) -> None:
    """The study's data, once: the first run that finds none recorded writes it."""
    study.set_user_attr(SPACE, space)
    study.set_user_attr(STORAGE, storage)
    study.set_user_attr(SPLITS_ARTIFACT, data.splits_artifact)
    study.set_user_attr(DATA, {k: v for k, v in asdict(data).items() if k != "splits_artifact"})  # last: it says "recorded"


def measured_costs(study: optuna.Study, architecture: str) -> dict | None:
    """An architecture's costs (trainers.costs.Costs, as stored), as the study measured them once (search.study.meter)."""
    return study.user_attrs.get(MEASURED + architecture)


def record_measured_costs(study: optuna.Study, architecture: str, costs: dict) -> None:
    study.set_user_attr(MEASURED + architecture, costs)


def record_best_evaluation(study: optuna.Study, trial: FrozenTrial, table: dict[str, dict[str, float]]) -> dict[str, Any]:
    evaluation = {"trial": trial.number, "params": trial.params, "table": table}
    study.set_user_attr(BEST_EVALUATION, evaluation)
    return evaluation
