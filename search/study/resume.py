"""Crash-safe trials: an epoch checkpoint per trial in the artifact store, retries of trials whose
worker died or was interrupted, and never more than the wanted number of trials when several
workers share a study.
"""

from __future__ import annotations

import copy
import io
import re
import signal
import time
from contextlib import contextmanager

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from search.experimental import experimental
from search.record import FAILED_TRIAL, StudyRecord, TrialRecord, own_trials

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
COUNTED = (*FINISHED, TrialState.RUNNING, TrialState.WAITING)  # every trial but the failed ones


class UnreadableCheckpoint(Exception):
    """A checkpoint file that exists but cannot be loaded; the message says why."""


def system_attrs(trial: optuna.Trial | FrozenTrial) -> dict:
    """A trial's system attributes. Optuna 5's Trial no longer shows them; its storage does, by the trial's
    id, which only its private _trial_id gives."""
    return trial.storage.get_trial_system_attrs(trial._trial_id) if isinstance(trial, optuna.Trial) else trial.system_attrs


def first_attempt(trial: optuna.Trial | FrozenTrial) -> int:
    """The number of the trial that a retry retries (Optuna's `failed_trial`), or the trial's own."""
    return system_attrs(trial).get(FAILED_TRIAL, trial.number)


def checkpoint_id(study_name: str, trial: optuna.Trial | FrozenTrial) -> str:
    """One checkpoint per trial and its retries, named after the first attempt."""
    return f"checkpoint-{re.sub(r'[^A-Za-z0-9_.-]', '_', study_name)}-trial{first_attempt(trial)}.pt"


def save_checkpoint(store, artifact_id: str, state: dict) -> None:
    import torch  # here, not above: workers that only count trials need not load it

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    with signals_deferred():
        store.write(artifact_id, buffer)


@contextmanager
def signals_deferred():
    """Ctrl-C and SIGTERM wait until the block ends. An artifact store writes in place: stopped halfway, a
    checkpoint was left unreadable and its trial's retry started from epoch 1 (a SIGTERM test, 1 run in 2
    with a checkpoint after every epoch). Called from the main thread, where signals are handled."""
    caught = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            signal.raise_signal(caught[0])  # the handler it would have met, now


def every(seconds: float, save):
    """`save` for a state at most once per `seconds` of training: a checkpoint is written only when the work it
    keeps is worth its cost. (ResNet50's, with Adam's state, is 270 MB and takes 2 s to write: every epoch on a
    GPU, where an epoch of small images takes under one, it would have cost more than the training.)"""
    last = time.monotonic()

    def maybe(state: dict) -> None:
        nonlocal last
        if time.monotonic() - last >= seconds:
            save(state)
            last = time.monotonic()

    return maybe


def load_checkpoint(store, artifact_id: str) -> dict | None:
    """The state after the last finished epoch, or None where there is no checkpoint."""
    import torch

    try:
        with store.open_reader(artifact_id) as reader:
            return torch.load(io.BytesIO(reader.read()), map_location="cpu", weights_only=True)
    except ArtifactNotFound:
        return None
    except Exception as err:  # cut short by a crash, or damaged: whatever torch.load raises for it
        raise UnreadableCheckpoint(f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}") from err


def remove_checkpoint(store, artifact_id: str) -> None:
    try:
        store.remove(artifact_id)
    except ArtifactNotFound:
        pass


def remove_finished_checkpoints(store):
    """An optimize callback, so it runs only once the trial's end is stored: a trial that was recorded as
    finished (or failed for good) needs its checkpoint no more. An interrupted trial, or one whose worker
    lost the storage, never gets here and keeps its checkpoint for its retry."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        remove_checkpoint(store, checkpoint_id(study.study_name, trial))

    return callback


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial again with the same parameters, unless the study already has its trials.

    Optuna's callback for heartbeat-stale trials; also called for an interrupted trial. The retry starts
    with no user attributes of its own: those of the failed attempt (its reason, its epochs) stay there."""
    wanted = StudyRecord.read(study).trials_wanted
    if wanted is None or len(own_trials(study, FINISHED)) < wanted:
        fresh = copy.deepcopy(trial)
        fresh.user_attrs = {}
        with experimental():
            RetryHeartbeatStaleTrialCallback()(study, fresh)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the running trials whose worker stopped sending heartbeats; `retry` queues them again."""
    with experimental():
        optuna.storages.fail_stale_trials(study)


def taken_over(study: optuna.Study, number: int) -> bool:
    """Whether trial `number` was failed as stale by another worker (which queued its retry)."""
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    return trial.state == TrialState.FAIL and TrialRecord.read(trial).failed_as_stale


def is_surplus(trial: optuna.Trial, wanted: int) -> bool:
    """Workers that start trials at the same moment may start more than wanted: the trials beyond the
    first `wanted` that are not failed (by number) are surplus."""
    if trial.number < wanted:  # fewer than `wanted` trials of any state are ahead of it
        return False
    ahead = own_trials(trial.study, COUNTED)
    return sum(t.number < trial.number for t in ahead) >= wanted


def stop_when_enough(wanted: int):
    """After each trial: stop this worker once finished and running trials make `wanted`."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        if len(own_trials(study, (*FINISHED, TrialState.RUNNING))) >= wanted:
            study.stop()

    return callback
