"""The front of a study: the completed trials that no other completed trial beats on the metric, the latency
and the size at once (as good or better on all three, better on one). Every trial records its costs
(trainers/costs.py), so every study has a front, whatever it maximized."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import record

# each compared figure, as a number to maximize
FIGURES = {"value": lambda t: t.value, "ms": lambda t: -t.user_attrs[record.COSTS]["ms"],
           "mb": lambda t: -t.user_attrs[record.COSTS]["mb"]}


def _beats(a: tuple, b: tuple) -> bool:
    return all(x >= y for x, y in zip(a, b)) and a != b


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The front, most accurate first."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if record.COSTS in t.user_attrs]
    scores = {t.number: tuple(figure(t) for figure in FIGURES.values()) for t in done}
    front = [t for t in done if not any(_beats(scores[o.number], scores[t.number]) for o in done)]
    return sorted(front, key=lambda t: (-t.value, t.number))


def limits(study: optuna.Study) -> dict[str, float]:
    """The cost limits the study's trials were held to (a cost minus its constraint value), by cost name."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if trial.constraints and record.COSTS in trial.user_attrs:
            return {name: trial.user_attrs[record.COSTS][name] - value for name, value in trial.constraints.items()}
    return {}


def front_table(study: optuna.Study, metric: str) -> str:
    """`hpsearch front`: the front as a Markdown table, the study's limits said above it."""
    front = front_trials(study)
    if not front:
        return f"study {study.study_name!r} has no completed trial with its costs recorded yet"
    held = limits(study)
    lines = [f"study {study.study_name!r}: {len(front)} trial(s) that no other beats on valid {metric}, ms and MB at once"]
    if held:
        lines.append("limits: " + ", ".join(f"{name} <= {limit:g}" for name, limit in held.items()))
    lines += ["", f"| trial | valid {metric} | ms | images/s | parameters | MB | FLOPs |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t in front:
        c = t.user_attrs[record.COSTS]
        lines.append(f"| {t.number} | {t.value:.4f} | {c['ms']:.3g} | {c['throughput']:,.0f} | {c['params']:,} | "
                     f"{c['mb']:.3g} | {c['flops']:,} |")
    lines.append(f"\ncosts measured on {front[0].user_attrs[record.COSTS]['device']}, ms per image at batch 1, images/s at "
                 f"batch 32 (see the README's \"What a model costs\")")
    return "\n".join(lines)
