"""`hpsearch copy`: a study to another storage with its trials, notes and artifact files, ready to resume."""

from __future__ import annotations

import optuna
from optuna.artifacts import get_all_artifact_meta
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import Trial, TrialState
from optuna_dashboard import get_note, save_note

from search.record import StudyRecord
from search.storage import Location, load_study, set_heartbeat
from search.study.resume import checkpoint_id, fail_stale_trials, retry
from trainers.errors import InputError


def copy_study(origin: Location, destination: Location, name: str | None) -> str:
    origin.require_database()
    destination.check_folder()
    storage = origin.open()
    source = load_study(origin, name, need_complete=False, storage=storage)
    heartbeat = StudyRecord.read(source).heartbeat
    if heartbeat:  # a dead worker's trial: failed and queued again first, as its study's workers would
        set_heartbeat(storage.rdb, heartbeat, retry)
        fail_stale_trials(source)
    running = source.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if running:
        raise InputError(f"study {source.study_name!r} has {len(running)} running trial(s) in {origin.safe}: stop its "
                         f"workers, or wait until their trials end, then copy it")
    target_storage = destination.open()
    if source.study_name in optuna.get_all_study_names(target_storage):
        raise InputError(f"{destination.safe} already holds a study {source.study_name!r}: copy into another storage, "
                         f"or delete it there")
    optuna.copy_study(from_study_name=source.study_name, from_storage=storage, to_storage=target_storage)
    target = optuna.load_study(study_name=source.study_name, storage=target_storage)
    notes = _copy_notes(source, target)
    same = origin.artifacts.resolve() == destination.artifacts.resolve()
    files = 0 if same else _copy_files(source, storage, origin.artifact_store(), destination.artifact_store())
    return (f"copied study {source.study_name!r} ({len(target.trials)} trials, {notes} notes, {files} artifact files) "
            f"from {origin.safe} to {destination.safe}")


def _copy_notes(source: optuna.Study, target: optuna.Study) -> int:
    """optuna-dashboard keys trial notes by trial id, which differs in the new storage. (A note is read and
    written through a Trial, which only the private _trial_id of a frozen trial can make.)"""
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

