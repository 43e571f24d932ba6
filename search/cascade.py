"""`hpsearch cascade`: Severstal-style inference from the best trials of three studies. Is there a
defect? If so, which types? For each, where? The answer is written in Severstal's own CSV layout
(ImageId,ClassId,EncodedPixels, masks at the images' full size), which `hpsearch run` also reads."""

from __future__ import annotations

import csv
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from optuna.artifacts import download_artifact
from PIL import Image

from search.storage import artifact_store, load_study, require_database
from trainers.data import DataError
from trainers.images import EXTENSIONS, mask_to_original
from trainers.predict import Predictor
from trainers.rle import rle_decode, rle_encode

DEFECT = "defect"  # the defect study's positive class
BATCH = 64


def best_predictor(storage_url: str, study_name: str, store, device: torch.device) -> Predictor:
    """The model of a study's best trial, from its card and weights in the artifact store."""
    best = load_study(storage_url, study_name).best_trial
    if "model_artifact" not in best.user_attrs:
        raise DataError(f"study {study_name!r}: its best trial {best.number} has no stored model")
    with tempfile.TemporaryDirectory() as tmp:
        card, weights = Path(tmp) / "model.json", Path(tmp) / "model.safetensors"
        for path, key in ((card, "model_artifact"), (weights, "weights_artifact")):
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=best.user_attrs[key])
        return Predictor.load(json.loads(card.read_text()), weights, device)


@dataclass
class Cascade:
    defect: Predictor  # classify: 'clean' or 'defect'
    types: Predictor  # multilabel over the defect classes
    masks: Predictor  # segment: a mask per defect class
    threshold: float = 0.5

    def __post_init__(self):
        if DEFECT not in self.defect.class_names or self.types.class_names != self.masks.class_names:
            raise DataError(f"these studies do not make a cascade: the first must tell {DEFECT!r} from the rest "
                            f"(it has {self.defect.class_names}), the other two share their classes "
                            f"({self.types.class_names} and {self.masks.class_names})")

    def predict(self, paths: list[Path]) -> list[tuple[str, str, object]]:
        """(image name, class, full-size 0/1 mask) for every defect found, a batch of images at a time."""
        found = []
        for start in range(0, len(paths), BATCH):
            found += self._batch(paths[start : start + BATCH])
        return found

    def _batch(self, paths: list[Path]) -> list[tuple[str, str, object]]:
        prepared = {}  # each image decoded once per distinct preparation (size, resize, region): once for our spaces

        def images(predictor: Predictor, rows: list[int]) -> torch.Tensor:
            card = predictor.card
            key = (card["image_size"], card["resize"], str(card["crop"]))
            if key not in prepared:
                prepared[key] = [predictor.prepare(p) for p in paths]
            return torch.stack([prepared[key][i][0] for i in rows])

        everything = list(range(len(paths)))
        chance = self.defect(images(self.defect, everything)).softmax(1)[:, self.defect.class_names.index(DEFECT)]
        keep = [i for i in everything if chance[i] >= self.threshold]
        if not keep:
            return []
        names, card = self.types.class_names, self.masks.card
        types = self.types(images(self.types, keep)).sigmoid()
        masks = self.masks(images(self.masks, keep)).sigmoid() >= self.threshold
        found = []
        for row, i in enumerate(keep):
            # the first stage said defect: at least the likeliest type
            chosen = [k for k in range(len(names)) if types[row, k] >= self.threshold] or [int(types[row].argmax())]
            for k in chosen:
                size = next(iter(prepared.values()))[i][1]  # the original (width, height)
                full = mask_to_original(masks[row, k].numpy(), *size, card["resize"], card["crop"])
                if full.any():
                    found.append((paths[i].name, names[k], full))
        return found


def image_files(sources: list[str]) -> list[Path]:
    """The image files named, and those in the folders named (not below them), in name order."""
    files = []
    for source in map(Path, sources):
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.suffix.lower() in EXTENSIONS)
        elif source.is_file():
            files.append(source)
        else:
            raise DataError(f"{source} does not exist: name image files or folders of them")
    if not files:
        raise DataError(f"no image files in {', '.join(sources)}")
    return files


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


def run_cascade(storage_url: str, studies: list[str], artifacts: str | None, sources: list[str], out: Path,
                device: torch.device, truth: Path | None = None) -> str:
    paths = image_files(sources)
    if truth and not Path(truth).is_file():
        raise DataError(f"--truth {truth} does not exist: give Severstal's CSV of the true masks (ImageId,ClassId,EncodedPixels)")
    if len(studies) != 3:
        raise DataError(f"--studies names three studies (defect, types, masks), not {len(studies)}")
    require_database(storage_url)
    store = artifact_store(storage_url, artifacts)
    cascade = Cascade(*(best_predictor(storage_url, name, store, device) for name in studies))
    found = cascade.predict(paths)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "ClassId", "EncodedPixels"])
        writer.writerows((name, cls, rle_encode(mask)) for name, cls, mask in found)
    defective = len({name for name, _, _ in found})
    kinds = Counter(cls for _, cls, _ in found)
    by_type = ", ".join(f"class {c}: {n}" for c, n in sorted(kinds.items())) or "none"
    summary = f"wrote {out}: {defective} of {len(paths)} images with defects ({by_type})"
    if truth:
        scores = dice_scores(found, paths, cascade.masks.class_names, truth)
        summary += "\nagainst " + str(truth) + ": " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    return summary
