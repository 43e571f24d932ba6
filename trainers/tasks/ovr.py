"""One-vs-rest (seed 004): one binary classifier per class, trained against a sampled share of the other
classes' images under k-fold cross-validation (trainers.crossval runs the folds). Its model is the
ensemble of each class's best fold, whose outputs are each class's log-odds."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainers.errors import InputError
from trainers.models import create_model
from trainers.tasks.classify import Classify
from trainers.tasks.registry import register_task


class OneVsRestModel(nn.Module):
    """One binary classifier per class; output c is classifier c's log-odds of 'this class'."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([_log_odds(m(x)) for m in self.members], dim=1)


def _log_odds(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, 1] - logits[:, 0]


@register_task
@dataclass
class OneVsRest(Classify):
    name = "ovr"
    outputs = "(N, classes): each class's own classifier's log-odds of that class; the highest wins"
    unit = "fold"  # trainers.crossval trains it: one report per class and fold
    negatives: float = 0.1  # the share of the other classes' train/valid images each classifier sees as negatives
    folds: int = 3

    def __post_init__(self):
        if not 0 < self.negatives <= 1 or self.folds < 2:
            raise InputError(f"ovr needs 0 < negatives <= 1 and at least 2 folds (got {self.negatives}, {self.folds})")

    def steps(self, epochs: int, class_names: list[str]) -> int:
        return self.folds * len(class_names)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().sigmoid()  # each class's own classifier: this class or the rest

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        return torch.logit(probabilities.clamp(1e-6, 1 - 1e-6))

    def create_model(self, name: str, num_outputs: int, **options) -> OneVsRestModel:
        return OneVsRestModel([create_model(name, 2, **options) for _ in range(num_outputs)])
