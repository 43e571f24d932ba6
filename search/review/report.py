"""What a study found, as text tables and CSV."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import optuna
import pandas as pd
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import FrozenTrial, TrialState

from search import record
from search.declare import said_duration
from search.objectives import best_trial, metric_of
from search.record import StudyRecord, TrialRecord
from search.storage import Location
from trainers.costs import BY_NAME, LATENCY, CostLimits
from trainers.errors import InputError

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


def best_summary(study: optuna.Study, storage, where: Location, out: Path | None = None) -> str:
    """The best trial's parameters, facts, test table, and its files: where each lies in the artifact store
    (named by id there), or, with `out`, copied into that folder under its own name."""
    best = best_trial(study)
    if best is None:
        raise InputError(f"study {study.study_name!r} has no completed trial yet: see its trials with `hpsearch status`")
    lines = [f"study {study.study_name!r}: best trial {best.number}, value {metric_of(best):.4f}"]
    lines += [f"  {line}" for line in lineage_line(StudyRecord.read(study))]
    recorded = TrialRecord.read(best)
    if recorded.no_better_than_chance:
        lines.append(f"  warning: no better than chance: always giving the commonest answer scores "
                     f"{recorded.chance_level:.4f}; look at the data, the learning-rate range and the trials' notes")
    lines += [f"  {k} = {short_value(v)}" for k, v in best.params.items()]
    for key in (record.TOTAL_PARAMS, record.TRAINABLE_PARAMS, record.BEST_EPOCH, record.steps_run("epoch"),
                record.steps_run("fold"), record.INFERENCE_MS, record.SECONDS, record.DEVICE):
        if key in recorded.columns:
            lines.append(f"  {key}: {recorded.columns[key]}")
    files = sorted(get_all_artifact_meta(best, storage=storage), key=lambda meta: meta.filename)
    if out is None:
        artifacts = where.artifacts.resolve()
        lines += [f"  {meta.filename}: {artifacts / meta.artifact_id}" for meta in files]
        lines += ["  (`hpsearch best --out DIR` copies them into DIR under these names)"] if files else []
    else:
        out.mkdir(parents=True, exist_ok=True)
        for meta in files:
            with where.artifact_store(create=False).open_reader(meta.artifact_id) as reader, open(out / meta.filename, "wb") as f:
                shutil.copyfileobj(reader, f)
            lines.append(f"  {meta.filename}: {out / meta.filename}")
    evaluation = StudyRecord.read(study).best_evaluation
    if evaluation and evaluation["trial"] == best.number:
        lines.append(format_table(evaluation["table"]))
    lines += ensemble_line(study, best)
    return "\n".join(lines)


def lineage_line(recorded: StudyRecord) -> list[str]:
    """Where every trial of a study that fine-tunes an earlier model (--from) started."""
    start = recorded.started_from
    if not start:
        return []
    return [f"every trial started from study {start['study']!r} trial {start['trial']} ({start['model']}, valid "
            f"{recorded.metric or 'metric'} {start['valid']:.4f} there) in {start['storage']}"]


def limits_line(recorded: StudyRecord) -> list[str]:
    """The cost limits the study's latest run held its trials to (`run --max-ms`, ...)."""
    return [f"limits: {CostLimits(**recorded.limits).said()}"] if recorded.limits else []


def not_drawn_line(ruled_out: dict[str, str] | None) -> list[str]:
    """The models a study's limits kept from being drawn (search.study.feasible), each with the limit it breaks."""
    return [f"not drawn, over the limits whatever else a trial draws: {each_with_limit(ruled_out)}"] if ruled_out else []


def each_with_limit(ruled_out: dict[str, str]) -> str:
    return "; ".join(f"{model} ({why})" for model, why in ruled_out.items())


def ensemble_line(study: optuna.Study, best: FrozenTrial) -> list[str]:
    """The K best ensembled beside the best trial, as `hpsearch evaluate --ensemble K` measured them, compared
    by valid metric only (the test split stays for the final word)."""
    ensemble = StudyRecord.read(study).ensemble
    if not ensemble:
        return []
    metric, members, latency = ensemble["metric"], ensemble["trials"], BY_NAME[LATENCY]
    valid, ms = ensemble["valid"][metric], ensemble["costs"][LATENCY]
    single = (TrialRecord.read(best).costs or {}).get(LATENCY)
    verdict = ("better on valid than the best trial alone" if valid > metric_of(best) else "no better on valid than the best "
               "trial alone")
    against = f" against {single:{latency.form}}" if single else ""
    return [f"ensemble of trials {', '.join(map(str, members))} (`hpsearch evaluate --ensemble {len(members)}`): valid {metric} "
            f"{valid:.4f}, test {ensemble['test'][metric]:.4f}, {latency.show(ms)}{against}: {verdict}; use it with "
            f"--ensemble {len(members)} or --pick"]


def short_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def status_summary(study: optuna.Study, wanted: int | None = None) -> str:
    """Trials by state, the best so far, trials per hour and the time left to `wanted` finished trials
    (None: as many as the study's last run asked for)."""
    recorded = StudyRecord.read(study)
    wanted = wanted or recorded.trials_wanted
    trials = record.own_trials(study)
    states = Counter(t.state.name.lower() for t in trials)
    imported = len(study.get_trials(deepcopy=False)) - len(trials)
    lines = [f"study {study.study_name!r}: " + (", ".join(f"{n} {s}" for s, n in states.most_common()) or "no trials")
             + (f"; and {imported} imported from another study as the sampler's history (--learn-from)" if imported else "")]
    lines += lineage_line(recorded) + limits_line(recorded) + budget_line(recorded) + not_drawn_line(recorded.ruled_out)
    if record.trained_trials(study):
        best = best_trial(study)
        lines.append(f"best so far: {metric_of(best):.4f} (trial {best.number}) {best.params}")
    ended = sorted(t.datetime_complete for t in trials if t.datetime_complete)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    if ended:
        hours = max((ended[-1] - min(starts)).total_seconds() / 3600, 1e-9)
        rate = len(ended) / hours
        lines.append(f"{rate:.1f} trials per hour")
        finished = states["complete"] + states["pruned"]
        if wanted and finished < wanted:
            lines.append(f"{finished} of {wanted} finished; about {(wanted - finished) / rate * 60:.0f} minutes to go")
    lines += pruning_savings(recorded, trials)
    lines += by_worker(trials)
    return "\n".join(lines)


def budget_line(recorded: StudyRecord) -> list[str]:
    """The latest run's --timeout, and what is left of it."""
    if not recorded.budget:
        return []
    budget, left = recorded.budget, recorded.budget["deadline"] - time.time()
    end = datetime.fromtimestamp(budget["deadline"]).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return [f"time budget (--timeout) of the latest run: {said_duration(budget['seconds'])}, "
            + (f"{said_duration(left)} left (it ends at {end})" if left > 0 else f"spent (it ended at {end})")]


def by_worker(trials: list[FrozenTrial]) -> list[str]:
    """The finished trials each worker ran, and where: its GPU (the machine's index and the card), or its device."""
    where = Counter()
    for t in trials:
        r = TrialRecord.read(t)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and r.worker is not None:
            device = f"GPU {r.gpu['index']} ({r.gpu['name']})" if r.gpu else r.device or "?"
            where[(str(r.worker), device)] += 1
    return [f"worker {w} on {d}: {n} finished trial{'s' * (n != 1)}" for (w, d), n in sorted(where.items())]


def pruning_savings(recorded: StudyRecord, trials: list[FrozenTrial]) -> list[str]:
    """Epochs (or folds) the finished trials ran, against what running every one of them to the end would cost."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    folds = any(TrialRecord.read(t).unit == "fold" for t in finished)
    unit = "folds" if folds else "epochs"

    def steps(t: FrozenTrial) -> int:  # a multi-objective study's trials report no intermediate values
        r = TrialRecord.read(t)
        return r.steps_run if r.steps_run is not None and r.unit == unit[:-1] else len(t.intermediate_values)

    full = max((steps(t) for t in finished if t.state == TrialState.COMPLETE), default=0)
    full = max(full, (recorded.epochs or 0) if not folds else 0)
    if not finished or not full:
        return []
    ran = sum(steps(t) for t in finished)
    search = recorded.search
    by = f" ({search['sampler']} sampler, {search['pruner']} pruner)" if search else ""
    return [f"pruning saved {1 - ran / (full * len(finished)):.0%}{by}: {ran} {unit} run, against {full * len(finished)} "
            f"for every finished trial to its end"]


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: its number, state and value, one column per parameter, the valid metrics of its best
    epoch (of its folds, their mean), and the attributes a user would sort by; numbers as numbers, times with
    their time zone."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration else None
        started = t.datetime_start.astimezone() if t.datetime_start else None  # Optuna keeps local times without a zone
        row = {"number": t.number, "state": t.state.name, "value": metric_of(t), "started": started, "duration_s": duration}
        row |= {f"params_{k}": v for k, v in t.params.items()}
        recorded = TrialRecord.read(t)
        row |= {f"best_{k}": v for k, v in recorded.best_metrics.items()}
        row |= recorded.columns
        row |= {f"cost_{k}": v for k, v in (recorded.costs or {}).items()}  # a column each, to sort by
        rows.append(row)
    return pd.DataFrame(rows).convert_dtypes(convert_string=False)  # whole numbers stay integers beside missing values


def export_csv(study: optuna.Study, path: Path) -> str:
    table = trials_table(study)
    table.to_csv(path, index=False)
    return f"wrote {len(table)} trials of {study.study_name!r} to {path}"


def spaces_table() -> str:
    """`hpsearch spaces`: each space's task, data, preparation, search and metric, in a few lines."""
    from spaces import list_spaces  # here: spaces bring torch along, which the other tables need not wait for
    from trainers.tasks import get_task

    lines = []
    for space in list_spaces():
        crop = f", region {space.crop}" if isinstance(space.crop, tuple) else ", each image cut to its box" if space.crop else ""
        pruner = "no pruner" if space.pruner == "none" else f"{space.pruner} pruner"
        lines += [f"{space.name:12s} {space.task:10s} {space.summary}",
                  f"{'':23s} --data: {space.data_format or get_task(space.task).data_format} (built in: {space.data})",
                  f"{'':23s} {space.image_size}px {space.resize}{crop}, {space.epochs} epochs, maximizes valid {space.metric}; "
                  f"{space.sampler} sampler, {pruner}",
                  f"{'':23s} {space.describe()}"]
        if space.fine_tune:
            lines.append(f"{'':23s} fine-tuning an earlier model (--from): {space.describe(space.fine_tune)}")
        if space.default:
            lines.append(f"{'':23s} first in a new study: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                                         for k, v in space.default.items()))
    return "\n".join(lines)
