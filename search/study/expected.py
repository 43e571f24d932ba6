"""What a configuration is expected to take, known before it is drawn: the training speed of its model at its
batch size on this run's device (trainers.speed, measured once per machine), times the images and epochs of a
trial, plus the evaluation of the valid split each epoch; then corrected by the seconds that the study's
finished trials of that model actually took (their building, cost measurement, files and the machine's load
are in those, not in the speed). The cost-aware sampler ranks its candidates by it (search.study.strategy),
and each trial records it beside its actual seconds."""

from __future__ import annotations

import statistics

import optuna
from optuna.trial import TrialState

from search import record
from search.record import TrialRecord
from search.study.training import Training, drawn_configs, make_config
from spaces import Space
from trainers.loop import TrainConfig, TrainData
from trainers.speed import speed_once
from trainers.tasks import Task

COST_PARAMS = ("model", "batch_size")  # the parameters that set a configuration's speed


class ExpectedSeconds:
    """A configuration's parameters (all, or some: `{"model": "resnet50"}` is the median over the rest) -> its
    expected seconds to train to the end."""

    def __init__(self, space: Space, training: Training, data: TrainData, epochs: int):
        self.space, self.training, self.data, self.epochs = space, training, data, epochs
        self._configs: dict[tuple, tuple[TrainConfig, Task]] | None = None  # by (model, batch size)
        self._raw: dict[tuple, float] = {}
        self.ratio: dict[str | None, float] = {}  # actual / expected seconds of the finished trials, by model (None: all)

    def __call__(self, params: dict) -> float:
        keys = [k for k in self.configs() if all(params.get(n, v) == v for n, v in zip(COST_PARAMS, k))]
        return statistics.median(self.raw(k) * self.ratio.get(k[0], self.ratio.get(None, 1.0)) for k in keys or self.configs())

    def configs(self) -> dict[tuple, tuple[TrainConfig, Task]]:
        """A configuration (and its task) for each model and batch size that a random search of the space draws."""
        if self._configs is None:
            self._configs = {}
            for config, task in drawn_configs(self.space, self.training):
                self._configs.setdefault((config.model, config.batch_size), (config, task))
        return self._configs

    def raw(self, key: tuple) -> float:
        """The seconds its speed gives, before any correction."""
        if key not in self._raw:
            config, task = self.configs()[key]
            splits = self.data.splits
            self._raw[key] = speed_once(config, self.data, task).seconds(len(splits["train"]), len(splits["valid"]), self.epochs)
        return self._raw[key]

    def learn(self, study: optuna.Study, *_) -> None:
        """The ratios of actual to expected seconds of the study's finished trials (each trial's part of its
        epochs), by model and in all: the median, so that one slow trial moves it little. (A callback after
        each trial: it reads every worker's trials.)"""
        ratios: dict[str | None, list[float]] = {}
        for trial in record.own_trials(study, (TrialState.COMPLETE, TrialState.PRUNED)):
            recorded = TrialRecord.read(trial)
            try:  # the space's choices as the trial made them, with what its suggest() sets besides
                config, _ = make_config(self.space, self.space.suggest(optuna.trial.FixedTrial(trial.params)), self.training)
            except ValueError:  # a parameter it did not record (drawn by an older space)
                continue
            key, trained = (config.model, config.batch_size), (recorded.steps_run or 0) - (recorded.resumed_from_epoch or 0)
            if not recorded.training_seconds or trained <= 0 or recorded.unit != "epoch" or key not in self.configs():
                continue  # not trained (over a limit), folds, or a model this space no longer draws
            ratio = recorded.training_seconds / (self.raw(key) * min(trained / self.epochs, 1.0))
            ratios.setdefault(key[0], []).append(ratio)
            ratios.setdefault(None, []).append(ratio)
        self.ratio = {model: statistics.median(values) for model, values in ratios.items()}
