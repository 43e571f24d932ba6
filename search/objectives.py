"""What a study optimizes: the space's valid metric alone (maximized), or, with `hpsearch run --objectives
f1_weighted,ms`, that metric and then costs (trainers.costs) or other valid metrics, each in its own
direction: a multi-objective study, searched by Optuna's multi-objective TPE. The names are the study's
metric names (Optuna's `set_metric_names`), which the dashboard shows on its axes.

A study's front is the completed trials that no other completed trial beats on the metric, the latency
and the size (and a multi-objective study's other objectives) at once: as good or better on each, better on
one. Every trial records its costs (trainers.costs), so every study has a front, whatever it optimized.

The space's metric is every trial's first value, in single- and multi-objective studies alike, so that
`best`, `--keep` and the winner's commands rank trials by it the same way (`metric_of`, `best_trial`)."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

from search import record
from search.record import TrialRecord
from trainers.costs import BY_NAME, KINDS, LATENCY, SIZE
from trainers.errors import InputError


def parse(text: str, metric: str, known_metrics: list[str]) -> list[str]:
    """`--objectives` as a list of names: the space's `metric` first, then costs or other valid metrics
    (`known_metrics`: those the task records), each once."""
    names = [name.strip() for name in text.split(",")]
    example = f"for example --objectives {metric},ms"
    unknown = [n for n in names if n not in BY_NAME and n not in known_metrics]
    if unknown:
        raise InputError(f"--objectives {text}: {unknown[0]!r} is neither a cost ({', '.join(BY_NAME)}) nor a "
                         f"valid metric this task records ({', '.join(known_metrics)}); {example}")
    if names[0] != metric or len(names) < 2 or len(set(names)) < len(names):
        raise InputError(f"--objectives {text}: name the space's metric {metric} first and then one or more other "
                         f"costs or metrics, each once; {example}")
    return names


def direction(name: str) -> str:
    """A cost's direction (trainers.costs.KINDS); every valid metric is maximized, its loss minimized."""
    return BY_NAME[name].direction if name in BY_NAME else "minimize" if name == "loss" else "maximize"


def figure(name: str, costs: dict, metrics: dict) -> float | None:
    """The figure of that name among a trial's costs and its best epoch's valid metrics; None where it has none."""
    return costs[name] if name in costs else metrics.get(f"valid_{name}")


def trial_figure(trial: FrozenTrial, name: str) -> float | None:
    recorded = TrialRecord.read(trial)
    return figure(name, recorded.costs or {}, recorded.best_metrics)


def objectives_of(study: optuna.Study) -> list[str] | None:
    """A multi-objective study's objectives; None for a study of one."""
    return study.metric_names if len(study.directions) > 1 else None


def metric_of(trial: FrozenTrial) -> float | None:
    """The space's metric that the trial reached (its first value; of a trial the time budget stopped, its best
    epoch's); None where it has none."""
    if record.BUDGET_VALUE in trial.user_attrs:
        return trial.user_attrs[record.BUDGET_VALUE]
    return trial.values[0] if trial.values else None


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that trained to a result (record.trained_trials) by their metric, best first; of equal values,
    the earlier first."""
    return sorted(record.trained_trials(study), key=lambda t: (-metric_of(t), t.number))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The completed trial of the highest metric (in a multi-objective study too, where it is on the front);
    None where none completed."""
    done = ranked(study)
    return done[0] if done else None


FRONT_COSTS = (LATENCY, SIZE)  # the costs every front weighs against the metric


def compared(study: optuna.Study) -> list[str]:
    """What the front weighs besides the metric: latency, size, and a multi-objective study's other objectives."""
    return list(dict.fromkeys([*FRONT_COSTS, *(objectives_of(study) or [])[1:]]))


def _score(names: list[str], value: float, costs: dict, metrics: dict) -> tuple[float, ...]:
    """A trial's metric and compared figures, each as a number to maximize."""
    return (value, *((1 if direction(n) == "maximize" else -1) * figure(n, costs, metrics) for n in names))


def _beats(a: tuple, b: tuple) -> bool:
    return all(x >= y for x, y in zip(a, b)) and a != b


def _scores(study: optuna.Study, names: list[str], candidates: list[FrozenTrial] = ()) -> list[tuple[FrozenTrial, tuple]]:
    done = [t for t in record.trained_trials(study) if TrialRecord.read(t).costs]
    read = [(t, TrialRecord.read(t)) for t in [*done, *candidates]]
    return [(t, _score(names, metric_of(t), r.costs, r.best_metrics)) for t, r in read]


def front_trials(study: optuna.Study, candidates: list[FrozenTrial] = ()) -> list[FrozenTrial]:
    """The front, most accurate first, of the completed trials and other `candidates` (an ensemble); of trials
    with the very same figures (one architecture, one metric), the first stands for them all."""
    scores = _scores(study, compared(study), candidates)
    front, seen = [], set()
    for t, mine in sorted(scores, key=lambda pair: (-metric_of(pair[0]), pair[0].number)):
        if mine not in seen and not any(_beats(other, mine) for _, other in scores):
            front.append(t)
            seen.add(mine)
    return front


def on_front(study: optuna.Study, value: float, costs: dict, metrics: dict) -> bool:
    """Whether a trial ending now with this metric, costs and best metrics joins the front of those completed (as
    a point of its own: one with the same figures stands for it already)."""
    names = compared(study)
    mine = _score(names, value, costs, metrics)
    return not any(_beats(other, mine) or other == mine for _, other in _scores(study, names))


def ensemble_costs(members: list[FrozenTrial]) -> dict:
    """What members ensembled cost: they run one after another on each image, each cost combined as its kind says
    (trainers.costs.KINDS: latencies, sizes and FLOPs add up; throughputs combine as 1 / sum(1 / each))."""
    costs = [TrialRecord.read(t).costs for t in members]
    shared = [kind for kind in KINDS if all(kind.name in c for c in costs)]  # a cost added later: where all have it
    return costs[0] | {kind.name: kind.ensemble([c[kind.name] for c in costs]) for kind in shared}


def ensemble_candidate(study: optuna.Study) -> FrozenTrial | None:
    """The ensemble `hpsearch evaluate --ensemble K` measured, as a candidate beside the trials: its value is
    its valid metric (never its test one), with its costs and valid metrics; None where none was measured."""
    ensemble = record.StudyRecord.read(study).ensemble
    if not ensemble:
        return None
    return optuna.trial.create_trial(
        value=ensemble["valid"][ensemble["metric"]],
        user_attrs={record.COSTS: ensemble["costs"], record.ENSEMBLE: ensemble["trials"],
                    record.BEST_METRICS: {f"valid_{k}": v for k, v in ensemble["valid"].items()}})


def name_of(trial: FrozenTrial) -> str:
    """A trial's number, or an ensemble candidate's members (`0+3+5`)."""
    members = TrialRecord.read(trial).ensemble
    return "+".join(map(str, members)) if members else str(trial.number)
