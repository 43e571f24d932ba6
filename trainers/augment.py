"""Augmentations applied to a whole batch at once, on the device that trains.

Each image in the batch draws its own strength. Geometric changes are one affine warp whose
matrices are returned, so a task whose targets have a position (boxes, masks) can follow them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# RGB <-> YIQ: a hue shift is a rotation of the I/Q plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


@dataclass(frozen=True)
class Augment:
    brightness: float = 0.0  # each image is scaled by a factor in [1 - brightness, 1 + brightness]
    hue: float = 0.0  # hue turned by up to this fraction of a full turn
    translate: float = 0.0  # shift by up to this fraction of the image side, each axis

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (N, 3, H, W) floats in [0, 1]. Returns the batch and the affine matrices used (or None)."""
        if self.brightness:
            x = x * _uniform(len(x), self.brightness, gen, x).view(-1, 1, 1, 1)
        if self.hue:
            x = _turn_hue(x, _uniform(len(x), self.hue, gen, x, center=0.0) * 2 * torch.pi)
        theta = None
        if self.translate:
            theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=x.dtype)
            theta[:, 0, 0] = theta[:, 1, 1] = 1
            # affine_grid works in [-1, 1] coordinates, so a shift of one side is 2
            theta[:, :, 2] = 2 * self.translate * (2 * torch.rand(len(x), 2, generator=gen, device=x.device) - 1)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return x.clamp_(0, 1), theta


def _uniform(n: int, spread: float, gen: torch.Generator, like: torch.Tensor, center: float = 1.0) -> torch.Tensor:
    return center + spread * (2 * torch.rand(n, generator=gen, device=like.device, dtype=like.dtype) - 1)


def _turn_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    turn = torch.zeros(len(x), 3, 3, device=x.device, dtype=x.dtype)
    turn[:, 0, 0] = 1
    turn[:, 1, 1], turn[:, 1, 2], turn[:, 2, 1], turn[:, 2, 2] = cos, -sin, sin, cos
    to_yiq, to_rgb = _RGB_TO_YIQ.to(x), _YIQ_TO_RGB.to(x)
    matrix = to_rgb @ turn @ to_yiq  # (N, 3, 3)
    return torch.einsum("nij,njhw->nihw", matrix, x)
