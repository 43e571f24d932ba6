"""From a data source to a split data set on the training device: discover, decode once, split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.cache import Decoded, decode_once
from trainers.data import SPLIT_FRACTIONS, Discovery, Split, discover, stratified_split
from trainers.datasets import builtin_path
from trainers.errors import InputError
from trainers.loop import TrainData
from trainers.tasks import Task

BUILTIN_PREFIX = "builtin:"
STREAM_ABOVE = 0.5  # images over this share of the GPU's free memory stay in host memory: models need the rest


@dataclass
class Prepared:
    found: Discovery
    decoded: Decoded
    split: Split
    labels: list[str]  # the labels the split is stratified by; a task's class names may differ (trainers.tasks)

    @property
    def fingerprint(self) -> str:
        return self.found.fingerprint

    @property
    def split_digest(self) -> str:
        return self.split.digest(self.decoded.items)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per label in each split."""
        table = {s: dict.fromkeys(self.labels, 0) for s in ("train", "valid", "test")}
        for item, s in zip(self.decoded.items, self.split.assignment):
            table[s][item.label] += 1
        return table


def resolve_source(source: str) -> Path:
    """'builtin:NAME' is a built-in data set's folder, 'builtin:NAME/FILE' a file in it; anything else a path."""
    if source.startswith(BUILTIN_PREFIX):
        name, _, rest = source[len(BUILTIN_PREFIX) :].partition("/")
        return builtin_path(name) / rest
    return Path(source)


@dataclass(frozen=True)
class Splitting:
    """How images are split into train, valid and test: the fractions, stratified by label, shuffled by the seed."""

    fractions: tuple[float, float, float] = SPLIT_FRACTIONS
    seed: int = 0


def prepare(source: str | Discovery, size: int, resize: str, *, crop: tuple[float, float, float, float] | None = None,
            splitting: Splitting = Splitting(), progress: bool = True) -> Prepared:
    """Decode (once) to `size` by `resize`, and split; `source` may be a Discovery already made, to check its
    fingerprint first. `crop` keeps a region of interest of every image (fractions: left, top, right, bottom)."""
    found = source if isinstance(source, Discovery) else discover(resolve_source(source))
    decoded = decode_once(found, size, resize, progress=progress, crop=crop)
    lost = sorted({i.label for i in found.items} - {i.label for i in decoded.items})
    if lost:  # quietly, a classifier with a class fewer would be trained
        why = dict(decoded.skipped)
        path = next(i.relpath for i in found.items if i.label == lost[0])
        raise InputError(f"every image of class {lost[0]!r} was left out (e.g. {path}: {why[path]}): "
                         f"replace them, or remove the class")
    split = stratified_split(decoded.items, splitting.fractions, splitting.seed)
    return Prepared(found, decoded, split, sorted({i.label for i in decoded.items}))


def to_device(prepared: Prepared, task: Task, device: torch.device) -> TrainData:
    """The data on the training device; on a GPU where it does not fit, in pinned host memory, from which
    each batch is copied (TrainData.pixels), rather than the run failing."""
    # (N, H, W, 3) -> an (N, 3, H, W) view: channels-last in memory, as convolutions like it on the GPU
    images = torch.from_numpy(np.array(prepared.decoded.images)).permute(0, 3, 1, 2)
    stream = device.type == "cuda" and images.nbytes > STREAM_ABOVE * torch.cuda.mem_get_info(device)[0]
    images = images.pin_memory() if stream else images.to(device)
    splits = {s: torch.from_numpy(prepared.split.indices(s)).to(device) for s in ("train", "valid", "test")}
    mean, std = channel_stats(images, splits["train"].to(images.device))
    class_names = task.class_names(prepared.decoded)
    targets = task.encode(prepared.decoded, class_names).to(device)
    return TrainData(images, targets, splits, class_names, mean, std, device if stream else None)


def channel_stats(images: torch.Tensor, rows: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] over `rows`, a chunk at a time to bound memory."""
    total = torch.zeros(3, dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for chunk in rows.split(1024):
        x = images[chunk].double().div_(255)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    n = len(rows) * images.shape[2] * images.shape[3]
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(1e-6).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
