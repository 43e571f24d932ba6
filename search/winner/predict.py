"""`hpsearch predict`: a study's best model, or the average of its K best (an ensemble), on image files,
written as a CSV: one row per image with the task's own answer (segmentation: Severstal's rows)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from search.winner.options import PredictOptions
from trainers.errors import InputError
from trainers.images import EXTENSIONS

CHUNK = 256  # images decoded and answered at a time: memory stays bounded on big folders


def image_files(sources: list[str]) -> list[tuple[Path, str]]:
    """The image files named, and those in the folders named and their sub-folders (hidden ones left out, as
    `run` reads a data folder), each with its name for the CSV: a file named, as given; a file in a folder,
    its path relative to that folder (two x.png in two sub-folders are two names)."""
    files = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(p.relative_to(source) for p in source.rglob("*") if p.suffix.lower() in EXTENSIONS)
            files += [(source / rel, rel.as_posix()) for rel in found
                      if not any(part.startswith(".") for part in rel.parts) and (source / rel).is_file()]
        elif source.is_file():
            files.append((source, str(source)))
        else:
            raise InputError(f"{source} does not exist: name image files or folders of them")
    if not files:
        raise InputError(f"no image files in {', '.join(sources)} or below")
    return files


def predict_files(ensemble, files: list[tuple[Path, str]]) -> tuple[list[tuple[str, dict]], list[tuple[str, str]]]:
    """(name, fields) for each image answered, and (name, reason) for each left out."""
    answered, skipped = [], []
    for start in range(0, len(files), CHUNK):
        chunk = files[start : start + CHUNK]
        fields, problems = ensemble.answer([path for path, _ in chunk])
        answered += [(name, f) for (_, name), f in zip(chunk, fields) if f is not None]
        skipped += [(name, str(problem)) for (_, name), problem in zip(chunk, problems) if problem is not None]
    return answered, skipped


def run_predict(options: PredictOptions) -> str:
    from search.winner.models import best_models
    from trainers.loop import pick_device

    paths, out = image_files(options.images), Path(options.out)
    study, trials, ensemble = best_models(options, pick_device(options.device))
    start = time.perf_counter()
    answered, skipped = predict_files(ensemble, paths)
    seconds = time.perf_counter() - start
    if not answered:
        raise InputError(f"none of the {len(skipped)} files could be read as an image (the first, {skipped[0][0]}: "
                         f"{skipped[0][1]}): nothing written to {out}")
    rows = [row for name, fields in answered for row in ensemble.task.rows(name, fields)]
    header = list(dict.fromkeys(key for row in rows for key in row)) or ["image"]
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"left out {name}: {reason}" for name, reason in skipped]
    models = f"trial {trials[0].number}" if len(trials) == 1 else f"the average of trials {'/'.join(str(t.number) for t in trials)}"
    lines.append(f"wrote {out}: {len(answered)} images ({len(skipped)} left out) with {models} of study "
                 f"{study.study_name!r}: {len(answered) / max(seconds, 1e-9):.1f} images/s, decoding included")
    return "\n".join(lines)
