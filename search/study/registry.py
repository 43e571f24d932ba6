"""The registries of samplers and pruners (their definitions: search.study.strategy), by the name that
`hpsearch run --sampler` / `--pruner` and a space take."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.samplers import BaseSampler

from trainers.registry import Registry

SAMPLERS: Registry[Callable[[int], BaseSampler]] = Registry("sampler")  # seed -> sampler
PRUNERS: Registry[Callable[..., optuna.pruners.BasePruner]] = Registry("pruner")  # (epochs per trial, **options) -> pruner


def list_samplers() -> list[str]:
    return SAMPLERS.names()


def list_pruners() -> list[str]:
    return PRUNERS.names()
