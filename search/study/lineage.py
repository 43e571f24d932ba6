"""Where a study's trials start: an earlier study's trained model (`hpsearch run --from STUDY[:TRIAL]`), as
seed 003 built its detector in versions, each fine-tuning the last one's winner.

Every trial of the new study loads that trial's weights, with the architecture (model and head) and the
preparation (image size, resize, crop, normalisation) its card names; the space's fine-tuning search
(`Space.fine_tune`, or its own search with the model fixed) chooses the rest. The new study records its
start (record.STARTED_FROM) and keeps it: run again, it must be given the same one."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.artifacts import download_artifact
from optuna.samplers import BaseSampler, PartialFixedSampler

from search import record
from search.objectives import metric_of
from search.record import DataRecord, StudyRecord, TrialRecord
from search.storage import Location
from search.study.known import other_study
from search.study.training import Training
from search.winner.models import has_weights, top_trials
from trainers.digests import cache_root
from trainers.errors import InputError


@dataclass(frozen=True)
class Start:
    """The trained model every trial of a study starts from."""

    study: str
    trial: int
    storage: str  # where that study lives, without a password
    card: dict  # its model.json: architecture, preparation, classes
    weights: Path  # its model.safetensors, downloaded once to this machine's cache
    data: DataRecord  # the images that study was trained on, and their split
    store: object  # that study's artifact store (for saying which images differ)
    valid: float  # its valid metric: where the new trials' curves start

    @property
    def lineage(self) -> dict:
        """What the new study and each of its model cards record."""
        return {"study": self.study, "trial": self.trial, "storage": self.storage, "model": self.card["config"]["model"],
                "valid": self.valid}

    @property
    def architecture(self) -> dict:
        """The training options that make the same network: its weights fit nowhere else."""
        config = self.card["config"]
        return {"model": config["model"], "hidden": tuple(config["hidden"])}

    def space(self, space):
        """`space` as the trials of the new study see it: the card's preparation, the fine-tuning search, and
        no default configuration first (a space's default is a configuration to train from scratch)."""
        card = self.card
        crop = tuple(card["crop"]) if isinstance(card["crop"], list) else card["crop"]
        return dataclasses.replace(space, image_size=card["image_size"], resize=card["resize"], crop=crop,
                                   suggest=space.fine_tune or space.suggest, default={})

    @property
    def training(self) -> Training:
        """What every trial that starts here trains with: these weights and their architecture; ImageNet's
        normalisation where the model was trained with it (ImageNet's weights are not loaded again: its own are)."""
        return Training(pretrained=self.card["normalize"] == "imagenet", start_weights=self.weights, **self.architecture)

    def sampler(self, sampler: BaseSampler) -> BaseSampler:
        """The model parameter, where the search draws one, fixed to the earlier model's (Optuna's PartialFixedSampler)."""
        return PartialFixedSampler({"model": self.card["config"]["model"]}, sampler)


def parse_from(text: str) -> tuple[str, int | None]:
    """STUDY or STUDY:TRIAL (a study's name may hold colons: only a number after the last one is a trial)."""
    name, colon, number = text.rpartition(":")
    return (name, int(number)) if colon and name and number.isdigit() else (text, None)


def starting_model(text: str | None, where: Location, space, study_name: str, recorded: dict | None) -> Start | None:
    """--from STUDY[:TRIAL] in `where`: that trial (the best with weights by default), its card and weights;
    checked against the space and against the start study `study_name` recorded (`recorded`), before any work."""
    if recorded and not text:
        raise InputError(f"study {study_name!r} starts every trial from study {recorded['study']!r} trial {recorded['trial']}: run "
                         f"it with --from {recorded['study']}:{recorded['trial']}"
                         + (f" --from-storage {recorded['storage']}" if recorded["storage"] != where.safe else ""))
    if not text:
        return None
    name, number = parse_from(text)
    study = other_study(name, where, "--from")
    store = where.artifact_store(create=False)
    trial = _source_trial(study, store, number, text)
    start = _download(study, trial, store, where)
    if recorded and (recorded["study"], recorded["trial"]) != (start.study, start.trial):
        raise InputError(f"--from {text}: study {study_name!r} starts from study {recorded['study']!r} trial {recorded['trial']} "
                         f"and keeps it; to start from another, start a new study with --new-study NAME")
    _check_fits(start, space, text)
    return start


def _source_trial(study: optuna.Study, store, number: int | None, text: str) -> optuna.trial.FrozenTrial:
    if number is None:
        best = top_trials(study, store, 1)
        if not best:
            raise InputError(f"--from {text}: no trial of study {study.study_name!r} has its weights in the artifact "
                             f"store: start from a study run with --keep, beside its artifacts/ folder")
        return best[0]
    trial = next((t for t in record.own_trials(study) if t.number == number), None)
    if trial is None or not has_weights(store, trial):
        kept = ", ".join(str(t.number) for t in top_trials(study, store, 100)) or "none"
        raise InputError(f"--from {text}: trial {number} of study {study.study_name!r} has no stored weights; "
                         f"trials with weights: {kept}")
    return trial


def _download(study: optuna.Study, trial, store, where: Location) -> Start:
    """The trial's card, and its weights in this machine's cache (by artifact id: every worker and every run
    again reads the same file, written once)."""
    recorded = TrialRecord.read(trial)
    weights_id = recorded.weights_artifact
    folder = cache_root() / "start"
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{weights_id}.safetensors"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        card = Path(tmp) / "model.json"
        download_artifact(artifact_store=store, file_path=str(card), artifact_id=recorded.model_artifact)
        if not weights.exists():
            part = Path(tmp) / "model.safetensors"
            download_artifact(artifact_store=store, file_path=str(part), artifact_id=weights_id)
            os.replace(part, weights)  # whole or not at all, where workers fetch it together
        card = json.loads(card.read_text())
    data = StudyRecord.read(study).data
    return Start(study.study_name, trial.number, where.safe, card, weights, data, store, metric_of(trial))


def _check_fits(start: Start, space, text: str) -> None:
    """The earlier model must do this space's task, one whose search it can be fine-tuned under."""
    if start.card["task"] != space.task:
        raise InputError(f"--from {text}: its model does the task {start.card['task']!r}, space {space.name!r} the task "
                         f"{space.task!r}: start from a study of this task")
    if space.task == "ovr":
        raise InputError(f"--from {text}: a one-vs-rest model is one model per class and fold; --from fine-tunes one model")
    if start.data is None:
        raise InputError(f"--from {text}: study {start.study!r} recorded no data: it cannot be checked against these images")
    model, choices = start.card["config"]["model"], space.model_choices()
    if space.fine_tune is None and choices and model not in choices:
        raise InputError(f"--from {text}: its model {model!r} is not one space {space.name!r} chooses "
                         f"({', '.join(choices)}): start from a study of this space")
