"""The weights a study keeps: those of its K best completed trials (`hpsearch run --keep K`) and of its front
(search.objectives: the trials no other beats on the metric, latency and size at once), so that disk holds
K models and the front however many trials run. A trial stores its weights when it ends among the K best of
the trials completed so far or on their front; after each trial, the weights of completed trials outside
both are removed (their card, pictures and note stay).

Safe with any number of workers, trials ending at the same moment included: a trial outside the K best of
the trials completed at some moment stays outside them for good, since those K never leave and later
trials only add competitors; a trial beaten by another is beaten for good, for the same reason. And a trial
among the final K best or on the final front was so when it ended, so it stored its weights."""

from __future__ import annotations

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from search.objectives import front_trials, metric_of, on_front, ranked
from search.record import TrialRecord, trained_trials
from search.winner.models import has_weights


def keeps_weights(study: optuna.Study, value: float, costs: dict | None, metrics: dict, keep: int) -> bool:
    """Whether a trial that ends now with `value` (its costs and best metrics) is among the `keep` best completed
    trials (it counts as the latest) or on their front."""
    done = trained_trials(study)
    return sum(metric_of(t) >= value for t in done) < keep or (costs is not None and on_front(study, value, costs, metrics))


def drop_weights_outside_best(store, keep: int):
    """An optimize callback: remove the weights of completed trials outside the `keep` best and the front."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        front = {t.number for t in front_trials(study)}
        for outside in ranked(study)[keep:]:
            if outside.number not in front and has_weights(store, outside):
                try:
                    store.remove(TrialRecord.read(outside).weights_artifact)
                except ArtifactNotFound:  # another worker removed it a moment ago
                    pass

    return callback
