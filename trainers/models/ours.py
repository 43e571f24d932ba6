"""Our own backbones, registered by name: seed 001's small CNN and seed 004's attention CNN."""

from __future__ import annotations

import torch
from torch import nn

from trainers.models.registry import register_model


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


@register_model
def baseline() -> nn.Module:
    """Seed 001's small CNN: three conv blocks, strided convolutions instead of pooling.

    238,793 parameters with a 3-class head (the seed reports about 239K).
    """
    layers, c_in = [], 3
    for c_out in (32, 64, 110):
        layers += _conv_bn_relu(c_in, c_out, 1) + _conv_bn_relu(c_out, c_out, 2)
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    net = nn.Sequential(*layers)
    net.num_features = c_in
    return net


class _Attention(nn.Module):
    """Seed 004's attention block: local features (pool-3 or pool-4) and the global vector (pool-5),
    summed, reduced to one channel, softmax over the positions; returns the attended local vector."""

    def __init__(self, local_channels: int, channels: int):
        super().__init__()
        self.project = nn.Conv2d(local_channels, channels, 1, bias=False)  # to the global vector's width
        self.score = nn.Conv2d(channels, 1, 1)

    def forward(self, local: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        local = self.project(local)
        scores = self.score(local + g[:, :, None, None])  # the 1x1 global map, upsampled by broadcasting
        attention = scores.flatten(1).softmax(1).view_as(scores)
        return (attention * local).sum(dim=(2, 3)), attention


class AttentionCNN(nn.Module):
    """Five blocks of (conv-BN-ReLU) x 2 and a 2x2 max-pool; attention over pool-3 and pool-4 guided by
    pool-5's global vector; Kaiming-normal convolutions. Pools round up, so 16 px images work."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256, 256)):
        super().__init__()
        blocks, c_in = [], 3
        for c_out in widths:
            layers = _conv_bn_relu(c_in, c_out, 1) + _conv_bn_relu(c_out, c_out, 1)
            blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2, ceil_mode=True)))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.attend3, self.attend4 = _Attention(widths[2], widths[4]), _Attention(widths[3], widths[4])
        self.num_features = 2 * widths[4]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        for block in self.blocks:
            x = block(x)
            pooled.append(x)
        g = pooled[4].mean(dim=(2, 3))
        (a3, _), (a4, _) = self.attend3(pooled[2], g), self.attend4(pooled[3], g)
        return torch.cat([a3, a4], 1)


@register_model
def attention_cnn() -> nn.Module:
    return AttentionCNN()
