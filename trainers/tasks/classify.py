"""Single-label classification: cross-entropy, accuracy and weighted F1; with two classes also the
precision, recall and F1 of the second class in name order (e.g. 'defect' against 'clean')."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from trainers.cache import Decoded
from trainers.tasks.registry import register_task
from trainers.tasks.task import Task

CLASS_FOLDERS = "a folder of class folders, or a CSV manifest path,label[,split]"


@register_task
@dataclass
class Classify(Task):
    name = "classify"
    data_format = CLASS_FOLDERS
    outputs = "(N, classes): a logit per class; softmax gives the probabilities"
    pictures = ("confusion", "examples")

    def class_names(self, decoded: Decoded) -> list[str]:
        return sorted({i.label for i in decoded.items})

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

    def right_answers(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        return self.logits(F.one_hot(targets.long(), len(class_names)).float())

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().softmax(1)

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        return probabilities.clamp_min(1e-12).log()

    def fields(self, answer: dict[str, np.ndarray], class_names: list[str]) -> dict:
        p = answer["probabilities"]
        return {"label": class_names[int(p.argmax())], "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, p)}}


def class_log_frequencies(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Logits whose highest is the commonest label."""
    return (torch.bincount(labels.long(), minlength=classes).float() + 1e-3).log()
