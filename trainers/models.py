"""The model registry: our own small networks by name, and any timm model by its timm name.

Every model is a backbone that ends in pooled features plus one shared head, so that the
head (and, through the task, the loss) is the same whatever backbone a trial picks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import timm
import torch
from timm.models import group_parameters
from torch import nn

_OURS: dict[str, Callable[[], nn.Module]] = {}


class WeightsUnavailable(ValueError):
    """Pretrained weights were asked for and cannot be had."""


def register_model(fn: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Register a backbone builder under its function name. The backbone has `num_features`."""
    _OURS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_OURS)


def is_ours(name: str) -> bool:
    return name in _OURS


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


class SpatialPool(nn.Module):
    """Each channel's mean and its expected position (x, y in [-1, 1], a softmax over the positions).
    Global average pooling keeps what a network saw but not where; a head that must give a box needs both."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        weights = x.float().flatten(2).softmax(-1).view(n, c, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device)
        ys = torch.linspace(-1, 1, h, device=x.device)
        where = [(weights.sum(2) * xs).sum(-1), (weights.sum(3) * ys).sum(-1)]
        return torch.cat([x.float().mean(dim=(2, 3)), *where], 1).to(x.dtype)


def _spatial(name: str, backbone: nn.Module) -> nn.Module:
    """`backbone` with its global average pooling swapped for SpatialPool."""
    if isinstance(backbone, nn.Sequential) and isinstance(backbone[-2], nn.AdaptiveAvgPool2d):
        net = nn.Sequential(*backbone[:-2], SpatialPool())
    elif hasattr(backbone, "reset_classifier"):  # timm: keep the feature map, drop its pooling
        backbone.reset_classifier(0, global_pool="")
        net = nn.Sequential(backbone, SpatialPool())
    else:
        raise ValueError(f"model {name!r} pools its features its own way: it cannot give positions; pick another")
    net.num_features = 3 * backbone.num_features
    return net


class Classifier(nn.Module):
    """A backbone giving pooled features and the shared head: dropout, then hidden layers, then a linear layer."""

    def __init__(self, backbone: nn.Module, num_outputs: int, hidden: tuple[int, ...] = (), dropout: float = 0.2):
        super().__init__()
        self.backbone = backbone
        layers, width = [nn.Dropout(dropout)], backbone.num_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.head = nn.Sequential(*layers, nn.Linear(width, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def create_model(
    name: str,
    num_outputs: int,
    *,
    pretrained: bool = False,
    weights: str | Path | None = None,
    trainable_blocks: int | None = None,
    hidden: tuple[int, ...] = (),
    spatial: bool = False,
) -> Classifier:
    """Build `name` with a head of `num_outputs`; with `spatial`, the head also sees where features are (SpatialPool).

    pretrained: for timm models, load ImageNet weights from `weights` (a file, or a folder holding `<name>.safetensors`,
    `<name>.pth` or `<name>/model.safetensors`) or else timm's own loading (its local cache when offline).
    trainable_blocks: with pretrained weights, freeze all but the last N of timm's blocks; the head always trains.
    """
    if is_ours(name):  # our own models have no ImageNet weights: they always start from scratch
        backbone = _OURS[name]()
    elif not timm.is_model(name):
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(list_models())} or a timm model name")
    else:
        backbone = _timm_backbone(name, pretrained, weights)
        if pretrained and trainable_blocks is not None:
            freeze_all_but_last(backbone, trainable_blocks)
    return Classifier(_spatial(name, backbone) if spatial else backbone, num_outputs, hidden)


def _timm_backbone(name: str, pretrained: bool, weights: str | Path | None) -> nn.Module:
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=0)
    overlay = {"file": str(find_weights_file(name, weights))} if weights else None
    try:
        return timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
    except Exception as err:  # timm raises whatever its download path, or the file, raises
        raise weights_error(name, overlay["file"] if overlay else None, err) from err


def weights_error(name: str, path: str | Path | None, err: Exception) -> WeightsUnavailable:
    """One line for weights that would not load: from a file (not a state dict of this model), or from
    timm's or smp's own loading (offline: no download)."""
    text = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else ""  # its first sentence
    why = f"{type(err).__name__}: {text}" if text else type(err).__name__
    if path is not None:
        return WeightsUnavailable(f"weights file {path} could not be loaded into {name!r} ({why}): "
                                  f"give a state dict of {name!r} (.safetensors or .pth), or turn pretraining off")
    return WeightsUnavailable(f"pretrained weights for {name!r} could not be loaded ({why}): "
                              f"pass --weights FILE_OR_FOLDER with a local copy, or turn pretraining off")


def find_weights_file(name: str, weights: str | Path) -> Path:
    weights = Path(weights).expanduser()
    if weights.is_file():
        return weights
    candidates = [weights / f"{name}{ext}" for ext in (".safetensors", ".pth", ".bin")]
    candidates += [weights / name / f for f in ("model.safetensors", "pytorch_model.bin")]
    for path in candidates:
        if path.is_file():
            return path
    raise WeightsUnavailable(f"no weights for {name!r} in {weights}: expected {name}.safetensors or {name}.pth there")


def freeze_all_but_last(backbone: nn.Module, n: int) -> None:
    """Freeze every parameter except those of timm's last `n` blocks (its fine-grained groups)."""
    groups = list(group_parameters(backbone, backbone.group_matcher(coarse=False)).values())
    trainable = {p for names in groups[len(groups) - n :] for p in names} if n > 0 else set()
    for pname, param in backbone.named_parameters():
        param.requires_grad = pname in trainable


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total)"""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
