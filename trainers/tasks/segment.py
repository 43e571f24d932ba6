"""Segmentation: a mask per class (Severstal: where each defect type is). A U-Net from
segmentation_models_pytorch on any of its encoders, trained with Dice + binary cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.models import load_state_dict

from trainers.cache import Decoded
from trainers.errors import InputError
from trainers.images import mask_to_original
from trainers.models import find_weights_file, weights_error
from trainers.rle import rle_encode
from trainers.tasks.multilabel import SEVERSTAL
from trainers.tasks.registry import register_task
from trainers.tasks.task import PerClass


@register_task
@dataclass
class Segment(PerClass):
    name = "segment"
    pictures = ("masks",)  # the most and least accurate test images, drawn (search.review.pictures)
    outputs = "(N, classes, size, size): a logit per class and pixel of the square input; masks where the sigmoid reaches the threshold"
    data_format = SEVERSTAL + "; a mask per class"
    decoder_width: int = 16  # channels of the U-Net decoder's last stage; each stage up doubles them
    shaped_by = ("decoder_width",)

    def encode(self, decoded: Decoded, class_names: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.array(decoded.masks)).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W) uint8

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from segmentation_models_pytorch.losses import DiceLoss

        outputs, targets = outputs.float(), targets.float()
        dice = DiceLoss(mode="multilabel", from_logits=True)(outputs, targets)
        return dice + F.binary_cross_entropy_with_logits(outputs, targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """dice: per class over every pixel of the split, averaged over the classes that occur in it.
        dice_images: Severstal's score, the mean over (image, class) pairs, an empty pair counting 1."""
        predicted, truth = outputs.sigmoid() >= self.threshold, targets.bool()
        overlap = (predicted & truth).sum(dim=(2, 3)).double()  # (N, C)
        sizes = predicted.sum(dim=(2, 3)).double() + truth.sum(dim=(2, 3)).double()
        per_pair = torch.where(sizes > 0, 2 * overlap / sizes.clamp_min(1), torch.ones_like(sizes))
        occurs = truth.sum(dim=(0, 2, 3)) > 0
        per_class = 2 * overlap.sum(0) / sizes.sum(0).clamp_min(1)
        return {
            "loss": self.loss(outputs, targets).item(),
            "dice": per_class[occurs].mean().item() if occurs.any() else float(per_pair.mean()),
            "dice_images": per_pair.mean().item(),
        }

    def answer(self, probabilities: torch.Tensor, place) -> dict[str, np.ndarray]:
        """Each class's probability map on the image's own pixels (C, height, width)."""
        return {"masks": np.stack([mask_to_original(m, place.width, place.height, place.resize, place.crop, Image.BILINEAR)
                                   for m in probabilities.numpy()])}

    def fields(self, answer: dict[str, np.ndarray], class_names: list[str]) -> dict:
        """Severstal's run-length masks, one per class found."""
        masks = [(c, rle_encode(m >= self.threshold)) for c, m in zip(class_names, answer["masks"])]
        return {"masks": [{"class": c, "rle": rle} for c, rle in masks if rle]}

    def rows(self, image: str, fields: dict) -> list[dict]:
        """Severstal's rows: one per class found, its mask run-length encoded."""
        return [{"ImageId": image, "ClassId": m["class"], "EncodedPixels": m["rle"]} for m in fields["masks"]]

    def warp_targets(self, targets: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """The masks moved exactly as their images were (same grid, same reflection), nearest pixel."""
        grid = F.affine_grid(theta, list(targets.shape), align_corners=False)
        return F.grid_sample(targets.to(theta.dtype), grid, mode="nearest", padding_mode="reflection",
                             align_corners=False).to(targets.dtype)

    def create_model(self, name: str, num_outputs: int, *, pretrained: bool = False, weights=None, **_) -> torch.nn.Module:
        """`name` is a segmentation_models_pytorch encoder (resnet18, mobilenet_v2, efficientnet-b0, tu-<timm name>)."""
        import segmentation_models_pytorch as smp

        width = self.decoder_width
        options = dict(encoder_name=name, classes=num_outputs, decoder_channels=[16 * width, 8 * width, 4 * width, 2 * width, width])
        try:
            model = smp.Unet(encoder_weights=None, **options)
        except KeyError as err:
            raise InputError(f"unknown segmentation encoder {name!r}: use a segmentation_models_pytorch encoder name") from err
        if pretrained:
            path = find_weights_file(name, weights) if weights else None
            try:
                if path is None:
                    return smp.Unet(encoder_weights="imagenet", **options)  # smp downloads them
                model.encoder.load_state_dict(load_state_dict(str(path)))  # timm reads .safetensors and .pth alike
            except Exception as err:  # offline, or a file that is not this encoder's weights
                raise weights_error(name, path, err) from err
        return model

