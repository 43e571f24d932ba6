"""The train/valid/test table of a study's best model, and of an ensemble of its best trials beside it, on
the study's own split of its own images: once when a run ends (`evaluate_best`), and on demand (`hpsearch
evaluate`)."""

from __future__ import annotations

import dataclasses
import json

import optuna
import torch
from optuna.trial import FrozenTrial
from tqdm.auto import tqdm

from search.objectives import best_trial, ensemble_costs
from search.record import ENSEMBLE, StudyRecord, TrialRecord, record_best_evaluation
from search.review.front import metric_name
from search.review.report import format_table
from search.winner.models import best_models, load_predictor, top_trials
from search.winner.options import EvaluateOptions
from trainers.data import discover
from trainers.errors import InputError
from trainers.loop import TrainData, pick_device
from trainers.predict import Ensemble
from trainers.prepare import Splitting, prepare, resolve_source, to_device

SPLITS = ("train", "valid", "test")
DEFAULT_K = 5  # the best trials `hpsearch evaluate` ensembles by default


def outputs(ensemble: Ensemble, data: TrainData, split: str) -> torch.Tensor:
    """The ensemble's outputs on a split, as its task's metrics take them: one model's own; several models'
    probabilities averaged. The data must be prepared as the models' training images were."""
    images = data.pixels(data.splits[split])
    if len(ensemble.predictors) == 1:
        return ensemble.predictors[0](images)
    mean = sum(p.task.probabilities(p(images)) for p in ensemble.predictors) / len(ensemble.predictors)
    return ensemble.task.logits(mean)


def table(ensemble: Ensemble, data: TrainData) -> dict[str, dict[str, float]]:
    for predictor in ensemble.predictors:
        if predictor.card["image_size"] != data.images.shape[-1]:
            raise InputError(f"a model of {predictor.card['image_size']} px images cannot be tested on {data.images.shape[-1]} px ones")
    return {s: ensemble.task.metrics(outputs(ensemble, data, s), data.targets[data.splits[s]].cpu()) for s in SPLITS}


def study_data(study: optuna.Study, ensemble: Ensemble, device: torch.device, source: str | None = None) -> TrainData:
    """The study's images and split as its trials trained on them, from the data it recorded (or `source`)."""
    recorded = StudyRecord.read(study).data
    source = source or recorded.source
    where, remedy = f"{source} does not hold the images of study {study.study_name!r}", "pass --data the folder or manifest it ran on"
    found = discover(resolve_source(source))
    recorded.check(found, where, remedy)
    prepared = prepare(found, recorded.image_size, recorded.resize, crop=recorded.crop,
                       splitting=Splitting(recorded.split, recorded.seed), progress=False)
    recorded.check_split(prepared.split_digest, where, remedy)
    return to_device(prepared, ensemble.task, device)


def compare(single: dict, several: dict, trials: list[int], metric: str) -> str:
    """The ensemble's table beside the best trial's, and what it changes on the test split."""
    lines = [f"best trial {trials[0]} alone:", format_table(single), "",
             f"ensemble of trials {', '.join(map(str, trials))}:", format_table(several), ""]
    change = several["test"][metric] - single["test"][metric]
    lines.append(f"test {metric}: {single['test'][metric]:.4f} alone, {several['test'][metric]:.4f} ensembled ({change:+.4f})")
    return "\n".join(lines)


def record_ensemble(study: optuna.Study, trials: list[FrozenTrial], several: dict, metric: str) -> None:
    """The ensemble as a candidate beside the trials (search.objectives.ensemble_candidate): its members, its
    valid and test metrics, and its costs, where every member recorded its own."""
    if all(TrialRecord.read(t).costs for t in trials):
        study.set_user_attr(ENSEMBLE, {"trials": [t.number for t in trials], "metric": metric, "valid": several["valid"],
                                       "test": several["test"], "costs": ensemble_costs(trials)})


def run_evaluate(options: EvaluateOptions) -> str:
    """`hpsearch evaluate`: the K best trials' ensemble beside the best trial, or one chosen trial's table (by
    number, or the one a --pick rule chooses), on the study's own split."""
    device = pick_device(options.device)
    chosen = options.trial is not None or options.pick
    k = options.ensemble or (1 if chosen else DEFAULT_K)
    study, trials, ensemble = best_models(dataclasses.replace(options, ensemble=k), device)
    data = study_data(study, ensemble, device, options.data)
    if chosen:  # one trial, or the ensemble a --pick rule chose
        return f"trial {'+'.join(str(t.number) for t in trials)}:\n{format_table(table(ensemble, data))}"
    single, several, metric = table(Ensemble(ensemble.predictors[:1]), data), table(ensemble, data), metric_name(study)
    if metric not in several["valid"]:  # a study that recorded no metric, of a space no longer found
        metric = next(k for k in several["valid"] if k != "loss")
    if len(trials) > 1:
        record_ensemble(study, trials, several, metric)
    return compare(single, several, [t.number for t in trials], metric)


def evaluate_best(study: optuna.Study, data: TrainData, store) -> dict | None:
    """When a run ends: the best trial's stored model on train, valid and test; stored on the study and printed."""
    best = best_trial(study)
    if best is None:
        tqdm.write("no trial completed: nothing to test")
        return None
    if best.number not in [t.number for t in top_trials(study, store, 1)]:
        tqdm.write(f"trial {best.number} is the best but has no stored weights: cannot test it")
        return None
    evaluation = record_best_evaluation(study, best, table(Ensemble([load_predictor(store, best, data.device)]), data))
    tqdm.write(f"\nbest trial {best.number}: " + json.dumps(best.params))
    tqdm.write(format_table(evaluation["table"]))
    return evaluation
