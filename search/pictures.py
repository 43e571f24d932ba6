"""The PNG pictures of a trial: learning curves, confusion matrices, the most confident right and wrong predictions.

matplotlib's object API (Figure, not pyplot): no global state, safe beside a running study.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

EXAMPLES_PER_KIND = 3  # right and wrong, per class


def learning_curves(history: list[dict[str, float]], metric: str, path: Path) -> Path:
    """Train and valid loss, and the valid metric, per epoch."""
    epochs = range(1, len(history) + 1)
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    loss, score = fig.subplots(1, 2)
    loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    loss.plot(epochs, [h["valid_loss"] for h in history], "o-", label="valid")
    loss.set(title="loss", xlabel="epoch")
    loss.legend()
    score.plot(epochs, [h[f"valid_{metric}"] for h in history], "o-", color="C1")
    score.set(title=f"valid {metric}", xlabel="epoch")
    for ax in (loss, score):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.savefig(path, dpi=80)
    return path


def confusion(truth: np.ndarray, predicted: np.ndarray, class_names: list[str], title: str, path: Path) -> Path:
    side = 2.5 + 0.5 * len(class_names)
    fig = Figure(figsize=(side, side), layout="constrained")
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        truth, predicted, labels=range(len(class_names)), display_labels=class_names, ax=ax, colorbar=False,
        xticks_rotation=45 if len(class_names) > 4 else "horizontal",
    )
    ax.set_title(title)
    fig.savefig(path, dpi=80)
    return path


def examples(images: torch.Tensor, truth: np.ndarray, outputs: torch.Tensor, class_names: list[str], path: Path) -> Path:
    """Per true class (rows): the most confident right, then the most confident wrong predictions.

    `images` are uint8 (N, 3, H, W) and `outputs` the model's logits, row for row.
    """
    probabilities = outputs.float().softmax(1).numpy()
    predicted, confidence = probabilities.argmax(1), probabilities.max(1)
    columns = 2 * EXAMPLES_PER_KIND
    fig = Figure(figsize=(1.4 * columns, 1.6 * len(class_names)), layout="constrained")
    axes = fig.subplots(len(class_names), columns, squeeze=False)
    for c, row in enumerate(axes):
        for right, start in ((True, 0), (False, EXAMPLES_PER_KIND)):
            chosen = np.flatnonzero((truth == c) & ((predicted == c) == right))
            chosen = chosen[np.argsort(-confidence[chosen])][:EXAMPLES_PER_KIND]
            for ax, i in zip(row[start:], chosen):
                ax.imshow(images[i].permute(1, 2, 0).numpy())
                label = f"{confidence[i]:.2f}" if right else f"→ {class_names[predicted[i]]} {confidence[i]:.2f}"
                ax.set_title(label, fontsize=8, color="green" if right else "red")
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(class_names[c], fontsize=9)
    fig.suptitle(f"most confident right (left {EXAMPLES_PER_KIND}) and wrong (right {EXAMPLES_PER_KIND}), by true class")
    fig.savefig(path, dpi=80)
    return path
