"""The registries of samplers and pruners (their definitions: search.study.strategy), by the name that
`hpsearch run --sampler` / `--pruner` and a space take."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.samplers import BaseSampler

from trainers.registry import Registry

# (seed, what a configuration is expected to take or None) -> sampler
SAMPLERS: Registry[Callable[[int, Callable[[dict], float] | None], BaseSampler]] = Registry("sampler")
PRUNERS: Registry[Callable[..., optuna.pruners.BasePruner]] = Registry("pruner")  # (epochs per trial, **options) -> pruner


def list_samplers() -> list[str]:
    return SAMPLERS.names()


def list_pruners() -> list[str]:
    return PRUNERS.names()
