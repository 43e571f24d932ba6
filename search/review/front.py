"""The front of a study (search.objectives.front_trials) as users see it: `hpsearch front`'s table with the
limits its trials were held to, and its figure in the report and the dashboard."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import record
from search.objectives import (
    COST_DIRECTIONS, compared, ensemble_candidate, front_trials, metric_of, name_of, objectives_of, trial_figure,
)
from search.record import StudyRecord
from search.review.report import not_drawn_line

FRONT_PLOT = "front"  # the id of the front's figure among the study's plots in optuna-dashboard


def limits(study: optuna.Study) -> dict[str, float]:
    """The cost limits the study's trials were held to (a cost minus its constraint value), by cost name."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if trial.constraints and record.COSTS in trial.user_attrs:
            return {name: trial.user_attrs[record.COSTS][name] - value for name, value in trial.constraints.items()}
    return {}


def front_table(study: optuna.Study, metric: str) -> str:
    """`hpsearch front`: the front as a Markdown table, the study's limits said above it."""
    ensemble = ensemble_candidate(study)
    front = front_trials(study, [ensemble] if ensemble else [])
    if not front:
        return f"study {study.study_name!r} has no completed trial with its costs recorded yet"
    held, names = limits(study), compared(study)
    extra = [n for n in names if n not in COST_DIRECTIONS]  # valid metrics a multi-objective study weighs too
    lines = [f"study {study.study_name!r}: {len(front)} trial(s) that no other beats on valid {metric}, "
             f"{', '.join(names)} at once"]
    if held:
        lines.append("limits: " + ", ".join(f"{name} <= {limit:g}" for name, limit in held.items()))
    lines += not_drawn_line(StudyRecord.read(study).ruled_out)
    lines += ["", "| trial | " + " | ".join(f"valid {m}" for m in [metric, *extra]) + " | ms | images/s | parameters | MB | FLOPs |",
              "| ---: " * (7 + len(extra)) + "|"]
    for t in front:
        c = t.user_attrs[record.COSTS]
        metrics = " | ".join(f"{v:.4f}" for v in [metric_of(t), *(trial_figure(t, m) for m in extra)])
        lines.append(f"| {name_of(t)} | {metrics} | {c['ms']:.3g} | {c['throughput']:,.0f} | {c['params']:,} | "
                     f"{c['mb']:.3g} | {c['flops']:,} |")
    if ensemble and ensemble in front:
        lines.append(f"\n{name_of(ensemble)}: the {len(ensemble.user_attrs[record.ENSEMBLE])} best ensembled, as `hpsearch "
                     f"evaluate` measured them (valid metric; costs: its members' added up); use it with --pick or --ensemble")
    lines.append(f"\ncosts measured on {front[0].user_attrs[record.COSTS]['device']}, ms per image at batch 1, images/s at "
                 f"batch 32 (see the README's \"What a model costs\")")
    return "\n".join(lines)


def metric_name(study: optuna.Study) -> str:
    """The name of the metric the study's trials reached: as its runs recorded it, else (a study made before
    they did) its space's."""
    from spaces import get_space

    recorded = StudyRecord.read(study)
    if recorded.metric:
        return recorded.metric
    try:
        return get_space(recorded.space).metric
    except Exception:  # a space file that moved: the study's value all the same
        return "metric"


def front_figure(study: optuna.Study):
    """The valid metric against the latency, the front drawn: Optuna's `plot_pareto_front` for a study of two
    or three objectives, else a scatter of every completed trial with its costs, the front's trials marked
    (they are beaten by none on the metric, latency and size together, so a few may sit below the line a
    plot of two of them suggests)."""
    import plotly.graph_objects as go
    from optuna.visualization import plot_pareto_front

    names = objectives_of(study)
    if names and len(names) <= 3:
        return plot_pareto_front(study, target_names=names)
    metric = metric_name(study)
    done = [t for t in record.own_trials(study, (TrialState.COMPLETE,)) if record.COSTS in t.user_attrs]
    if not done:
        raise ValueError("no completed trial has its costs recorded")
    front = sorted(front_trials(study), key=lambda t: t.user_attrs[record.COSTS]["ms"])
    figure = go.Figure()
    for name, trials, style in (("trials", done, {"color": "#bbb"}), ("front", front, {"color": "#d62728", "size": 10})):
        costs = [t.user_attrs[record.COSTS] for t in trials]
        figure.add_scatter(x=[c["ms"] for c in costs], y=[metric_of(t) for t in trials], mode="markers", name=name,
                           marker=style, text=[f"trial {t.number}: {c['mb']:.3g} MB, {c['params']:,} parameters"
                                                for t, c in zip(trials, costs)])
    figure.update_layout(title=f"Valid {metric} against latency: the front", xaxis_title="ms per image (batch 1)",
                         yaxis_title=f"valid {metric}")
    figure.update_xaxes(type="log")
    return figure


def save_front_plot(study: optuna.Study, trial: FrozenTrial | None = None) -> None:
    """An optimize callback too: the front's figure, stored in the study where optuna-dashboard shows it
    (its user-defined plots); replaced as trials complete."""
    from optuna_dashboard import save_plotly_graph_object

    if trial is not None and trial.state != TrialState.COMPLETE:
        return
    try:
        figure = front_figure(study)
    except ValueError:  # nothing to draw yet
        return
    save_plotly_graph_object(study, figure, graph_object_id=FRONT_PLOT)
