"""The models a study's cost limits rule out before it draws a trial (`hpsearch run --max-ms/--max-params/
--max-mb`). Where a choice of the space's `model` parameter fixes the architecture whatever else is drawn
(no searched head or decoder), its costs are known before any trial: measured once (as trials measure
theirs, kept on the study), a model over a limit is never drawn, and the trials go to the models that can
be deployed. (Replayed on checkbox's recorded curves with a 5 ms limit, the default search reached random
search's best feasible valid in fewer trials than when those models were drawn and skipped: README,
"Measured".) Where the architecture depends on other parameters too, each trial is still measured and
skipped on its own costs."""

from __future__ import annotations

import optuna

from search.study.setup import Run
from search.study.training import Training, drawn_configs
from spaces import Space

def models_over_limits(run: Run, study: optuna.Study | None) -> dict[str, str]:
    """The space's model choices that cannot meet the run's limits, each with the limit it breaks."""
    choices, limits = run.space.model_choices(), run.limits
    if not limits or not choices:
        return {}
    over, found = {}, architectures(run.space, run.training)
    for model in choices:  # in the space's order
        configs = found.get(model, {})
        if len(configs) == 1:
            config, task = next(iter(configs.values()))
            broken = limits.over(run.meter.costs(study, config, task))
            if broken:
                over[model] = broken
    return over


def architectures(space: Space, training: Training) -> dict[str, dict]:
    """For each model a random search over the space draws, its distinct architectures, each with a
    configuration (and task) that builds it."""
    found: dict[str, dict] = {}
    for config, task in drawn_configs(space, training):
        shape = (config.hidden, *(getattr(task, name) for name in task.shaped_by))
        found.setdefault(config.model, {}).setdefault(shape, (config, task))
    return found
