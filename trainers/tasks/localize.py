"""One class and one bounding box per image (seed 003): the shared head gives the class logits and
four box numbers; loss = cross-entropy + smooth-L1 x box_weight on boxes as fractions of the square
image; metrics: accuracy, mean IoU, and the hit rate: the share of images whose class is right and
whose box overlaps the true one with an IoU of at least 0.5 (single-object detection's accuracy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainers.cache import Decoded
from trainers.data import BOX_COLUMNS
from trainers.images import box_to_original, crop_box, frame_of
from trainers.models import Classifier, create_backbone, spatial
from trainers.tasks.classify import class_log_frequencies
from trainers.tasks.registry import register_task
from trainers.tasks.task import Task


HIT_IOU = 0.5  # a box this close to the true one, with the right class, is a hit


@register_task
@dataclass
class Localize(Task):
    name = "localize"
    pictures = ("boxes",)  # the most and least accurate test images, drawn (search.review.pictures)
    outputs = ("(N, classes + 4): a logit per class, then x_min, y_min, x_max, y_max whose sigmoids are the box "
               "as fractions of the square input")
    data_format = "a CSV manifest path,label,x_min,y_min,x_max,y_max[,split]: one box per image, in pixels"
    box_weight: float = 100.0  # the box loss's weight against the class loss

    def class_names(self, decoded: Decoded) -> list[str]:
        return sorted({i.label for i in decoded.items})

    def create_model(self, name: str, num_outputs: int, hidden: tuple[int, ...] = (), **backbone) -> torch.nn.Module:
        """The head also sees where the backbone's features are (SpatialPool): a box needs it."""
        return Classifier(spatial(name, create_backbone(name, **backbone)), num_outputs, hidden)

    def num_outputs(self, class_names: list[str]) -> int:
        return len(class_names) + 4

    def encode(self, decoded: Decoded, class_names: list[str]) -> torch.Tensor:
        """(N, 5): the class index, then the box in the square image as fractions of its side."""
        rows = []
        for item, (width, height) in zip(decoded.items, decoded.sizes):
            x0, y0, x1, y1 = crop_box(width, height, decoded.crop)
            frame = frame_of(x1 - x0, y1 - y0, decoded.size, decoded.mode)
            box = item.box[0] - x0, item.box[1] - y0, item.box[2] - x0, item.box[3] - y0
            rows.append([class_names.index(item.label), *(v / decoded.size for v in frame.to_square(box))])
        return torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)

    def split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits, and boxes as fractions (x_min, y_min, x_max, y_max) of the square image."""
        return outputs[:, :-4].float(), outputs[:, -4:].float().sigmoid()

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits, boxes = self.split(outputs)
        return F.cross_entropy(logits, targets[:, 0].long()) + self.box_weight * F.smooth_l1_loss(boxes, targets[:, 1:])

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        logits, boxes = self.split(outputs)
        right, iou = logits.argmax(1) == targets[:, 0].long(), box_iou(boxes, targets[:, 1:])
        return {
            "loss": self.loss(outputs, targets).item(),
            "accuracy": right.float().mean().item(),
            "iou": iou.mean().item(),
            "hit_rate": (right & (iou >= HIT_IOU)).float().mean().item(),
        }

    def constant(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        """The commonest class and the mean box."""
        box = torch.logit(targets[:, 1:].float().mean(0).clamp(1e-4, 1 - 1e-4))
        return torch.cat([class_log_frequencies(targets[:, 0], len(class_names)), box])

    def right_answers(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        """The class for sure, the box exactly."""
        classes = F.one_hot(targets[:, 0].long(), len(class_names)).float()
        return self.logits(torch.cat([classes, targets[:, 1:].float()], 1))

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities, then the box as fractions of the square."""
        logits, boxes = self.split(outputs)
        return torch.cat([logits.softmax(1), boxes], 1)

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        classes, boxes = probabilities[:, :-4], probabilities[:, -4:]
        return torch.cat([classes.clamp_min(1e-12).log(), torch.logit(boxes.clamp(1e-6, 1 - 1e-6))], 1)

    def answer(self, probabilities: torch.Tensor, place) -> dict[str, np.ndarray]:
        box = box_to_original((probabilities[-4:] * place.size).tolist(), place.width, place.height, place.size,
                              place.resize, place.crop)
        return {"probabilities": probabilities[:-4].numpy(), "box": np.array(box)}

    def fields(self, answer: dict[str, np.ndarray], class_names: list[str]) -> dict:
        p = answer["probabilities"]
        return {"label": class_names[int(p.argmax())], "probabilities": {c: round(float(v), 6) for c, v in zip(class_names, p)},
                "box": [round(float(v), 1) for v in answer["box"]]}  # x_min, y_min, x_max, y_max in the image's pixels

    def rows(self, image: str, fields: dict) -> list[dict]:
        """The label, each class's probability, then the box's corners in the image's own pixels."""
        (row,) = super().rows(image, {k: v for k, v in fields.items() if k != "box"})
        return [row | dict(zip(BOX_COLUMNS, fields["box"]))]

    def warp_targets(self, targets: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Boxes follow the warp: theta maps output to input positions in [-1, 1], so corners go through its inverse."""
        corners = targets[:, [1, 2, 3, 2, 1, 4, 3, 4]].view(-1, 4, 2) * 2 - 1  # four (x, y) corners, in [-1, 1]
        matrix, shift = theta[:, :, :2], theta[:, :, 2]
        moved = torch.linalg.solve(matrix, (corners - shift[:, None, :]).transpose(1, 2)).transpose(1, 2)
        moved = ((moved + 1) / 2).clamp(0, 1)
        return torch.cat([targets[:, :1], moved.amin(1), moved.amax(1)], dim=1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of each box in `a` with the box in the same row of `b` (x_min, y_min, x_max, y_max)."""
    low, high = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (high - low).clamp_min(0).prod(1)
    area = lambda box: (box[:, 2:] - box[:, :2]).clamp_min(0).prod(1)  # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp_min(1e-9)
