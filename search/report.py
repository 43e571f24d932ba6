"""What a study found, as text tables and CSV."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

SHOW_SKIPPED = 5


def format_table(table: dict[str, dict[str, float]]) -> str:
    """Rows are splits (train / valid / test), columns are their metrics but the loss, as a Markdown table."""
    columns = [name for name in next(iter(table.values())) if name != "loss"]
    lines = ["|       | " + " | ".join(columns) + " |", "| ----- |" + " ---: |" * len(columns)]
    for split, metrics in table.items():
        lines.append(f"| {split:5s} | " + " | ".join(f"{metrics[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)


def skipped_summary(skipped: list[tuple[str, str]]) -> list[str]:
    """A count by reason and the first few paths: what the scan left out, before any training."""
    if not skipped:
        return []
    reasons = Counter(reason.split(" (")[0] for _, reason in skipped)
    lines = [f"left out {len(skipped)} file(s): " + ", ".join(f"{n} {r}" for r, n in reasons.most_common())]
    lines += [f"  {path}: {reason}" for path, reason in skipped[:SHOW_SKIPPED]]
    if len(skipped) > SHOW_SKIPPED:
        lines.append(f"  ... and {len(skipped) - SHOW_SKIPPED} more")
    return lines


def best_summary(study: optuna.Study, storage, artifacts: Path) -> str:
    """The best trial's parameters, facts, test table, and where each of its files lies in the artifact store."""
    best = study.best_trial
    lines = [f"study {study.study_name!r}: best trial {best.number}, value {best.value:.4f}"]
    lines += [f"  {k} = {short_value(v)}" for k, v in best.params.items()]
    for key in ("total_params", "trainable_params", "best_epoch", "epochs_run", "folds_run", "inference_ms_per_image",
                "seconds", "device"):
        if key in best.user_attrs:
            lines.append(f"  {key}: {best.user_attrs[key]}")
    files = sorted(get_all_artifact_meta(best, storage=storage), key=lambda meta: meta.filename)
    lines += [f"  {meta.filename}: {artifacts / meta.artifact_id}" for meta in files]
    evaluation = study.user_attrs.get("best_evaluation")
    if evaluation and evaluation["trial"] == best.number:
        lines.append(format_table(evaluation["table"]))
    return "\n".join(lines)


def short_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def status_summary(study: optuna.Study, wanted: int | None) -> str:
    """Trials by state, the best so far, trials per hour and the time left to `wanted` finished trials."""
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    lines = [f"study {study.study_name!r}: " + (", ".join(f"{n} {s}" for s, n in states.most_common()) or "no trials")]
    if any(t.state == TrialState.COMPLETE for t in trials):
        lines.append(f"best so far: {study.best_value:.4f} (trial {study.best_trial.number}) {study.best_trial.params}")
    ended = sorted(t.datetime_complete for t in trials if t.datetime_complete)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    if ended:
        hours = max((ended[-1] - min(starts)).total_seconds() / 3600, 1e-9)
        rate = len(ended) / hours
        lines.append(f"{rate:.1f} trials per hour")
        finished = states["complete"] + states["pruned"]
        if wanted and finished < wanted:
            lines.append(f"{finished} of {wanted} finished; about {(wanted - finished) / rate * 60:.0f} minutes to go")
    return "\n".join(lines)


def export_csv(study: optuna.Study, path: Path) -> int:
    frame = study.trials_dataframe()
    frame.to_csv(path, index=False)
    return len(frame)


def space_distributions(space) -> dict[str, optuna.distributions.BaseDistribution]:
    """The hyperparameters a space searches, read from its own suggest() on a throwaway trial."""
    trial = optuna.create_study().ask()
    space.suggest(trial)
    return trial.distributions


def describe_space(space) -> str:
    return "; ".join(f"{name}: {describe_distribution(d)}" for name, d in space_distributions(space).items())


def describe_distribution(d) -> str:
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        return " | ".join(map(str, d.choices))
    return f"{d.low:g} .. {d.high:g}" + (" (log)" if d.log else "")
