"""Optuna marks some of what hpsearch uses experimental (multivariate TPE, the Wilcoxon pruner, the heartbeat
and its retries): chosen on purpose, and no news to a user. One way to quiet those warnings, on the ground
floor, so that the storage and the study's rules both use it."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import optuna


@contextmanager
def experimental():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
