"""Single-label classification: cross-entropy, accuracy and weighted F1; with two classes also the
precision, recall and F1 of the second class in name order (e.g. 'defect' against 'clean')."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from trainers.cache import Decoded
from trainers.models import create_model

CLASS_FOLDERS = "a folder of class folders, or a CSV manifest path,label[,split]"


@dataclass
class Classify:
    name = "classify"
    data_format = CLASS_FOLDERS
    outputs = "(N, classes): a logit per class; softmax gives the probabilities"
    create_model = staticmethod(create_model)

    def class_names(self, decoded: Decoded) -> list[str]:
        return sorted({i.label for i in decoded.items})

    def num_outputs(self, class_names: list[str]) -> int:
        return len(class_names)

    def encode(self, decoded: Decoded, class_names: list[str]) -> torch.Tensor:
        index = {name: i for i, name in enumerate(class_names)}
        return torch.tensor([index[i.label] for i in decoded.items], dtype=torch.long)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        predicted = outputs.argmax(1).numpy()
        truth = targets.numpy()
        metrics = {
            "loss": self.loss(outputs, targets).item(),
            "accuracy": accuracy_score(truth, predicted),
            "f1_weighted": f1_score(truth, predicted, average="weighted", zero_division=0),
        }
        if outputs.shape[1] == 2:
            precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
            metrics |= {"precision": precision, "recall": recall, "f1": f1}
        return metrics

    def constant(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        return class_log_frequencies(targets, len(class_names))

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().softmax(1)

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities.clamp_min(1e-12).log()

    def answer(self, probabilities: torch.Tensor, place) -> dict[str, np.ndarray]:
        return {"probabilities": probabilities.numpy()}

    def fields(self, answer: dict[str, np.ndarray], class_names: list[str]) -> dict:
        p = answer["probabilities"]
        return {"label": class_names[int(p.argmax())], "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, p)}}

    def warp_targets(self, targets: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return targets


def class_log_frequencies(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Logits whose highest is the commonest label."""
    return (torch.bincount(labels.long(), minlength=classes).float() + 1e-3).log()
