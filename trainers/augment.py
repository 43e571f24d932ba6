"""Augmentations applied to a whole batch at once, on the device that trains.

Each image in the batch draws its own strength. Geometric changes are one affine warp whose
matrices are returned, so a task whose targets have a position (boxes, masks) can follow them.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

# RGB <-> YIQ: a hue shift is a rotation of the I/Q plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


@dataclass(frozen=True)
class Augment:
    brightness: float = 0.0  # each image is scaled by a factor in [1 - brightness, 1 + brightness]
    hue: float = 0.0  # hue turned by up to this fraction of a full turn
    translate: float = 0.0  # shift by up to this fraction of the image side, each axis
    contrast: float = 0.0  # with saturation, torchvision's ColorJitter: a factor in [1 - c, 1 + c]
    saturation: float = 0.0
    blur: float = 0.0  # the share of images blurred (GaussianBlur, sigma 0.1 to 2 per batch)
    sharpen: float = 0.0  # the share of images sharpened (RandomAdjustSharpness, factor 2)
    flip_h: bool = False  # each image mirrored left-right with probability 1/2
    flip_v: bool = False  # and upside down

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (N, 3, H, W) floats in [0, 1]. Returns the batch and the affine matrices used (or None)."""
        if self.brightness:
            x = x * _uniform(len(x), self.brightness, gen, x).view(-1, 1, 1, 1)
        if self.contrast:
            x = _blend(x, x.mean(dim=(1, 2, 3), keepdim=True), _uniform(len(x), self.contrast, gen, x))
        if self.saturation:
            x = _blend(x, TF.rgb_to_grayscale(x.clamp(0, 1)), _uniform(len(x), self.saturation, gen, x))
        if self.hue:
            x = _turn_hue(x, _uniform(len(x), self.hue, gen, x, center=0.0) * 2 * torch.pi)
        if self.blur:
            sigma = 0.1 + 1.9 * torch.rand((), generator=gen, device=x.device).item()
            side = min(2 * math.ceil(3 * sigma) + 1, (min(x.shape[-2:]) - 1) | 1)
            x = _some(x, TF.gaussian_blur(x, [side, side], [sigma, sigma]), self.blur, gen)
        if self.sharpen:
            x = _some(x, TF.adjust_sharpness(x.clamp(0, 1), 2.0), self.sharpen, gen)
        theta = self._affine(x, gen)
        if theta is not None:
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return x.clamp_(0, 1), theta

    def _affine(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        """Flips and shifts as one affine matrix per image, so that positions in the targets can follow."""
        if not (self.translate or self.flip_h or self.flip_v):
            return None
        theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        for axis, flip in ((0, self.flip_h), (1, self.flip_v)):
            if flip:
                theta[:, axis, axis] = 1 - 2 * (torch.rand(len(x), generator=gen, device=x.device) < 0.5).to(x.dtype)
        if self.translate:  # affine_grid works in [-1, 1] coordinates, so a shift of one side is 2
            theta[:, :, 2] = 2 * self.translate * (2 * torch.rand(len(x), 2, generator=gen, device=x.device) - 1)
        return theta


def _uniform(n: int, spread: float, gen: torch.Generator, like: torch.Tensor, center: float = 1.0) -> torch.Tensor:
    return center + spread * (2 * torch.rand(n, generator=gen, device=like.device, dtype=like.dtype) - 1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """x at `factor` (per image) away from `other`: 0 gives other, 1 gives x (torchvision's _blend)."""
    return other + factor.view(-1, 1, 1, 1) * (x - other)


def _some(x: torch.Tensor, changed: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    picked = torch.rand(len(x), generator=gen, device=x.device) < share
    return torch.where(picked.view(-1, 1, 1, 1), changed, x)


def _turn_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    turn = torch.zeros(len(x), 3, 3, device=x.device, dtype=x.dtype)
    turn[:, 0, 0] = 1
    turn[:, 1, 1], turn[:, 1, 2], turn[:, 2, 1], turn[:, 2, 2] = cos, -sin, sin, cos
    to_yiq, to_rgb = _RGB_TO_YIQ.to(x), _YIQ_TO_RGB.to(x)
    matrix = to_rgb @ turn @ to_yiq  # (N, 3, 3)
    return torch.einsum("nij,njhw->nihw", matrix, x)
