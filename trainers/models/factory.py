"""Building a model by name: our own backbones (trainers.models.ours) or any timm model, each ending in pooled
features plus one shared head, so that the head (and, through the task, the loss) is the same whatever
backbone a trial picks."""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.models import group_parameters
from torch import nn

from trainers.errors import InputError
from trainers.models.registry import MODELS, is_ours


class WeightsUnavailable(InputError):
    """Pretrained weights were asked for and cannot be had."""


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


def spatial(name: str, backbone: nn.Module) -> nn.Module:
    """`backbone` with its global average pooling swapped for SpatialPool: its features say where too."""
    if isinstance(backbone, nn.Sequential) and isinstance(backbone[-2], nn.AdaptiveAvgPool2d):
        net = nn.Sequential(*backbone[:-2], SpatialPool())
    elif hasattr(backbone, "reset_classifier"):  # timm: keep the feature map, drop its pooling
        backbone.reset_classifier(0, global_pool="")
        net = nn.Sequential(backbone, SpatialPool())
    else:
        raise InputError(f"model {name!r} pools its features its own way: it cannot give positions; pick another")
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


def create_model(name: str, num_outputs: int, *, pretrained: bool = False, weights: str | Path | None = None,
                 trainable_blocks: int | None = None, hidden: tuple[int, ...] = ()) -> Classifier:
    """Build `name` (its backbone: create_backbone) with a head of `num_outputs`, after `hidden` layers; the head
    always trains."""
    return Classifier(create_backbone(name, pretrained=pretrained, weights=weights, trainable_blocks=trainable_blocks),
                      num_outputs, hidden)


def create_backbone(name: str, *, pretrained: bool = False, weights: str | Path | None = None,
                    trainable_blocks: int | None = None) -> nn.Module:
    """The backbone `name`, giving pooled features.

    pretrained: for timm models, load ImageNet weights from `weights` (a file, or a folder holding `<name>.safetensors`,
    `<name>.pth` or `<name>/model.safetensors`) or else timm's own loading (its local cache when offline).
    trainable_blocks: freeze all but the backbone's last N blocks (for a model that starts trained: the caller
    says so by giving N).
    """
    if is_ours(name) or not timm.is_model(name):  # ours (and unknown names, which MODELS refuses in one line)
        backbone = MODELS.get(name)()  # no ImageNet weights: ours start from scratch, or from weights of their own
    else:
        backbone = _timm_backbone(name, pretrained, weights)
    if trainable_blocks is not None:
        freeze_all_but_last(backbone, trainable_blocks)
    return backbone


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
    """Freeze every parameter except those of the last `n` blocks."""
    groups = blocks(backbone)
    trainable = {p for names in groups[len(groups) - n :] for p in names} if n > 0 else set()
    for pname, param in backbone.named_parameters():
        param.requires_grad = pname in trainable


def blocks(backbone: nn.Module) -> list[list[str]]:
    """A backbone's blocks, first to last, as lists of parameter names: timm's fine-grained groups; for ours,
    each convolution with the layers after it up to the next one (a convolution and its batch norm)."""
    if hasattr(backbone, "group_matcher"):
        return list(group_parameters(backbone, backbone.group_matcher(coarse=False)).values())
    groups: list[list[str]] = []
    for prefix, module in backbone.named_modules():
        own = [f"{prefix}.{p}" if prefix else p for p, _ in module.named_parameters(recurse=False)]
        if isinstance(module, nn.Conv2d) or (own and not groups):
            groups.append([])
        if own:
            groups[-1] += own
    return [g for g in groups if g]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total)"""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
