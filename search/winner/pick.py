"""`--pick RULE`: the trial a rule chooses among those whose weights are kept (and the K best ensembled, where
`hpsearch evaluate --ensemble K` measured them), by their costs and valid metrics (`hpsearch front` shows
which no other beats):

    best ms<=2                 the most accurate of those at most 2 ms per image
    fastest f1_weighted>=0.95  the fastest of those at valid f1_weighted 0.95 or more
    smallest accuracy>=0.9     the smallest (MB) of those at valid accuracy 0.9 or more

A condition names a cost (trainers.costs.KINDS) or a valid metric the trials recorded."""

from __future__ import annotations

import operator
import re

from optuna.trial import FrozenTrial

from search.objectives import metric_of, trial_figure
from search.record import TrialRecord
from trainers.costs import BY_NAME, LATENCY, SIZE
from trainers.errors import InputError

RULE = re.compile(r"^\s*(best|fastest|smallest)\s+(\w+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")
ORDER = {"best": lambda t: -metric_of(t), "fastest": lambda t: TrialRecord.read(t).costs[LATENCY],
         "smallest": lambda t: TrialRecord.read(t).costs[SIZE]}
COMPARE = {"<=": operator.le, ">=": operator.ge}
EXAMPLE = 'for example --pick "fastest f1_weighted>=0.95" or --pick "best ms<=2"'


def pick(trials: list[FrozenTrial], rule: str) -> FrozenTrial:
    """The trial of `trials` (completed, weights kept) that `rule` chooses; one line where none matches."""
    parsed = RULE.match(rule)
    if not parsed:
        raise InputError(f"--pick {rule!r}: say which and under what condition, {EXAMPLE}")
    order, name, compare, bound = parsed[1], parsed[2], COMPARE[parsed[3]], float(parsed[4])
    measured = [t for t in trials if TrialRecord.read(t).costs]
    if not any(trial_figure(t, name) is not None for t in measured):
        raise InputError(f"--pick {rule!r}: no kept trial records {name!r}: name a cost ({', '.join(BY_NAME)}) or a "
                         f"valid metric, {EXAMPLE}")
    matching = [t for t in measured if trial_figure(t, name) is not None and compare(trial_figure(t, name), bound)]
    if not matching:
        raise InputError(f"--pick {rule!r}: none of the {len(measured)} trials with kept weights and costs has {name} "
                         f"{parsed[3]} {bound:g}; see them with `hpsearch front`, or keep more with `run --keep`")
    return min(matching, key=lambda t: (ORDER[order](t), TrialRecord.read(t).ensemble is not None, t.number))  # ties: a single trial
