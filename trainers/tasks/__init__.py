"""Tasks: what a model's outputs mean. Each task gives its class names, targets, loss and metrics (and,
where its model is not a classifier, its model); the one loop uses them. A task's dataclass fields are
its options (box_weight, ...), which a space may fix or search like any training setting."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np
import torch

from trainers.cache import Decoded


class Task(Protocol):
    name: str
    data_format: str  # what --data must hold, for `hpsearch spaces`
    outputs: str  # what the model's outputs are, for an exported model's card

    def class_names(self, decoded: Decoded) -> list[str]:
        """The names of the classes the model's outputs stand for."""

    def num_outputs(self, class_names: list[str]) -> int: ...

    def encode(self, decoded: Decoded, class_names: list[str]) -> torch.Tensor:
        """The targets of the decoded items, one row each."""

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Metrics over a whole split (outputs and targets on the CPU), 'loss' included."""

    def constant(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        """One row of outputs that ignores the image: the commonest answer among `targets` (the training
        split's). Its metrics are chance level, what a trial must beat."""

    def warp_targets(self, targets: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Follow a batch's affine augmentation (boxes, masks); unchanged for labels."""

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """A batch of outputs as probabilities, which models can average (an ensemble)."""

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Back from probabilities to outputs that `metrics` and `loss` take."""

    def answer(self, probabilities: torch.Tensor, place: "Place") -> dict[str, np.ndarray]:
        """One image's probabilities in its own pixels (boxes, masks), as arrays that models can average."""

    def fields(self, answer: dict[str, np.ndarray], class_names: list[str]) -> dict:
        """What a user reads of an answer: a label and each class's probability; labels; a box; masks."""


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a model's square input came from: the image's own width and height, and how it was cut
    (`crop`) and resized (`resize` to `size`) for the model."""

    width: int
    height: int
    size: int
    resize: str
    crop: object = None

    def create_model(self, name: str, num_outputs: int, **options) -> torch.nn.Module: ...


def _tasks() -> dict[str, type]:
    from trainers.tasks.classify import Classify
    from trainers.tasks.localize import Localize
    from trainers.tasks.multilabel import Multilabel
    from trainers.tasks.ovr import OneVsRest
    from trainers.tasks.segment import Segment

    return {t.name: t for t in (Classify, Multilabel, Segment, Localize, OneVsRest)}


def task_options(name: str) -> set[str]:
    """The option names a task takes."""
    return {f.name for f in dataclasses.fields(_task_class(name))}


def get_task(name: str, **options) -> Task:
    cls = _task_class(name)
    unknown = sorted(set(options) - task_options(name))
    if unknown:
        raise ValueError(f"task {name!r} has no options {unknown}: it takes {sorted(task_options(name)) or 'none'}")
    return cls(**options)


def _task_class(name: str) -> type:
    tasks = _tasks()
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}: use one of {', '.join(tasks)}")
    return tasks[name]
