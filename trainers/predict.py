"""Use a trained model: rebuild it from its card (model.json) and weights, and feed it image files
prepared exactly as in training (region of interest, resize, normalisation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.images import PER_IMAGE_BOX, decode
from trainers.loop import IMAGENET_MEAN, IMAGENET_STD, TrainConfig, load_weights
from trainers.tasks import Task, get_task


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

    def prepare(self, path, box=None) -> tuple[torch.Tensor, tuple[int, int]]:
        """An image file as the model saw its training images (uint8, 3 x size x size), and its original size.
        `box`: the region of interest in pixels, for a model trained on images cut to their manifest boxes."""
        per_image = self.card["crop"] == PER_IMAGE_BOX
        if per_image and box is None:
            raise ValueError("this model saw each image cut to its own box: give the box of every image")
        crop = None if per_image else self.card["crop"]
        pixels, original = decode(path, self.card["image_size"], self.card["resize"], crop, box)
        return torch.from_numpy(np.array(pixels)).permute(2, 0, 1), original  # a writable copy

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Outputs for a batch of uint8 images (N, 3, size, size), in float32 on the CPU."""
        norm = self.card["normalize"]
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if norm == "imagenet" else (norm["mean"], norm["std"])
        mean, std = (torch.tensor(v, device=self.device).view(1, 3, 1, 1) for v in (mean, std))
        x = (images.to(self.device).float() / 255 - mean) / std
        return self.model(x).float().cpu()
