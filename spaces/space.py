"""What a space is: the data it trains on, how images are prepared, and which hyperparameters the search
may choose (`suggest`). It knows Optuna's trial only to call `trial.suggest_*`. Parameter names are
permanent keys in every stored study: never rename one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution

from trainers.augment import Augment
from trainers.data import SPLIT_FRACTIONS
from trainers.errors import InputError
from trainers.images import PER_IMAGE_BOX, RESIZE_MODES


@dataclass(frozen=True)
class Space:
    name: str
    task: str  # a trainers.tasks name: classify, multilabel, segment, localize or ovr
    data: str  # default data: "builtin:NAME", a folder of class folders or a CSV manifest
    suggest: Callable[[Any], dict]  # trial -> TrainConfig fields (model, batch_size, lr, ...)
    summary: str  # one line for `hpsearch spaces`
    image_size: int = 64  # pixels per side after resizing
    resize: str = "pad-reflect"  # one of trainers.images.RESIZE_MODES
    split: tuple[float, float, float] = SPLIT_FRACTIONS  # train / valid / test fractions
    epochs: int = 10
    metric: str = "f1_weighted"  # the valid metric the search maximizes
    augment: Augment = field(default_factory=Augment)
    pretrained: bool = False  # ImageNet weights for timm models (needs them offline: --weights)
    trainable_blocks: int | None = None  # with pretrained weights: last N blocks train, the rest freeze
    sampler: str = "tpe-per-second"  # a sampler's name (`hpsearch spaces`, search.study.strategy)
    pruner: str = "patient"  # a pruner's name (search.study.strategy)
    pruner_options: dict = field(default_factory=dict)  # its keyword arguments, beside those it derives from the epochs
    fixed: dict = field(default_factory=dict)  # TrainConfig fields the search does not vary
    # region of interest: left, top, right, bottom fractions, or "manifest": each image's own box from the manifest
    crop: tuple[float, float, float, float] | str | None = None
    data_format: str | None = None  # what --data must hold, where it differs from the task's
    # the configuration to try first in a new study (suggest's parameter names and values): the one its seed
    # started from, unless the user says --no-default-first
    default: dict = field(default_factory=dict)
    # what a study that starts from an earlier study's model searches (--from): how many of the last blocks train
    # (trainable_blocks), a learning rate fitted to fine-tuning...; never the model, which is the earlier one's.
    # None: suggest, with the model fixed to the earlier one's
    fine_tune: Callable[[Any], dict] | None = None

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise InputError(f"space {self.name!r}: resize {self.resize!r} is not one of {', '.join(RESIZE_MODES)}")
        if self.crop == PER_IMAGE_BOX:
            pass
        elif self.crop and not (0 <= self.crop[0] < self.crop[2] <= 1 and 0 <= self.crop[1] < self.crop[3] <= 1):
            raise InputError(f"space {self.name!r}: crop {self.crop} must be {PER_IMAGE_BOX!r}, or left < right and "
                             f"top < bottom, fractions in [0, 1]")
        if abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise InputError(f"space {self.name!r}: split {self.split} must be three positive fractions adding to 1")

    def distributions(self, suggest: Callable[[Any], dict] | None = None) -> dict[str, BaseDistribution]:
        """The hyperparameters this space searches (with `suggest`: another of its searches, such as fine_tune),
        read from its suggest() on a throwaway trial."""
        trial = optuna.create_study().ask()
        (suggest or self.suggest)(trial)
        return trial.distributions

    def model_choices(self) -> list[str]:
        """The models its search chooses among; none where `model` is not a choice it makes."""
        choice = self.distributions().get("model")
        return list(choice.choices) if isinstance(choice, CategoricalDistribution) else []

    def describe(self, suggest: Callable[[Any], dict] | None = None) -> str:
        """What it searches, in words: `model: baseline | resnet50; lr: 1e-05 .. 0.01 (log)`."""
        return "; ".join(f"{name}: {describe_distribution(d)}" for name, d in self.distributions(suggest).items())


def describe_distribution(d: BaseDistribution) -> str:
    """What one hyperparameter may take, in words."""
    if isinstance(d, CategoricalDistribution):
        return " | ".join(map(str, d.choices))
    return f"{d.low:g} .. {d.high:g}" + (" (log)" if d.log else "")
