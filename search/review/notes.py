"""The Markdown notes optuna-dashboard shows beside a study and each of its trials."""

from __future__ import annotations

import shlex

from search import record
from search.record import TrialRecord
from search.review.report import SHOW_SKIPPED, short_value
from spaces import Space
from spaces.space import describe_distribution
from trainers.costs import KINDS


def trial_note(recorded: TrialRecord, outcome: str, history: list[dict[str, float]], params: dict,
               error: str | None = None) -> str:
    """`outcome` says how it ended; `recorded` is what the trial recorded as far as it is known; `error`: the
    traceback of an unexpected error that failed it."""
    lines = [f"## Trial {recorded.number}: {outcome}", ""]
    if history:
        columns = list(history[0])
        lines += [f"| {recorded.unit} | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
                  "| ---: |" + " ---: |" * len(columns)]
        best, start = recorded.best_epoch, recorded.start_metrics
        if start:  # the model it started from (--from), before its first epoch
            lines.append("| 0 (start) | " + " | ".join(f"{start[c]:.4f}" if c in start else "" for c in columns) + " |")
        for epoch, metrics in enumerate(history, 1):
            mark = " (best)" if epoch == best else ""
            lines.append(f"| {epoch}{mark} | " + " | ".join(f"{metrics[c]:.4f}" for c in columns) + " |")
        lines.append("")
    lines += ["**Parameters**", ""] + [f"- {name}: `{short_value(value)}`" for name, value in params.items()] + [""]
    if recorded.total_params is not None:
        lines.append(f"**Model**: {recorded.total_params:,} parameters, {recorded.trainable_params:,} trainable  ")
    if recorded.costs:
        c = recorded.costs
        lines.append(f"**Costs** on {c['device']} ({c['threads']} threads): "
                     + ", ".join(kind.show(c[kind.name]) for kind in KINDS if kind.name in c) + "  ")
    if recorded.resumed_from_epoch is not None:
        lines.append(f"**Resumed** from the checkpoint after epoch {recorded.resumed_from_epoch} of an attempt that stopped  ")
    lines.append(f"**Time**: {recorded.seconds or 0:.1f} s on {recorded.device or '?'}")
    if error:
        lines += ["", "**Error**", "", "```", error.rstrip(), "```"]
    return "\n".join(lines)


def study_note(space: Space, epochs: int, data: record.DataRecord, skipped: list[tuple[str, str]], command: list[str]) -> str:
    """What the space searches, the data it ran on, and the command that runs it again."""
    lines = [f"## {space.name}: {space.summary}", "", "### Search space", "", "| parameter | searched over |", "| --- | --- |"]
    ranges = {name: describe_distribution(d).replace("|", r"\|") for name, d in space.distributions().items()}
    lines += [f"| {name} | {values} |" for name, values in ranges.items()]
    lines += [
        "",
        f"Task {space.task}; {space.image_size} px images ({space.resize}); {epochs} epoch(s) per trial; "
        f"maximizes valid {space.metric}.",
        "",
        "### Data",
        "",
        f"{data.images} images from `{data.source}` ({data.files} files), fingerprint `{data.fingerprint}`, "
        f"split digest `{data.split_digest}`.",
        "",
        "| label | train | valid | test |",
        "| --- | ---: | ---: | ---: |",
    ]
    counts = data.counts
    lines += [f"| {c} | {counts['train'][c]} | {counts['valid'][c]} | {counts['test'][c]} |" for c in counts["train"]]
    if skipped:
        lines += ["", f"Left out {len(skipped)} file(s):", ""]
        lines += [f"- `{path}`: {reason}" for path, reason in skipped[: 4 * SHOW_SKIPPED]]
        if len(skipped) > 4 * SHOW_SKIPPED:
            lines.append(f"- ... and {len(skipped) - 4 * SHOW_SKIPPED} more")
    lines += ["", "### Run it again", "", "```", shlex.join(command), "```"]
    return "\n".join(lines)
