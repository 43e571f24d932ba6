"""Tasks: what a model's outputs mean. Each task gives its targets, loss and metrics; the one loop uses them."""

from __future__ import annotations

from typing import Protocol

import torch

from trainers.data import Item


class Task(Protocol):
    name: str
    data_format: str  # what --data must hold, for `hpsearch spaces`

    def num_outputs(self, class_names: list[str]) -> int: ...

    def encode(self, items: list[Item], class_names: list[str]) -> torch.Tensor:
        """The targets of `items`, one row each."""

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Metrics over a whole split (outputs and targets on the CPU), 'loss' included."""

    def warp_targets(self, targets: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Follow a batch's affine augmentation (boxes, masks); unchanged for labels."""


def get_task(name: str) -> Task:
    from trainers.tasks.classify import Classify

    tasks = {"classify": Classify}
    if name not in tasks:
        raise ValueError(f"unknown task {name!r}: use one of {', '.join(tasks)}")
    return tasks[name]()
