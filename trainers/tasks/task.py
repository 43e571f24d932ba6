"""What a task is: everything the rest of hpsearch asks about what a model's outputs mean. A task is a dataclass
whose fields are its options (box_weight, ...), which a space may fix or search like any training setting.
The defaults below suit a task trained in epochs whose targets do not move with the pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from trainers.cache import Decoded
from trainers.models import create_model


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a model's square input came from: the image's own width and height, and how it was cut
    (`crop`) and resized (`resize` to `size`) for the model."""

    width: int
    height: int
    size: int
    resize: str
    crop: object = None


class Task:
    name: str
    data_format: str  # what --data must hold, for `hpsearch spaces`
    outputs: str  # what the model's outputs are, for an exported model's card
    unit = "epoch"  # what one report of training is: an epoch, or (cross-validation) a fold
    pictures: tuple[str, ...] = ()  # what search.review.pictures draws of its predictions, by name
    shaped_by: tuple[str, ...] = ()  # the task's options that shape its model, besides the model's name and head

    def steps(self, epochs: int, class_names: list[str]) -> int:
        """How many reports training makes when nothing stops it."""
        return epochs

    def create_model(self, name: str, num_outputs: int, **options) -> torch.nn.Module:
        """The model for `name` (see trainers.models.create_model for the options)."""
        return create_model(name, num_outputs, **options)

    def class_names(self, decoded: Decoded) -> list[str]:
        """The names of the classes the model's outputs stand for."""
        raise NotImplementedError

    def num_outputs(self, class_names: list[str]) -> int:
        return len(class_names)

    def encode(self, decoded: Decoded, class_names: list[str]) -> torch.Tensor:
        """The targets of the decoded items, one row each."""
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Metrics over a whole split (outputs and targets on the CPU), 'loss' included."""
        raise NotImplementedError

    def constant(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        """One row of outputs that ignores the image: the commonest answer among `targets` (the training
        split's). Its metrics are chance level, what a trial must beat."""
        raise NotImplementedError

    def right_answers(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        """The outputs of a model that answers each of `targets` exactly, row for row."""
        raise NotImplementedError

    def warp_targets(self, targets: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Follow a batch's affine augmentation (boxes, masks); unchanged for labels."""
        return targets

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """A batch of outputs as probabilities, which models can average (an ensemble)."""
        raise NotImplementedError

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Back from probabilities to outputs that `metrics` and `loss` take."""
        raise NotImplementedError

    def answer(self, probabilities: torch.Tensor, place: Place) -> dict[str, np.ndarray]:
        """One image's probabilities in its own pixels (boxes, masks), as arrays that models can average."""
        return {"probabilities": probabilities.numpy()}

    def fields(self, answer: dict[str, np.ndarray], class_names: list[str]) -> dict:
        """What a user reads of an answer: a label and each class's probability; labels; a box; masks."""
        raise NotImplementedError

    def rows(self, image: str, fields: dict) -> list[dict]:
        """An answer's rows in `hpsearch predict`'s CSV: one per image, with its fields flattened."""
        return [{"image": image, **{k: v for k, v in fields.items() if k != "probabilities"},
                 **{f"p_{c}": p for c, p in fields["probabilities"].items()}}]


@dataclasses.dataclass
class PerClass(Task):
    """A task whose outputs are a logit per class (per class and pixel, for masks), each class a yes or no of its
    own: its classes are those with masks (Severstal's defect types), and a class is present where its sigmoid
    reaches the threshold."""

    threshold: float = 0.5  # a class (or a pixel of its mask) is predicted where its probability reaches this

    def class_names(self, decoded: Decoded) -> list[str]:
        return decoded.mask_classes

    def constant(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        return torch.logit(targets.float().mean(0).clamp(1e-4, 1 - 1e-4))  # each class (and pixel): its commoner answer

    def right_answers(self, targets: torch.Tensor, class_names: list[str]) -> torch.Tensor:
        return self.logits(targets.float())

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().sigmoid()

    def logits(self, probabilities: torch.Tensor) -> torch.Tensor:
        return torch.logit(probabilities.clamp(1e-6, 1 - 1e-6))
