"""The train/valid/test table of a study's best model, and of an ensemble of its best trials beside it, on
the study's own split of its own images."""

from __future__ import annotations

import optuna
import torch

from search.review.report import format_table
from trainers.data import DataError
from trainers.loop import TrainData
from trainers.predict import Ensemble
from trainers.prepare import prepare, to_device

SPLITS = ("train", "valid", "test")


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
            raise DataError(f"a model of {predictor.card['image_size']} px images cannot be tested on {data.images.shape[-1]} px ones")
    return {s: ensemble.task.metrics(outputs(ensemble, data, s), data.targets[data.splits[s]].cpu()) for s in SPLITS}


def study_data(study: optuna.Study, ensemble: Ensemble, device: torch.device, source: str | None = None) -> TrainData:
    """The study's images and split as its trials trained on them, from the data it recorded (or `source`)."""
    recorded = study.user_attrs["data"]
    crop = recorded.get("crop")
    prepared = prepare(source or recorded["source"], recorded["image_size"], recorded["resize"],
                       tuple(recorded.get("split", (0.6, 0.2, 0.2))), recorded.get("seed", 0), progress=False,
                       crop=tuple(crop) if isinstance(crop, list) else crop)
    if (prepared.fingerprint, prepared.split_digest) != (recorded["fingerprint"], recorded["split_digest"]):
        raise DataError(f"{source or recorded['source']} does not hold the images and split of study {study.study_name!r}: "
                        f"pass --data the folder or manifest it ran on")
    return to_device(prepared, ensemble.task, device)


def compare(best: Ensemble, ensemble: Ensemble, data: TrainData, trials: list[int]) -> str:
    """The ensemble's table beside the best trial's, and what it changes on the test split."""
    single, several = table(best, data), table(ensemble, data)
    metric = next(k for k in several["test"] if k != "loss")
    lines = [f"best trial {trials[0]} alone:", format_table(single), "",
             f"ensemble of trials {', '.join(map(str, trials))}:", format_table(several), ""]
    change = several["test"][metric] - single["test"][metric]
    lines.append(f"test {metric}: {single['test'][metric]:.4f} alone, {several['test'][metric]:.4f} ensembled ({change:+.4f})")
    return "\n".join(lines)
