"""Crash-safe trials: an epoch checkpoint per trial in the artifact store, retries of trials whose
worker died or was interrupted, and never more than the wanted number of trials when several
workers share a study.
"""

from __future__ import annotations

import io
import re
import warnings

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
COUNTED = (*FINISHED, TrialState.RUNNING, TrialState.WAITING)  # every trial but the failed ones


def checkpoint_id(trial: optuna.Trial) -> str:
    """A retried trial inherits its first attempt's user attributes, so it finds the same checkpoint."""
    if "checkpoint" not in trial.user_attrs:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", trial.study.study_name)
        trial.set_user_attr("checkpoint", f"checkpoint-{name}-trial{trial.number}.pt")
    return trial.user_attrs["checkpoint"]


def save_checkpoint(store, artifact_id: str, state: dict) -> None:
    import torch  # here, not above: workers that only count trials need not load it

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    store.write(artifact_id, buffer)


def load_checkpoint(store, artifact_id: str) -> dict | None:
    """The state after the last finished epoch, or None: no checkpoint, or one cut short by a crash."""
    import torch

    try:
        with store.open_reader(artifact_id) as reader:
            return torch.load(io.BytesIO(reader.read()), map_location="cpu", weights_only=True)
    except (ArtifactNotFound, RuntimeError, EOFError, ValueError):
        return None


def remove_checkpoint(store, artifact_id: str) -> None:
    try:
        store.remove(artifact_id)
    except ArtifactNotFound:
        pass


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial again with the same parameters, unless the study already has its trials.

    Optuna's callback for heartbeat-stale trials; also called for an interrupted trial."""
    wanted = study.user_attrs.get("trials_wanted")
    if wanted is None or len(study.get_trials(deepcopy=False, states=FINISHED)) < wanted:
        RetryHeartbeatStaleTrialCallback()(study, trial)


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the running trials whose worker stopped sending heartbeats; `retry` queues them again."""
    with warnings.catch_warnings():  # Optuna marks it experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def is_surplus(trial: optuna.Trial, wanted: int) -> bool:
    """Workers that start trials at the same moment may start more than wanted: the trials beyond the
    first `wanted` that are not failed (by number) are surplus."""
    if trial.number < wanted:  # fewer than `wanted` trials of any state are ahead of it
        return False
    ahead = trial.study.get_trials(deepcopy=False, states=COUNTED)
    return sum(t.number < trial.number for t in ahead) >= wanted


def stop_when_enough(wanted: int):
    """After each trial: stop this worker once finished and running trials make `wanted`."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        if len(study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))) >= wanted:
            study.stop()

    return callback
