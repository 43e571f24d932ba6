"""Use a trained model: rebuild it from its card (model.json) and weights, feed it images prepared exactly
as its training images were (decoding, region of interest, resize, normalisation), and answer in each
image's own pixels. Several models answer as one (an ensemble) by averaging those answers."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.errors import InputError
from trainers.images import PER_IMAGE_BOX, BadImage, decode
from trainers.loop import IMAGENET_MEAN, IMAGENET_STD, TrainConfig, autocast, load_weights
from trainers.tasks import Place, Task, get_task

BATCH = 64  # images per forward pass


@dataclass
class Predictor:
    card: dict  # the model card: space, task, task_options, config, class_names, image_size, resize, crop, normalize
    task: Task
    model: torch.nn.Module
    device: torch.device

    @classmethod
    def load(cls, card: dict, weights: Path, device: torch.device) -> Predictor:
        task = get_task(card["task"], **card.get("task_options", {}))
        config = TrainConfig(**{**card["config"], "hidden": tuple(card["config"]["hidden"]), "pretrained": False})
        model = task.create_model(config.model, task.num_outputs(card["class_names"]), hidden=config.hidden)
        model.load_state_dict(load_weights(weights))
        return cls(card, task, model.to(device).eval(), device)

    @property
    def class_names(self) -> list[str]:
        return self.card["class_names"]

    @property
    def preparation(self) -> tuple:
        """Models with the same preparation take the same decoded images."""
        return self.card["image_size"], self.card["resize"], str(self.card["crop"])

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        norm = self.card["normalize"]
        return (IMAGENET_MEAN, IMAGENET_STD) if norm == "imagenet" else (tuple(norm["mean"]), tuple(norm["std"]))

    def prepare(self, source, box=None, max_pixels: int | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """An image (a path, a binary file or bytes) as the model saw its training images (uint8, 3 x size x size),
        and its original size. `box`: the region of interest in pixels, for a model trained on images cut to
        their manifest boxes."""
        per_image = self.card["crop"] == PER_IMAGE_BOX
        if per_image and box is None:
            raise InputError("this model saw each image cut to its own box: give the box of every image")
        crop = None if per_image else self.card["crop"]
        source = io.BytesIO(source) if isinstance(source, bytes) else source
        pixels, original = decode(source, self.card["image_size"], self.card["resize"], crop, box, max_pixels)
        return torch.from_numpy(np.array(pixels)).permute(2, 0, 1), original  # a writable copy

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Outputs for a batch of uint8 images (N, 3, size, size), in float32 on the CPU."""
        mean, std = (torch.tensor(v, device=self.device).view(1, 3, 1, 1) for v in self.mean_std)
        outputs = []
        for batch in images.split(BATCH):
            with autocast(self.device):
                outputs.append(self.model((batch.to(self.device).float() / 255 - mean) / std).float().cpu())
        return torch.cat(outputs)

    def place(self, original: tuple[int, int]) -> Place:
        return Place(*original, self.card["image_size"], self.card["resize"], self.card["crop"])


class Ensemble:
    """One or more predictors of the same task and classes, answering as one: each image is prepared as each
    model saw its training images (architectures and image sizes may differ), each model's probabilities are
    taken to the image's own pixels, and the answers averaged."""

    def __init__(self, predictors: list[Predictor]):
        first = predictors[0]
        for other in predictors[1:]:
            if (other.card["task"], other.class_names) != (first.card["task"], first.class_names):
                raise InputError(f"these models do not answer the same question: {first.card['task']} over "
                                 f"{first.class_names} and {other.card['task']} over {other.class_names}")
        self.predictors = predictors

    @property
    def task(self) -> Task:
        return self.predictors[0].task

    @property
    def class_names(self) -> list[str]:
        return self.predictors[0].class_names

    def answer(self, sources: list, max_pixels: int | None = None) -> tuple[list[dict | None], list[BadImage | None]]:
        """For each source (a path, or bytes), its fields, or None and the reason it was left out."""
        prepared = {}  # each image decoded once per distinct preparation
        for predictor in self.predictors:
            if predictor.preparation not in prepared:
                prepared[predictor.preparation] = [_prepare(predictor, s, max_pixels) for s in sources]
        problems = [next((p[i] for p in prepared.values() if isinstance(p[i], BadImage)), None) for i in range(len(sources))]
        good = [i for i, problem in enumerate(problems) if problem is None]
        total = [None] * len(sources)
        for predictor in self.predictors:
            images = prepared[predictor.preparation]
            if not good:
                break
            probabilities = predictor.task.probabilities(predictor(torch.stack([images[i][0] for i in good])))
            for row, i in enumerate(good):
                answer = predictor.task.answer(probabilities[row], predictor.place(images[i][1]))
                total[i] = answer if total[i] is None else {k: total[i][k] + v for k, v in answer.items()}
        n = len(self.predictors)
        fields = [self.task.fields({k: v / n for k, v in a.items()}, self.class_names) if a is not None else None for a in total]
        return fields, problems


def _prepare(predictor: Predictor, source, max_pixels):
    try:
        return predictor.prepare(source, max_pixels=max_pixels)
    except BadImage as err:
        return err
