"""How a study draws its trials' parameters."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna
from optuna.samplers import BaseSampler

SEED_ATTR = "sampler_seed"  # a trial's system attribute: the seed its parameters were drawn with


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` in a study run with --seed `seed`."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def tpe(seed: int) -> BaseSampler:
    # constant_liar: a trial another worker is running counts as a poor one, so that workers do not
    # crowd one promising region; with one worker nothing else runs, and it changes nothing
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, constant_liar=True)


class SeededByTrial(BaseSampler):
    """Draws trial N's parameters with a sampler seeded from (--seed, N), made anew for each trial.

    The storage hands out each trial number once, so processes that start together on one study, on one
    machine or on many, draw from streams of their own; one process alone draws the same trials from the
    same data every time. (With each process seeded by --seed plus the trials so far, four processes
    started together ran 12 trials with 6 distinct parameter sets.) Each trial keeps its seed as the
    system attribute `sampler_seed`."""

    def __init__(self, seed: int, make: Callable[[int], BaseSampler] = tpe):
        self._seed, self._make = seed, make
        self._sampler = make(seed)

    def before_trial(self, study: optuna.Study, trial) -> None:
        seed = trial_seed(self._seed, trial.number)
        self._sampler = self._make(seed)
        study._storage.set_trial_system_attr(trial._trial_id, SEED_ATTR, seed)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()
