"""The front of a study (search.objectives.front_trials) as users see it: `hpsearch front`'s table with the
limits its trials were held to, and its figure in the report and the dashboard."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import record
from search.objectives import compared, ensemble_candidate, front_trials, metric_of, name_of, objectives_of, trial_figure
from search.record import StudyRecord, TrialRecord
from search.review.report import limits_line, not_drawn_line
from trainers.costs import BY_NAME, KINDS, LATENCY, SIZE, THROUGHPUT

FRONT_PLOT = "front"  # the id of the front's figure among the study's plots in optuna-dashboard


def front_table(study: optuna.Study, metric: str) -> str:
    """`hpsearch front`: the front as a Markdown table, the study's limits said above it."""
    ensemble = ensemble_candidate(study)
    front = front_trials(study, [ensemble] if ensemble else [])
    if not front:
        return f"study {study.study_name!r} has no completed trial with its costs recorded yet"
    names, recorded = compared(study), StudyRecord.read(study)
    extra = [n for n in names if n not in BY_NAME]  # valid metrics a multi-objective study weighs too
    lines = [f"study {study.study_name!r}: {len(front)} trial(s) that no other beats on valid {metric}, "
             f"{', '.join(names)} at once"]
    lines += limits_line(recorded) + not_drawn_line(recorded.ruled_out)
    lines += ["", "| trial | " + " | ".join([*(f"valid {m}" for m in [metric, *extra]), *(k.heading for k in KINDS)]) + " |",
              "| ---: " * (2 + len(extra) + len(KINDS)) + "|"]
    for t in front:
        costs = TrialRecord.read(t).costs
        cells = [f"{v:.4f}" for v in [metric_of(t), *(trial_figure(t, m) for m in extra)]]
        cells += [f"{costs[k.name]:{k.form}}" if k.name in costs else "" for k in KINDS]
        lines.append(f"| {name_of(t)} | " + " | ".join(cells) + " |")
    if ensemble and ensemble in front:
        lines.append(f"\n{name_of(ensemble)}: the {len(TrialRecord.read(ensemble).ensemble)} best ensembled, as `hpsearch "
                     f"evaluate` measured them (valid metric; costs: its members' added up); use it with --pick or --ensemble")
    lines.append(f"\ncosts measured on {TrialRecord.read(front[0]).costs['device']}, {BY_NAME[LATENCY].words}, "
                 f"{BY_NAME[THROUGHPUT].words} (see the README's \"What a model costs\")")
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
    done = [t for t in record.trained_trials(study) if TrialRecord.read(t).costs]
    if not done:
        raise ValueError("no completed trial has its costs recorded")
    front = sorted(front_trials(study), key=lambda t: TrialRecord.read(t).costs[LATENCY])
    figure = go.Figure()
    size, params = BY_NAME[SIZE], BY_NAME["params"]
    for name, trials, style in (("trials", done, {"color": "#bbb"}), ("front", front, {"color": "#d62728", "size": 10})):
        costs = [TrialRecord.read(t).costs for t in trials]
        figure.add_scatter(x=[c[LATENCY] for c in costs], y=[metric_of(t) for t in trials], mode="markers", name=name,
                           marker=style, text=[f"trial {t.number}: {size.show(c[SIZE])}, {params.show(c[params.name])}"
                                               for t, c in zip(trials, costs)])
    figure.update_layout(title=f"Valid {metric} against latency: the front", xaxis_title=BY_NAME[LATENCY].words,
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
