"""`hpsearch cascade`: Severstal-style inference from the best trials of three studies. Is there a
defect? If so, which types? For each, where? The answer is written in Severstal's own CSV layout
(ImageId,ClassId,EncodedPixels, masks at the images' full size), which `hpsearch run` also reads."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from search.storage import Location
from search.winner.models import best_models
from search.winner.options import CascadeOptions, ModelChoice, names
from search.winner.predict import image_files
from trainers.errors import InputError
from trainers.images import BadImage, mask_to_original
from trainers.predict import Predictor
from trainers.rle import rle_decode, rle_encode

DEFECT = "defect"  # the defect study's positive class
BATCH = 64  # images per pass through the three models


@dataclass
class Cascade:
    defect: Predictor  # classify: 'clean' or 'defect'
    types: Predictor  # multilabel over the defect classes
    masks: Predictor  # segment: a mask per defect class
    threshold: float = 0.5

    def __post_init__(self):
        if DEFECT not in self.defect.class_names or self.types.class_names != self.masks.class_names:
            raise InputError(f"these studies do not make a cascade: the first must tell {DEFECT!r} from the rest "
                             f"(it has {self.defect.class_names}), the other two share their classes "
                             f"({self.types.class_names} and {self.masks.class_names})")

    def predict(self, sources: list[tuple[str, object]], max_pixels: int | None = None) -> tuple[list, list[tuple[str, str]]]:
        """(image name, class, full-size 0/1 mask) for every defect found, a batch of images at a time, and
        (name, reason) for each image left out. A source is a path or the file's bytes."""
        found, skipped = [], []
        for start in range(0, len(sources), BATCH):
            batch = sources[start : start + BATCH]
            prepared = {}  # each image decoded once per distinct preparation (size, resize, region): once for our spaces
            for predictor in (self.defect, self.types, self.masks):
                if predictor.preparation not in prepared:
                    prepared[predictor.preparation] = [_prepare(predictor, source, max_pixels) for _, source in batch]
            bad = {i: p[i] for p in prepared.values() for i in range(len(batch)) if isinstance(p[i], BadImage)}
            skipped += [(batch[i][0], str(err)) for i, err in sorted(bad.items())]
            good = [i for i in range(len(batch)) if i not in bad]
            found += self._batch([batch[i][0] for i in good], {k: [v[i] for i in good] for k, v in prepared.items()})
        return found, skipped

    def _batch(self, names: list[str], prepared: dict) -> list[tuple[str, str, object]]:
        def images(predictor: Predictor, rows: list[int]) -> torch.Tensor:
            return torch.stack([prepared[predictor.preparation][i][0] for i in rows])

        if not names:
            return []
        everything = list(range(len(names)))
        chance = self.defect(images(self.defect, everything)).softmax(1)[:, self.defect.class_names.index(DEFECT)]
        keep = [i for i in everything if chance[i] >= self.threshold]
        if not keep:
            return []
        classes, card = self.types.class_names, self.masks.card
        types = self.types(images(self.types, keep)).sigmoid()
        masks = self.masks(images(self.masks, keep)).sigmoid() >= self.threshold
        found = []
        for row, i in enumerate(keep):
            # the first stage said defect: at least the likeliest type
            chosen = [k for k in range(len(classes)) if types[row, k] >= self.threshold] or [int(types[row].argmax())]
            for k in chosen:
                size = prepared[self.masks.preparation][i][1]  # the original (width, height)
                full = mask_to_original(masks[row, k].numpy(), *size, card["resize"], card["crop"])
                if full.any():
                    found.append((names[i], classes[k], full))
        return found


def _prepare(predictor: Predictor, source, max_pixels):
    try:
        return predictor.prepare(source, max_pixels=max_pixels)
    except BadImage as err:
        return err


def dice_scores(found: list[tuple[str, str, object]], paths: list[Path], classes: list[str], truth_csv: Path) -> dict[str, float]:
    """The predictions against Severstal's CSV of the true masks, on the images' own pixels, as the masks
    study measures: dice per class over all pixels (mean over the classes present), and dice_images
    over (image, class) pairs, a pair empty in both counting 1. An image the CSV does not list is clean."""
    with open(truth_csv, newline="") as f:
        truth = {(row["ImageId"], row["ClassId"].strip()): row["EncodedPixels"] for row in csv.DictReader(f) if row["EncodedPixels"]}
    predicted = {(name, cls): mask for name, cls, mask in found}
    overlap, total, pairs = Counter(), Counter(), []
    for path in paths:
        width, height = Image.open(path).size
        for cls in classes:
            key = (path.name, cls)
            true = rle_decode(truth[key], height, width).astype(bool) if key in truth else np.zeros((height, width), bool)
            guess = predicted[key].astype(bool) if key in predicted else np.zeros((height, width), bool)
            both, size = int((true & guess).sum()), int(true.sum() + guess.sum())
            overlap[cls], total[cls] = overlap[cls] + both, total[cls] + size
            pairs.append(2 * both / size if size else 1.0)
    names = {p.name for p in paths}
    present = [c for c in classes if any(k[1] == c and k[0] in names for k in truth)]
    dice = [2 * overlap[c] / total[c] for c in present]
    return {"dice": float(np.mean(dice)) if dice else float(np.mean(pairs)), "dice_images": float(np.mean(pairs))}


def load_cascade(where: Location, studies: list[str], device: torch.device) -> Cascade:
    """The best trial of each of the three studies (defect, types, masks), from search.winner.models."""
    if len(studies) != 3:
        raise InputError(f"--studies names three studies (defect, types, masks), not {len(studies)}")
    where.require_database()
    storage = where.open()
    return Cascade(*(best_models(ModelChoice(storage=where.url, study=name, artifacts=where.artifacts_folder), device,
                                 storage=storage)[2].predictors[0] for name in studies))


def run_cascade(options: CascadeOptions) -> str:
    from trainers.loop import pick_device

    paths = [path for path, _ in image_files(options.images)]  # Severstal names an image by its file name
    out, truth = Path(options.out), Path(options.truth) if options.truth else None
    if truth and not truth.is_file():
        raise InputError(f"--truth {truth} does not exist: give Severstal's CSV of the true masks (ImageId,ClassId,EncodedPixels)")
    where = Location(options.storage, options.artifacts)
    cascade = load_cascade(where, names(options.studies), pick_device(options.device))
    found, skipped = cascade.predict([(p.name, p) for p in paths])
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "ClassId", "EncodedPixels"])
        writer.writerows((name, cls, rle_encode(mask)) for name, cls, mask in found)
    defective = len({name for name, _, _ in found})
    kinds = Counter(cls for _, cls, _ in found)
    by_type = ", ".join(f"class {c}: {n}" for c, n in sorted(kinds.items())) or "none"
    summary = [f"left out {name}: {reason}" for name, reason in skipped]
    summary.append(f"wrote {out}: {defective} of {len(paths) - len(skipped)} images with defects ({by_type})")
    if truth:
        left = {name for name, _ in skipped}
        scores = dice_scores(found, [p for p in paths if p.name not in left], cascade.masks.class_names, truth)
        summary.append("against " + str(truth) + ": " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    return "\n".join(summary)
