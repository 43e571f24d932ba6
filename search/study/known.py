"""What a study knows before it draws: the space's default (the configuration its seed started from) in a new
study, then the parameter sets `--enqueue` names (a CSV or JSON file, or another study's K best), queued
before the sampler draws its own; and with `--learn-from`, another study's finished trials as the sampler's
history.

Each known set runs once: queued with Optuna's `skip_if_exists`, so that running the command again queues
nothing twice; and where processes that started together each queued a set, the later copy ends at once as
a duplicate (`duplicate_of`). Imported trials are marked (record.IMPORTED), and the study neither counts,
ranks nor keeps them (record.own_trials)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import FixedTrial, FrozenTrial, TrialState

from search import record
from search.objectives import objectives_of, ranked
from search.record import StudyRecord, TrialRecord
from search.storage import Location, load_study
from search.study.config import RunConfig
from trainers.errors import InputError

DEFAULT = "the space's default"


@dataclass(frozen=True)
class Known:
    params: dict
    source: str  # recorded on its trial (record.ENQUEUED): "the space's default", "sets.csv line 2", "study v1 trial 7"


def known_configurations(space, config: RunConfig, study_is_new: bool) -> list[Known]:
    """What to queue, checked against the space before any work: its default where the study is new (unless the
    user said --no-default-first), then --enqueue's sets, from a file where one has that name, else from the
    study of that name (in --from-storage, or the run's storage)."""
    enqueue, default_first = config.enqueue, not config.no_default_first
    known = [Known(checked(space, space.default, DEFAULT), DEFAULT)] if space.default and study_is_new and default_first else []
    if enqueue and Path(enqueue).is_file():
        known += [Known(checked(space, params, f"--enqueue {source}"), source) for params, source in _read_sets(Path(enqueue))]
    elif enqueue:
        study = other_study(enqueue, config.others)
        best = ranked(study)[:config.enqueue_top]
        if not best:
            raise InputError(f"--enqueue {enqueue}: study {enqueue!r} has no completed trial to take parameters from")
        known += [Known(checked(space, t.params, f"--enqueue study {enqueue!r} trial {t.number}"),
                        f"study {enqueue} trial {t.number}") for t in best]
    return known


@dataclass(frozen=True)
class Prior:
    """What a study is given before it draws: another study's trials as history, configurations to run first."""

    history: list[FrozenTrial] = field(default_factory=list)
    known: list[Known] = field(default_factory=list)

    def give(self, study: optuna.Study) -> None:
        learn(study, self.history)
        queue(study, self.known)


def queue(study: optuna.Study, known: list[Known]) -> None:
    """Queue each known configuration unless a trial of the study already has its parameters."""
    for k in known:
        study.enqueue_trial(k.params, user_attrs={record.ENQUEUED: k.source}, skip_if_exists=True)


def duplicate_of(trial: FrozenTrial, trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The earlier trial that was queued with the same parameters as `trial` and did not fail, if any."""
    fixed = trial.system_attrs.get("fixed_params")
    if not fixed or not TrialRecord.read(trial).enqueued:
        return None
    return next((t for t in trials if t.number < trial.number and t.state != TrialState.FAIL and TrialRecord.read(t).enqueued
                 and t.system_attrs.get("fixed_params") == fixed), None)


class _Checking(FixedTrial):
    """Answers the space's suggestions from given parameters, each read as its parameter's type (a CSV holds
    text), and says in words which one does not fit."""

    def __init__(self, params: dict, where: str):
        super().__init__(params)
        self._where = where

    def _suggest(self, name, distribution):
        from spaces.space import describe_distribution  # here: spaces bring torch, which a CLI's -h need not wait for

        if name not in self._params:
            raise InputError(f"{self._where}: no value for {name}, which the space chooses ({describe_distribution(distribution)})")
        value = _typed(self._params[name], distribution)
        if value is None or not distribution._contains(distribution.to_internal_repr(value)):
            raise InputError(f"{self._where}: {name}={self._params[name]} is not one the space can choose "
                             f"({describe_distribution(distribution)})")
        self._suggested_params[name], self._distributions[name] = value, distribution
        return value


def checked(space, params: dict, where: str) -> dict:
    """`params` as the space's parameters, of their own types; InputError naming what does not fit."""
    trial = _Checking(params, where)
    space.suggest(trial)
    unknown = sorted(params.keys() - trial.params.keys())
    if unknown:
        raise InputError(f"{where}: {', '.join(unknown)}: not a parameter the space chooses (it chooses "
                         f"{', '.join(trial.params)}); leave it out")
    return trial.params


def _typed(value, distribution):
    """`value` (maybe text) as a value of `distribution`, or None where it cannot be one."""
    if isinstance(distribution, CategoricalDistribution):
        return next((c for c in distribution.choices if c == value or str(c) == str(value)), None)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if isinstance(distribution, IntDistribution) and number.is_integer() else number


def _read_sets(path: Path) -> list[tuple[dict, str]]:
    """Parameter sets and where each came from: a JSON list of objects, or a CSV with a column per parameter,
    named as the space names it, or params_NAME as `hpsearch export --csv` writes it (its other columns ignored)."""
    try:
        if path.suffix.lower() == ".json":
            sets = json.loads(path.read_text())
            if not isinstance(sets, list) or not all(isinstance(s, dict) for s in sets):
                raise InputError(f"--enqueue {path}: a JSON file of parameter sets is a list of objects, "
                                 f'e.g. [{{"lr": 0.001, "batch_size": 32}}]')
            return [(s, f"{path.name} set {i}") for i, s in enumerate(sets, 1)]
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as err:
        raise InputError(f"--enqueue {path}: not a readable CSV or JSON file of parameter sets ({err})") from None
    exported = any(k.startswith("params_") for k in rows[0]) if rows else False
    sets = []
    for i, row in enumerate(rows, 2):  # the header is line 1
        params = {k.removeprefix("params_"): v for k, v in row.items()
                  if k and v not in ("", None) and (k.startswith("params_") or not exported)}
        if params:  # an exported trial that ended before it drew any (a surplus one) has none
            sets.append((params, f"{path.name} line {i}"))
    if not sets:
        raise InputError(f"--enqueue {path}: no parameter sets in it (a header line, then a line per set)")
    return sets


def other_study(name: str, where: Location, flag: str = "--enqueue") -> optuna.Study:
    try:
        return load_study(where, name, need_complete=False)
    except InputError as err:
        nofile = "no file of that name, and " if flag == "--enqueue" else ""
        raise InputError(f"{flag} {name}: {nofile}{err} (a study in another storage: --from-storage)") from None


def history_from(name: str | None, where: Location, space, objectives: list[str] | None) -> list[FrozenTrial]:
    """--learn-from: study `name`'s finished trials, as history for this study's sampler: their parameters,
    values, curves and constraints, each marked imported (their weights and files stay with that study).
    Refused where that study searched another space or other objectives: its values would mean other things."""
    if not name:
        return []
    other = other_study(name, where, "--learn-from")
    searched = StudyRecord.read(other).space
    if searched != space.name:
        raise InputError(f"--learn-from {name}: that study searched space {searched!r}, this one {space.name!r}: learn "
                         f"from a study of the same space")
    if objectives_of(other) != objectives:
        theirs, ours = (",".join(o) if o else f"{space.metric} alone" for o in (objectives_of(other), objectives))
        raise InputError(f"--learn-from {name}: that study optimizes {theirs}, this one {ours}: learn from a study of "
                         f"the same objectives")
    history = imported(other)
    if not history:
        raise InputError(f"--learn-from {name}: that study has no finished trial to learn from")
    return history


def imported(other: optuna.Study) -> list[FrozenTrial]:
    """`other`'s own finished trials, copied for another study and marked imported."""
    return [optuna.trial.create_trial(state=t.state, values=t.values, params=t.params, distributions=t.distributions,
                                      intermediate_values=t.intermediate_values, constraints=t.constraints or None,
                                      user_attrs={record.IMPORTED: f"study {other.study_name} trial {t.number}"})
            for t in record.own_trials(other, (TrialState.COMPLETE, TrialState.PRUNED))]


def learn(study: optuna.Study, history: list[FrozenTrial]) -> None:
    """Add the imported trials the study does not have yet (run again, it imports nothing twice)."""
    had = {TrialRecord.read(t).imported for t in study.get_trials(deepcopy=False)}
    study.add_trials([t for t in history if TrialRecord.read(t).imported not in had])
