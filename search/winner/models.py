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
from search.record import ENSEMBLE, MODEL_ARTIFACT, WEIGHTS_ARTIFACT
from search.storage import Location, load_study
from search.winner.pick import pick
from trainers.errors import InputError


def has_weights(store, trial: FrozenTrial) -> bool:
    """Whether the trial's weights are in the store: kept for the best trials only (`hpsearch run --keep`)."""
    if WEIGHTS_ARTIFACT not in trial.user_attrs or MODEL_ARTIFACT not in trial.user_attrs:
        return False
    try:
        store.open_reader(trial.user_attrs[WEIGHTS_ARTIFACT]).close()
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

    with tempfile.TemporaryDirectory() as tmp:
        card, weights = Path(tmp) / "model.json", Path(tmp) / "model.safetensors"
        for path, key in ((card, MODEL_ARTIFACT), (weights, WEIGHTS_ARTIFACT)):
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=trial.user_attrs[key])
        return Predictor.load(json.loads(card.read_text()), weights, device)


def best_models(where: Location, study_name: str | None, k: int, device, trial: int | None = None, storage=None,
                pick_rule: str | None = None):
    """A study's k best trials with weights (or trial number `trial`, or the one `pick_rule` chooses: see
    search.winner.pick) and their models, as one Ensemble; from `storage` where the caller opened it already."""
    from trainers.predict import Ensemble

    if k > 1 and (trial is not None or pick_rule):
        raise InputError("--ensemble with --trial or --pick: use one chosen trial, or the K best ensembled")
    study = load_study(where, study_name, storage=storage)
    store = where.artifact_store(create=False)
    if pick_rule:
        kept = [t for t in ranked(study) if has_weights(store, t)]
        ensemble = ensemble_candidate(study)  # a candidate too, while its members keep their weights
        members = ensemble.user_attrs[ENSEMBLE] if ensemble else []
        candidates = kept + ([ensemble] if members and set(members) <= {t.number for t in kept} else [])
        picked = pick(candidates, pick_rule)
        if ENSEMBLE in picked.user_attrs:
            chosen = [next(t for t in kept if t.number == n) for n in picked.user_attrs[ENSEMBLE]]
            return study, chosen, Ensemble([load_predictor(store, t, device) for t in chosen])
        trial = picked.number
    if trial is not None:
        chosen = [t for t in study.get_trials(deepcopy=False) if t.number == trial and has_weights(store, t)]
        if not chosen:
            kept = ", ".join(str(t.number) for t in top_trials(study, store, 100)) or "none"
            raise InputError(f"trial {trial} of study {study.study_name!r} has no stored weights; trials with weights: {kept}")
    else:
        chosen = top_trials(study, store, k)
        if not chosen:
            raise InputError(f"no trial of study {study.study_name!r} has its weights in {where.artifacts}: "
                            f"pass --artifacts where the artifact store is")
    return study, chosen, Ensemble([load_predictor(store, t, device) for t in chosen])
