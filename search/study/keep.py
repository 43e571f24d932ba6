"""The weights a study keeps: those of its K best completed trials (`hpsearch run --keep K`), so that disk
holds K models however many trials run. A trial stores its weights when it ends among the K best of the
trials completed so far; after each trial, the weights of completed trials outside the K best are removed
(their card, pictures and note stay).

Safe with any number of workers, trials ending at the same moment included: a trial outside the K best of
the trials completed at some moment stays outside them for good, since those K never leave and later
trials only add competitors. And a trial among the final K best was among the K best when it ended, so it
stored its weights."""

from __future__ import annotations

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from search.record import WEIGHTS_ARTIFACT
from search.winner.models import has_weights, ranked

KEEP = 5  # the default K


def among_best(study: optuna.Study, value: float, keep: int) -> bool:
    """Whether a trial that ends now with `value` is among the `keep` best completed trials (it counts as the latest)."""
    return sum(t.value >= value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < keep


def drop_weights_outside_best(store, keep: int):
    """An optimize callback: remove the weights of completed trials outside the `keep` best."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        for outside in ranked(study)[keep:]:
            if has_weights(store, outside):
                try:
                    store.remove(outside.user_attrs[WEIGHTS_ARTIFACT])
                except ArtifactNotFound:  # another worker removed it a moment ago
                    pass

    return callback
