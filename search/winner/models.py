"""The one place that turns a study into models: its K best completed trials that still have their weights,
each rebuilt from its card (model.json) and weights (model.safetensors) in the artifact store."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import optuna
from optuna.artifacts import download_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from search.objectives import ensemble_candidate, ranked
from search.record import TrialRecord
from search.storage import load_study
from search.winner.options import ModelChoice
from search.winner.pick import pick
from trainers.errors import InputError


def has_weights(store, trial: FrozenTrial) -> bool:
    """Whether the trial's weights are in the store: kept for the best trials only (`hpsearch run --keep`)."""
    recorded = TrialRecord.read(trial)
    if not recorded.has_weights_recorded:
        return False
    try:
        store.open_reader(recorded.weights_artifact).close()
        return True
    except ArtifactNotFound:
        return False


def top_trials(study: optuna.Study, store, k: int) -> list[FrozenTrial]:
    """The k best completed trials that have their weights, best first."""
    return [t for t in ranked(study) if has_weights(store, t)][:k]


def load_predictor(store, trial: FrozenTrial, device):
    """The trial's model, a trainers.predict.Predictor (torch is imported here, not before: `hpsearch status`
    and the rest need not wait for it)."""
    from trainers.predict import Predictor

    recorded = TrialRecord.read(trial)
    with tempfile.TemporaryDirectory() as tmp:
        card, weights = Path(tmp) / "model.json", Path(tmp) / "model.safetensors"
        for path, artifact in ((card, recorded.model_artifact), (weights, recorded.weights_artifact)):
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact)
        return Predictor.load(json.loads(card.read_text()), weights, device)


def best_models(choice: ModelChoice, device, storage=None):
    """The study `choice` names, the trials it chooses (the K best with weights, trial number N, or those a
    --pick rule chooses: search.winner.pick) and their models, as one Ensemble; from `storage` where the caller
    opened it already."""
    from trainers.predict import Ensemble

    where, k = choice.location, choice.ensemble or 1
    if k > 1 and (choice.trial is not None or choice.pick):
        raise InputError("--ensemble with --trial or --pick: use one chosen trial, or the K best ensembled")
    study = load_study(where, choice.study, storage=storage)
    store = where.artifact_store(create=False)
    if choice.pick:
        chosen = _picked(study, store, choice.pick)
    elif choice.trial is not None:
        chosen = [t for t in study.get_trials(deepcopy=False) if t.number == choice.trial and has_weights(store, t)]
        if not chosen:
            kept = ", ".join(str(t.number) for t in top_trials(study, store, 100)) or "none"
            raise InputError(f"trial {choice.trial} of study {study.study_name!r} has no stored weights; trials with "
                             f"weights: {kept}")
    else:
        chosen = top_trials(study, store, k)
        if not chosen:
            raise InputError(f"no trial of study {study.study_name!r} has its weights in {where.artifacts}: "
                             f"pass --artifacts where the artifact store is")
    return study, chosen, Ensemble([load_predictor(store, t, device) for t in chosen])


def _picked(study: optuna.Study, store, rule: str) -> list[FrozenTrial]:
    """The trial a --pick rule chooses among those with weights, or the members of the ensemble it chooses (a
    candidate too, while its members keep their weights)."""
    kept = [t for t in ranked(study) if has_weights(store, t)]
    ensemble = ensemble_candidate(study)
    members = TrialRecord.read(ensemble).ensemble if ensemble else []
    candidates = kept + ([ensemble] if members and set(members) <= {t.number for t in kept} else [])
    picked = pick(candidates, rule)
    numbers = TrialRecord.read(picked).ensemble or [picked.number]
    return [next(t for t in kept if t.number == n) for n in numbers]
