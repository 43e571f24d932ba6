"""The registry of our own backbones (trainers.models.ours); any other name is timm's."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from trainers.registry import Registry

MODELS: Registry[Callable[[], nn.Module]] = Registry("model", " or a timm model name")


def register_model(fn: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Register a backbone builder under its function name. The backbone has `num_features`."""
    return MODELS.register(fn)


def list_models() -> list[str]:
    return MODELS.names()


def is_ours(name: str) -> bool:
    return name in MODELS
