"""`hpsearch copy`: a study to another storage with its trials, notes and artifact files, ready to resume."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.artifacts import get_all_artifact_meta
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import Trial, TrialState
from optuna_dashboard import get_note, save_note

from search.study.resume import checkpoint_id, fail_stale_trials
from search.storage import artifact_store, default_artifacts_dir, open_storage, safe_url
from trainers.data import DataError


def copy_study(from_url: str, to_url: str, name: str, from_folder: Path | None, to_folder: Path | None) -> str:
    heartbeat = optuna.load_study(study_name=name, storage=open_storage(from_url)).user_attrs.get("heartbeat")
    storage = open_storage(from_url, heartbeat=heartbeat)
    source = optuna.load_study(study_name=name, storage=storage)
    fail_stale_trials(source)  # a dead worker's trial: failed and queued again first
    running = source.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if running:
        raise DataError(f"study {name!r} has {len(running)} running trial(s) in {safe_url(from_url)}: stop its workers, "
                        f"or wait until their trials end, then copy it")
    target_storage = open_storage(to_url)
    if name in optuna.get_all_study_names(target_storage):
        raise DataError(f"{safe_url(to_url)} already holds a study {name!r}: copy into another storage, or delete it there")
    optuna.copy_study(from_study_name=name, from_storage=storage, to_storage=target_storage)
    target = optuna.load_study(study_name=name, storage=target_storage)
    notes = _copy_notes(source, target)
    from_store, to_store = artifact_store(from_url, from_folder), artifact_store(to_url, to_folder)
    same = default_or(from_url, from_folder).resolve() == default_or(to_url, to_folder).resolve()
    files = 0 if same else _copy_files(source, storage, from_store, to_store)
    return (f"copied study {name!r} ({len(target.trials)} trials, {notes} notes, {files} artifact files) "
            f"from {safe_url(from_url)} to {safe_url(to_url)}")


def _copy_notes(source: optuna.Study, target: optuna.Study) -> int:
    """optuna-dashboard keys trial notes by trial id, which differs in the new storage."""
    copied = 0
    pairs = [(source, target)] + [
        (Trial(source, a._trial_id), Trial(target, b._trial_id)) for a, b in zip(source.trials, target.trials)
    ]
    for old, new in pairs:
        body = get_note(old)
        if body:
            save_note(new, body)
            copied += 1
    return copied


def default_or(url: str, folder: Path | None) -> Path:
    return Path(folder) if folder else default_artifacts_dir(url)


def _copy_files(source: optuna.Study, storage, from_store, to_store) -> int:
    """Every file a trial or the study uploaded, and the checkpoints of trials waiting for a retry."""
    ids = {meta.artifact_id for meta in get_all_artifact_meta(source)}
    for trial in source.trials:
        ids |= {meta.artifact_id for meta in get_all_artifact_meta(trial, storage=storage)}
        if trial.state == TrialState.WAITING:
            ids.add(checkpoint_id(source.study_name, trial))
    copied = 0
    for artifact_id in sorted(ids):
        try:
            with from_store.open_reader(artifact_id) as reader:
                to_store.write(artifact_id, reader)
            copied += 1
        except ArtifactNotFound:
            pass
    return copied

