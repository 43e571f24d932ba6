"""Single-label classification: cross-entropy, accuracy and weighted F1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score

from trainers.data import Item


class Classify:
    name = "classify"
    data_format = "a folder of class folders, or a CSV manifest path,label[,split]"

    def num_outputs(self, class_names: list[str]) -> int:
        return len(class_names)

    def encode(self, items: list[Item], class_names: list[str]) -> torch.Tensor:
        index = {name: i for i, name in enumerate(class_names)}
        return torch.tensor([index[i.label] for i in items], dtype=torch.long)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        predicted = outputs.argmax(1).numpy()
        truth = targets.numpy()
        return {
            "loss": self.loss(outputs, targets).item(),
            "accuracy": accuracy_score(truth, predicted),
            "f1_weighted": f1_score(truth, predicted, average="weighted", zero_division=0),
        }

    def warp_targets(self, targets: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return targets
