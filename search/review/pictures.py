"""The PNG pictures of a trial: learning curves, and the pictures of a split's predictions that its task names
(`Task.pictures`): confusion matrices, the most confident right and wrong predictions, and for boxes, masks
and label sets the most and least accurate images with what was true and what was predicted drawn on them.

matplotlib's object API (Figure, not pyplot): no global state, safe beside a running study.
"""

from __future__ import annotations

from dataclasses import dataclass
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


BEST_AND_WORST = 3  # the most and the least accurate images each
TRUE_COLOUR, PREDICTED_COLOUR = (0, 200, 0), (230, 0, 0)
MASK_COLOURS = {"red": (230, 25, 75), "green": (60, 180, 75), "blue": (0, 130, 200), "orange": (245, 130, 48),
                "purple": (145, 30, 180), "cyan": (70, 240, 240)}  # a mask's tint, by class in turn


def best_and_worst(panels: list[list[np.ndarray]], scores: np.ndarray, captions: list[str], title: str, path: Path) -> Path:
    """The BEST_AND_WORST images of highest score (top row) and of lowest (bottom row, the worst first), each as
    its panels side by side (the image drawn on, H x W x 3 uint8) under its caption: one mosaic, not an axes
    per image, so that drawing stays cheap beside a trial."""
    order = np.argsort(-scores, kind="stable")
    k = min(BEST_AND_WORST, (len(order) + 1) // 2)
    height, width = panels[0][0].shape[:2]
    cell, row = width * len(panels[0]) + 4, height + max(8, height // 3)  # white borders; above each, its caption
    mosaic = np.full((2 * row, k * cell, 3), 255, np.uint8)
    fig = Figure(figsize=(max(4.0, k * cell / 40 + 1.2), 2 * row / 40 + 0.9))
    ax = fig.add_axes((0.14, 0.02, 0.84, 0.82))
    for r, chosen in enumerate((order[:k], order[::-1][:k])):
        for c, i in enumerate(chosen):
            y, x = r * row + row - height, c * cell + 2
            mosaic[y : y + height, x : x + cell - 4] = np.concatenate(panels[i], axis=1)
            ax.text(x + (cell - 4) / 2, y - 0.5, captions[i], ha="center", va="bottom", fontsize=6,
                    color="green" if r == 0 else "red")
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([row - height / 2, 2 * row - height / 2], ["most\naccurate", "least\naccurate"], fontsize=7)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=8)
    fig.savefig(path, dpi=100)
    return path


def _outline(pixels: np.ndarray, box, colour) -> np.ndarray:
    """`pixels` with the box (x_min, y_min, x_max, y_max as fractions of the square image) outlined."""
    size = pixels.shape[0]
    x0, y0, x1, y1 = (int(round(min(max(v, 0.0), 1.0) * (size - 1))) for v in box)
    pixels[y0 : y1 + 1, [x0, x1]] = colour
    pixels[[y0, y1], x0 : x1 + 1] = colour
    return pixels


def _boxes_of(outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], title: str, path: Path,
              images: torch.Tensor | None) -> Path | None:
    """Localize: each image with its true box (green) and the predicted one (red); class and IoU above it."""
    if images is None:
        return None
    from trainers.tasks.localize import box_iou  # here: trainers' tasks need not load for the other pictures

    predicted, boxes = outputs[:, :-4].float().argmax(1), outputs[:, -4:].float().sigmoid()
    truth, iou = targets[:, 0].long(), box_iou(boxes, targets[:, 1:].float())
    right = predicted == truth
    panels = [[_outline(_outline(images[i].permute(1, 2, 0).numpy().copy(), targets[i, 1:].tolist(), TRUE_COLOUR),
                        boxes[i].tolist(), PREDICTED_COLOUR)] for i in range(len(images))]
    captions = [f"{class_names[truth[i]]}" + ("" if right[i] else f" → {class_names[predicted[i]]}") + f", IoU {iou[i]:.2f}"
                for i in range(len(images))]
    score = (iou + right.float()).numpy()  # a wrong class ranks below any right one
    return best_and_worst(panels, score, captions, f"{title}: true boxes green, predicted red", path)


def _overlaid(pixels: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """`pixels` (H x W x 3) with each class's mask (C x H x W, booleans) tinted in its colour."""
    tinted, colours = pixels.astype(np.float32), np.array(list(MASK_COLOURS.values()), np.float32)
    for c, mask in enumerate(masks):
        tinted[mask] = 0.45 * tinted[mask] + 0.55 * colours[c % len(colours)]
    return tinted.astype(np.uint8)


def _masks_of(outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], title: str, path: Path,
              images: torch.Tensor | None) -> Path | None:
    """Segment: each image twice, its true masks and the predicted ones tinted per class; its Dice above it
    (over its classes' pixels; 1 where neither has any)."""
    if images is None:
        return None
    from trainers.tasks.segment import Segment

    predicted, truth = outputs.float().sigmoid().numpy() >= Segment.threshold, targets.numpy() > 0
    overlap, sizes = (predicted & truth).sum((1, 2, 3)), predicted.sum((1, 2, 3)) + truth.sum((1, 2, 3))
    dice = np.where(sizes > 0, 2 * overlap / np.maximum(sizes, 1), 1.0)
    panels = [[_overlaid(images[i].permute(1, 2, 0).numpy(), masks[i]) for masks in (truth, predicted)] for i in range(len(images))]
    key = ", ".join(f"{name} {colour}" for name, colour in zip(class_names, list(MASK_COLOURS) * len(class_names)))
    return best_and_worst(panels, dice, [f"Dice {d:.2f}" for d in dice], f"{title}: true | predicted masks ({key})", path)


def _labels_of(outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], title: str, path: Path,
               images: torch.Tensor | None) -> Path | None:
    """Multilabel: each image with its true and predicted labels above it; accuracy: 1 - the mean distance of
    the predicted probabilities from the truth."""
    if images is None:
        return None
    from trainers.tasks.multilabel import Multilabel

    probabilities, truth = outputs.float().sigmoid().numpy(), targets.numpy() > 0
    score = 1 - np.abs(probabilities - truth).mean(1)
    named = lambda row: ",".join(name for name, on in zip(class_names, row) if on) or "none"  # noqa: E731
    captions = [f"true {named(truth[i])}, predicted {named(probabilities[i] >= Multilabel.threshold)}" for i in range(len(images))]
    return best_and_worst([[images[i].permute(1, 2, 0).numpy()] for i in range(len(images))], score, captions,
                          f"{title}: true and predicted labels", path)


def _confusion_of(outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], title: str, path: Path,
                  images: torch.Tensor | None) -> Path:
    return confusion(targets.numpy(), outputs.argmax(1).numpy(), class_names, title, path)


def _examples_of(outputs: torch.Tensor, targets: torch.Tensor, class_names: list[str], title: str, path: Path,
                 images: torch.Tensor | None) -> Path | None:
    return examples(images, targets.numpy(), outputs, class_names, path) if images is not None else None


# a task names the pictures of its predictions (Task.pictures) from these
DRAWN = {"confusion": _confusion_of, "examples": _examples_of, "boxes": _boxes_of, "masks": _masks_of, "labels": _labels_of}


@dataclass(frozen=True)
class Predictions:
    """A split's model outputs and true targets (on the CPU, row for row), what its classes are called, and its
    uint8 images where the pictures are to show them."""

    outputs: torch.Tensor
    targets: torch.Tensor
    class_names: list[str]
    images: torch.Tensor | None = None


def of_split(names: tuple[str, ...], split: str, predictions: Predictions, title: str, folder: Path) -> list[Path]:
    """The pictures `names` of one split's predictions, as `<name>_<split>.png` in `folder`; those that show
    images only where the predictions come with them."""
    p = predictions
    made = [DRAWN[name](p.outputs, p.targets, p.class_names, title, folder / f"{name}_{split}.png", p.images) for name in names]
    return [path for path in made if path is not None]
