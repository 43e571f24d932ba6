"""The PNG pictures of a trial: learning curves, and the pictures of a split's predictions that its task names
(`Task.pictures`): confusion matrices, the most confident right and wrong predictions.

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
    fig = Figure(figsize=(8, 3.2))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.25)  # cheaper than a layout engine
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

    `images` are uint8 (N, 3, H, W) and `outputs` the model's logits, row for row. One mosaic with
    labels, not an axes per image: drawing stays cheap beside a trial.
    """
    probabilities = outputs.float().softmax(1).numpy()
    predicted, confidence = probabilities.argmax(1), probabilities.max(1)
    size, columns = images.shape[-1], 2 * EXAMPLES_PER_KIND
    cell, row = size + 2, size + max(4, size // 4)  # white borders; above each image, room for its label
    mosaic = np.full((len(class_names) * row, columns * cell, 3), 255, np.uint8)
    fig = Figure(figsize=(1.3 * columns + 1, 1.3 * len(class_names) + 0.6))
    ax = fig.add_axes((0.12, 0.02, 0.86, 0.88))
    for c in range(len(class_names)):
        for right, start in ((True, 0), (False, EXAMPLES_PER_KIND)):
            chosen = np.flatnonzero((truth == c) & ((predicted == c) == right))
            chosen = chosen[np.argsort(-confidence[chosen])][:EXAMPLES_PER_KIND]
            for k, i in enumerate(chosen):
                y, x = c * row + row - size, (start + k) * cell
                mosaic[y : y + size, x : x + size] = images[i].permute(1, 2, 0).numpy()
                label = f"{confidence[i]:.2f}" if right else f"→{class_names[predicted[i]]} {confidence[i]:.2f}"
                ax.text(x + size / 2, y - 0.5, label, ha="center", va="bottom", fontsize=7, color="green" if right else "red")
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([c * row + row - size / 2 for c in range(len(class_names))], class_names, fontsize=8)
    ax.set_title(f"most confident right (left {EXAMPLES_PER_KIND}) and wrong (right {EXAMPLES_PER_KIND}), by true class",
                 fontsize=9)
    fig.savefig(path, dpi=80)
    return path



def _confusion_of(outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], title: str, path: Path,
                  images: torch.Tensor | None) -> Path:
    return confusion(targets.numpy(), outputs.argmax(1).numpy(), class_names, title, path)


def _examples_of(outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], title: str, path: Path,
                 images: torch.Tensor | None) -> Path | None:
    return examples(images, targets.numpy(), outputs, class_names, path) if images is not None else None


# a task names the pictures of its predictions (Task.pictures) from these
DRAWN = {"confusion": _confusion_of, "examples": _examples_of}


def of_split(names: tuple[str, ...], split: str, outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str],
             title: str, folder: Path, images: torch.Tensor | None = None) -> list[Path]:
    """The pictures `names` of one split's predictions (`outputs` and `targets` on the CPU, row for row), as
    `<name>_<split>.png` in `folder`; those that show images only where `images` (uint8) are given."""
    made = [DRAWN[name](outputs, targets, class_names, title, folder / f"{name}_{split}.png", images) for name in names]
    return [path for path in made if path is not None]
