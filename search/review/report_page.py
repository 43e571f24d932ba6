"""`hpsearch report`: one self-contained HTML page about a study, readable with no server.

Plotly's script is written into the page once and the pictures are inlined as data URIs,
so the page can be mailed or copied anywhere.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import optuna
import optuna.visualization as vis
from optuna.artifacts import get_all_artifact_meta
from markdown_it import MarkdownIt
from optuna_dashboard import get_note

from search.objectives import best_trial, metric_of, objectives_of
from search.record import StudyRecord
from search.review.front import front_figure
from search.review.report import short_value, status_summary

# each plot, and whether it takes a target: in a study of several objectives, the plots of one show its metric
PLOTS = {
    "The front: valid metric against latency": (front_figure, False),
    "Optimization history": (vis.plot_optimization_history, True),
    "Learning curves (valid metric per epoch)": (vis.plot_intermediate_values, False),
    "Parameter importances": (vis.plot_param_importances, True),
    "Parallel coordinates": (vis.plot_parallel_coordinate, True),
    "Slices": (vis.plot_slice, True),
}
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}img{max-width:100%;margin:0.5em 0;border:1px solid #eee}
pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}.note h2{font-size:1.2em}"""


def write_report(study: optuna.Study, storage, store, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    sections = [f"<h1>Study {html.escape(study.study_name)}</h1>", _pre(status_summary(study))]
    sections += _best_trial(study, storage, store)
    sections += _plots(study)
    note = get_note(study)
    if note:
        sections += ["<h2>About this study</h2>", f"<section class='note'>{markdown(note)}</section>"]
    body = "\n".join(sections)
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>hpsearch: {html.escape(study.study_name)}</title>"
                    f"<style>{STYLE}</style></head><body>{body}</body></html>")
    return page


def _best_trial(study: optuna.Study, storage, store) -> list[str]:
    best = best_trial(study)
    if best is None:
        return ["<p>No trial has completed yet.</p>"]
    parts = [f"<h2>Best trial: {best.number}, value {metric_of(best):.4f}</h2>", _table(["parameter", "value"], [(k, short_value(v)) for k, v in best.params.items()])]
    evaluation = StudyRecord.read(study).best_evaluation
    if evaluation and evaluation["trial"] == best.number:
        table = evaluation["table"]
        columns = [c for c in next(iter(table.values())) if c != "loss"]
        rows = [(split, *(f"{metrics[c]:.4f}" for c in columns)) for split, metrics in table.items()]
        parts.append(_table(["split", *columns], rows))
    for meta in sorted(get_all_artifact_meta(best, storage=storage), key=lambda m: m.filename):
        if meta.mimetype == "image/png":
            with store.open_reader(meta.artifact_id) as reader:
                data = base64.b64encode(reader.read()).decode()
            parts.append(f"<figure><img alt='{html.escape(meta.filename)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(meta.filename)}</figcaption></figure>")
    return parts


def _plots(study: optuna.Study) -> list[str]:
    parts, script = [], "inline"  # plotly.js goes into the first plot only
    names = objectives_of(study)
    target = {"target": metric_of, "target_name": names[0]} if names else {}
    for title, (plot, takes_target) in PLOTS.items():
        if names and plot is vis.plot_intermediate_values:
            parts.append(f"<h2>{title}</h2><p>Not shown: a study of several objectives keeps no values per epoch in Optuna "
                         f"(each trial's learning curves are among its pictures)</p>")
            continue
        try:
            figure = plot(study, **(target if takes_target else {}))
        except (ValueError, RuntimeError) as err:  # e.g. importances need two completed trials
            parts.append(f"<h2>{title}</h2><p>Not shown: {html.escape(str(err))}</p>")
            continue
        parts.append(f"<h2>{title}</h2>" + figure.to_html(full_html=False, include_plotlyjs=script))
        script = False
    return parts


def _table(header: list[str], rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def markdown(text: str) -> str:
    """A note (Markdown) as HTML; raw HTML in it, as in a file name, is shown as text, never run."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"
