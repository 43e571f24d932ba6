"""How a study searches: the sampler that draws each trial's parameters and the pruner that stops hopeless
trials, by name (`hpsearch run --sampler tpe-per-second|tpe|random|gp --pruner patient|median|halving|hyperband|none`).

Trial N's parameters are drawn with a sampler made for it and seeded from (--seed, N): the storage hands
out each trial number once, so processes that start together on one study, on one machine or on many,
draw different points, and one process alone draws the same trials from the same data every time. (With
each process seeded by --seed plus the trials so far, four processes started together ran 12 trials
with 6 distinct parameter sets.) Each trial keeps its seed as the system attribute `sampler_seed`.

The first START trials of a model-based sampler (tpe, gp) are spread over the space rather than drawn at
random: each parameter's range is cut into START equal strata and each of those trials takes a different
one, in an order seeded by (--seed, parameter) (Latin hypercube sampling). Random search's first trials
would otherwise be exactly TPE's start-up trials.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import TrialState

from search.experimental import experimental
from search.record import SAMPLER_SEED
from search.study.registry import PRUNERS, SAMPLERS

# start-up trials of a model-based sampler (tpe, gp), spread over the space; why 5 and not Optuna's 10: the
# README's "How a study searches" (benchmarks/search_quality.py on the recorded curves)
START = 5


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` in a study run with --seed `seed`."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


Seconds = Callable[[dict], float]  # a configuration's parameters -> the seconds it is expected to train


@SAMPLERS.register
def tpe(seed: int, seconds: Seconds | None = None) -> BaseSampler:
    # multivariate: the parameters' joint density (a good lr depends on the model and the batch size); it
    # beat univariate TPE on the recorded curves (README, "How a study searches"). group: the spaces whose
    # parameters depend on others' choices (drillbit's hidden widths) are split by them. constant_liar: a
    # trial another worker is running counts as a poor one, so that workers do not crowd one promising
    # region; with one worker nothing else runs, and it changes nothing
    with experimental():
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=START, multivariate=True, group=True, constant_liar=True)


def tpe_per_second(seed: int, seconds: Seconds | None = None) -> BaseSampler:
    """TPE as above, whose candidates are ranked by their expected improvement per expected second (PerSecondTPE);
    without an estimate of the seconds (a replay without them), plain TPE."""
    if seconds is None:
        return tpe(seed)
    with experimental():
        return PerSecondTPE(seconds, seed=seed, n_startup_trials=START, multivariate=True, group=True, constant_liar=True)


SAMPLERS.register(tpe_per_second, "tpe-per-second")


@SAMPLERS.register
def gp(seed: int, seconds: Seconds | None = None) -> BaseSampler:
    with experimental():
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=START)


@SAMPLERS.register
def random(seed: int, seconds: Seconds | None = None) -> BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


SPREAD_START = ("tpe", "tpe-per-second", "gp")  # the samplers whose start-up trials are spread over the space (not random search)
COST_AWARE = ("tpe-per-second",)  # the samplers that weigh what a configuration costs, its start-up trials too
REDRAWS = 10  # draws of a model-based sampler before a parameter's ruled-out choice is replaced

# Pruners take the epochs per trial and the space's options. The first rungs come late enough that a
# configuration which learns slowly at first is not stopped before it shows what it can do (see each space
# and the README's "How a study searches" for the measurements).


@PRUNERS.register
def none(epochs: int, **options) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


@PRUNERS.register
def median(epochs: int, **options) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(**{"n_startup_trials": 5, "n_warmup_steps": max(1, epochs // 3), **options})


@PRUNERS.register
def halving(epochs: int, **options) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(**{"min_resource": max(1, epochs // 3), "reduction_factor": 3, **options})


@PRUNERS.register
def hyperband(epochs: int, **options) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(
        **{"min_resource": max(1, epochs // 3), "max_resource": epochs, "reduction_factor": 3, **options})


@PRUNERS.register
def patient(epochs: int, patience: int = 2, **options) -> optuna.pruners.BasePruner:
    """The median pruner's verdict, acted on only once a trial has not improved for `patience` epochs: on the
    recorded curves every other pruner stopped the eventual best configuration in some searches."""
    return optuna.pruners.PatientPruner(median(epochs, **options), patience=patience)


@PRUNERS.register
def wilcoxon(epochs: int, **options) -> optuna.pruners.BasePruner:
    return optuna.pruners.WilcoxonPruner(**{"p_threshold": 0.1, "n_startup_steps": 5, **options})


def make_pruner(name: str, epochs: int, options: dict | None = None) -> optuna.pruners.BasePruner:
    with experimental():
        return PRUNERS.get(name)(epochs, **(options or {}))


def make_sampler(name: str, seed: int, ruled_out: dict[str, set] | None = None, seconds: Seconds | None = None) -> BaseSampler:
    """`seconds`: what a configuration is expected to take (search.study.expected), for the samplers that weigh it."""
    maker = SAMPLERS.get(name)
    frugal = seconds if name in COST_AWARE else None
    return SeededByTrial(seed, lambda s: maker(s, seconds), START if name in SPREAD_START else 0, ruled_out, frugal)


def prune_now(trial: optuna.Trial, step: int, last: int) -> bool:
    """The pruner's verdict after `step` of `last`, never at the last step: its cost is paid by then.
    (The median pruner stopped 8 digits trials at their last epoch.)"""
    return step < last and trial.should_prune()


class SeededByTrial(BaseSampler):
    """Trial N's parameters from a sampler made for it, seeded from (seed, N); the first `start` trials
    spread over the space (see the module's docstring). The choices in `ruled_out` (by parameter name) are
    never drawn. A parameter left with one choice is fixed to it (as Optuna's PartialFixedSampler fixes one);
    with several, the start-up trials spread over them, and a model-based draw that names a ruled-out one is
    drawn again (REDRAWS times at most, then the parameter is drawn alone, and at last taken at random).
    search.study.feasible rules out the models that cannot meet a study's cost limits."""

    def __init__(self, seed: int, make: Callable[[int], BaseSampler] = tpe, start: int = START,
                 ruled_out: dict[str, set] | None = None, seconds: Seconds | None = None):
        self._seed, self._make, self._start, self._ruled_out = seed, make, start, ruled_out or {}
        self._seconds = seconds
        self._sampler, self._number = make(seed), -1

    def before_trial(self, study: optuna.Study, trial) -> None:
        self._number = trial.number
        seed = trial_seed(self._seed, trial.number)
        self._sampler = self._make(seed)
        # a sampler has the frozen trial only: Optuna's own samplers write its system attributes this way
        study._storage.set_trial_system_attr(trial._trial_id, SAMPLER_SEED, seed)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        space = self._sampler.infer_relative_search_space(study, trial)
        return {name: d for name, d in space.items() if not self._fixed(name, d)}  # drawn by sample_independent

    def _allowed(self, name: str, distribution) -> list:
        return [c for c in getattr(distribution, "choices", ()) if c not in self._ruled_out.get(name, ())]

    def _fixed(self, name: str, distribution) -> bool:
        return bool(self._ruled_out.get(name)) and len(self._allowed(name, distribution)) == 1

    def sample_relative(self, study, trial, search_space):
        if trial.number < self._start:
            return {}
        for _ in range(REDRAWS):
            params = self._sampler.sample_relative(study, trial, search_space)
            if not self._ruled_out_in(params):
                return params
        return {name: value for name, value in params.items() if name not in self._ruled_out}  # drawn alone below

    def sample_independent(self, study, trial, param_name, param_distribution):
        ruled_out, allowed = self._ruled_out.get(param_name, set()), self._allowed(param_name, param_distribution)
        if self._fixed(param_name, param_distribution):
            return allowed[0]
        if trial.number < self._start:
            within = CategoricalDistribution(allowed) if ruled_out and allowed else param_distribution
            return from_unit(spread(self._seed, param_name, trial.number, self._start), self._frugal(param_name, within))
        for _ in range(REDRAWS):
            value = self._sampler.sample_independent(study, trial, param_name, param_distribution)
            if value not in ruled_out:
                return value
        return allowed[np.random.default_rng(trial_seed(self._seed, trial.number)).integers(len(allowed))] if allowed else value

    def _frugal(self, name: str, distribution):
        """With `seconds`, a choice whose value changes what a trial costs (a model, a batch size): the start-up
        trials take each choice once and the cheapest in the rest of their strata (on the recorded checkbox
        curves, spread evenly, the start-up's ResNet50 trials took 3.8 of a cost-aware search's 14.8 minutes, and
        TPE never went back to them)."""
        choices = getattr(distribution, "choices", None)
        if self._seconds is None or not choices or len(choices) >= self._start:
            return distribution
        costs = [self._seconds({name: choice}) for choice in choices]
        if len(set(costs)) == 1:
            return distribution
        cheapest = choices[costs.index(min(costs))]
        strata = sorted([*choices, *[cheapest] * (self._start - len(choices))], key=lambda c: costs[choices.index(c)])
        return CategoricalDistribution(strata)

    def _ruled_out_in(self, params: dict) -> bool:
        return any(params.get(name) in choices for name, choices in self._ruled_out.items())

    def after_trial(self, study, trial, state, values) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


def spread(seed: int, name: str, number: int, n: int) -> float:
    """Trial `number`'s place in [0, 1) for parameter `name`: the first n trials each take one of n equal
    strata, in an order seeded by (seed, name), at a random point inside it."""
    key = zlib.crc32(name.encode())
    order = np.random.default_rng([seed, key]).permutation(n)
    return (order[number] + np.random.default_rng([seed, key, number]).random()) / n


def from_unit(u: float, distribution):
    """The value at place u in [0, 1) of a distribution's range (on a log scale for log ones)."""
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[min(int(u * len(distribution.choices)), len(distribution.choices) - 1)]
    low, high = distribution.low, distribution.high
    if distribution.log:
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        value = low + u * (high - low)
    step = distribution.step
    if step:  # an int distribution's step is 1 or more; a float one's may be set
        value = low + round((value - low) / step) * step
    if isinstance(distribution, IntDistribution):
        value = int(value)
    return min(max(value, low), high)


class PerSecondTPE(optuna.samplers.TPESampler):
    """TPE whose candidates (drawn from its model of the good trials, as TPE draws them) are ranked by their
    expected improvement per expected second, not by expected improvement (Snoek, Larochelle and Adams 2012,
    "expected improvement per second"). TPE's ratio r = l(x) / g(x) of the densities of good and other trials
    gives the expected improvement up to a constant: EI(x) ~ 1 / (gamma + (1 - gamma) / r) (Bergstra et al.
    2011, gamma the share of good trials). A configuration ten times as expensive must promise ten times as much.
    The ranking uses Optuna's own candidates and densities (TPESampler._sample, _compute_acquisition_func)."""

    def __init__(self, seconds: Seconds, **options):
        super().__init__(**options)
        self._seconds, self._space, self._gamma_share = seconds, {}, 0.1

    def _sample(self, study, trial, search_space):
        self._space = search_space
        n = len(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        self._gamma_share = (self._gamma or optuna.samplers._tpe.sampler.default_gamma)(n) / max(n, 1)
        return super()._sample(study, trial, search_space)

    def _compute_acquisition_func(self, samples, mpe_below, mpe_above):
        log_ratio = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
        gamma = min(max(self._gamma_share, 1e-3), 1.0)
        log_improvement = -np.logaddexp(math.log(gamma), math.log1p(-gamma) - log_ratio) if gamma < 1 else 0 * log_ratio
        names = list(self._space)
        seconds = np.array([self._seconds({name: self._space[name].to_external_repr(samples[name][i]) for name in names})
                            for i in range(len(log_ratio))])
        return log_improvement - np.log(np.maximum(seconds, 1e-3))
