"""Multilabel classification: which of several classes an image shows (Severstal: its defect types).
Binary cross-entropy per class; micro and macro F1, exact-match accuracy, per-class precision and recall."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from trainers.cache import Decoded
from trainers.tasks.registry import register_task
from trainers.tasks.task import PerClass

SEVERSTAL = "Severstal's layout: train.csv (ImageId,ClassId,EncodedPixels) and train_images/"


@register_task
@dataclass
class Multilabel(PerClass):
    name = "multilabel"
    pictures = ("labels",)  # the most and least accurate test images, drawn (search.review.pictures)
    outputs = "(N, classes): a logit per class; a class is present where its sigmoid reaches the threshold"
    data_format = SEVERSTAL + "; the classes with a mask are an image's labels"

    def encode(self, decoded: Decoded, class_names: list[str]) -> torch.Tensor:
        targets = torch.zeros(len(decoded.items), len(class_names))
        for row, item in enumerate(decoded.items):
            for name, _ in item.masks:
                targets[row, class_names.index(name)] = 1
        return targets

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs.float(), targets.float())

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Per-class figures are numbered from 1 in class-name order (Severstal's ClassId 1 to 4)."""
        predicted = (outputs.sigmoid() >= self.threshold).numpy()
        truth = targets.numpy().astype(bool)
        precision, recall, _, _ = precision_recall_fscore_support(truth, predicted, average=None, zero_division=0)
        return {
            "loss": self.loss(outputs, targets).item(),
            "accuracy": accuracy_score(truth, predicted),  # every class right
            "f1_micro": f1_score(truth, predicted, average="micro", zero_division=0),
            "f1_macro": f1_score(truth, predicted, average="macro", zero_division=0),
            **{f"precision_{k}": float(p) for k, p in enumerate(precision, 1)},
            **{f"recall_{k}": float(r) for k, r in enumerate(recall, 1)},
        }

    def fields(self, answer: dict[str, np.ndarray], class_names: list[str]) -> dict:
        p = answer["probabilities"]
        return {"labels": [c for c, v in zip(class_names, p) if v >= self.threshold],
                "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, p)}}

    def rows(self, image: str, fields: dict) -> list[dict]:
        """The labels space-separated, then each class's probability."""
        return super().rows(image, {**fields, "labels": " ".join(fields["labels"])})
