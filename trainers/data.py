"""Find the images, name the data by its content, and split it the same way everywhere."""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainers.digests import digests
from trainers.errors import InputError
from trainers.images import EXTENSIONS

SPLITS = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train / valid / test, unless a space or a manifest's split column says otherwise
BOX_COLUMNS = ("x_min", "y_min", "x_max", "y_max")
SEVERSTAL_CSV, SEVERSTAL_IMAGES = "train.csv", "train_images"
SEVERSTAL_COLUMNS = ("ImageId", "ClassId", "EncodedPixels")


@dataclass(frozen=True)
class Item:
    path: Path  # absolute
    relpath: str  # as written in splits.csv: relative to the data root
    label: str
    digest: str  # content hash: the item's identity on any machine, at any path
    split: str | None = None  # given by a manifest's split column
    box: tuple[float, float, float, float] | None = None  # x_min, y_min, x_max, y_max in the image's pixels
    masks: tuple[tuple[str, str], ...] | None = None  # (class, run-length text) pairs; () for an image without any

    @property
    def annotation(self) -> str:
        """The item's box or masks as text, for its fingerprint: empty for plain labels."""
        if self.box is not None:
            return " ".join(f"{v:g}" for v in self.box)
        return ";".join(f"{c}:{rle}" for c, rle in self.masks) if self.masks is not None else ""


@dataclass
class Discovery:
    root: Path
    items: list[Item]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)

    @property
    def fingerprint(self) -> str:
        return digest_lines(f"{i.label}\t{i.digest}\t{i.split or ''}" + (f"\t{i.annotation}" if i.annotation else "")
                            for i in self.items)


def digest_lines(lines) -> str:
    h = hashlib.sha256()
    for line in sorted(lines):
        h.update(line.encode() + b"\n")
    return h.hexdigest()[:16]


def discover(source: str | Path) -> Discovery:
    """A folder of class folders (images anywhere below each), a CSV manifest path,label[,split]
    (with x_min,y_min,x_max,y_max: one box per image), or Severstal's layout: a train.csv with
    ImageId,ClassId,EncodedPixels and the images in train_images/ beside it (the CSV or its folder)."""
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"data path {source} does not exist: pass --data a folder of class folders or a CSV manifest")
    if source.is_dir() and (source / SEVERSTAL_CSV).is_file():
        source = source / SEVERSTAL_CSV
    if source.is_file():
        found = _from_severstal(source) if set(SEVERSTAL_COLUMNS) <= _columns(source) else _from_manifest(source)
    else:
        found = _from_folder(source)
    usable, skipped = [], list(found.skipped)
    for path, relpath, label, split, extra in found.items:
        if path.suffix.lower() not in EXTENSIONS:
            skipped.append((relpath, f"not an image (extension {path.suffix or 'none'})"))
        elif not path.is_file():
            skipped.append((relpath, "missing file"))
        else:
            usable.append((path, relpath, label, split, extra))
    content = digests([path for path, *_ in usable])
    items = [Item(path, relpath, label, digest, split, **extra) for (path, relpath, label, split, extra), digest in zip(usable, content)]
    items.sort(key=lambda i: (i.label, i.digest, i.relpath))
    return Discovery(found.root, items, skipped)


@dataclass
class _Found:
    root: Path
    items: list[tuple[Path, str, str, str | None, dict]]  # path, relpath, label, split, box or masks
    skipped: list[tuple[str, str]]


def _from_folder(root: Path) -> _Found:
    items, skipped = [], []
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise InputError(f"no class folders in {root}: put each class's images in a folder named after the class")
    empty = []
    for class_dir in class_dirs:
        found = [(p, p.relative_to(root)) for p in sorted(class_dir.rglob("*"))]
        found = [(p, rel) for p, rel in found if not any(part.startswith(".") for part in rel.parts) and p.is_file()]
        items += [(p, rel.as_posix(), class_dir.name, None, {}) for p, rel in found]
        empty += [] if any(p.suffix.lower() in EXTENSIONS for p, _ in found) else [class_dir]
    if empty and len(empty) < len(class_dirs):  # quietly, a classifier with a class fewer would be trained
        raise InputError(f"class folder {empty[0]} holds no images: add images of {empty[0].name!r} or remove the folder")
    return _Found(root, items, skipped)


def _columns(path: Path) -> set[str]:
    return set(_read_csv(path, header_only=True))


def _read_csv(path: Path, header_only: bool = False):
    """The rows of a CSV file with their line numbers; with `header_only`, its column names."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            return reader.fieldnames or [] if header_only else [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path} is not a CSV text file ({err}): pass --data a folder of class folders or a CSV manifest") from None


def _from_manifest(manifest: Path) -> _Found:
    root, columns = manifest.parent, _columns(manifest)
    if not {"path", "label"} <= columns:
        raise InputError(f"manifest {manifest} needs the columns path,label[,split]; it has {','.join(sorted(columns))}")
    has_box = set(BOX_COLUMNS) <= columns
    items = []
    for line, row in _read_csv(manifest):
        path, label = ((row.get(c) or "").strip() for c in ("path", "label"))
        if not (path and label):
            raise InputError(f"manifest {manifest} line {line}: no {'path' if not path else 'label'}: every row needs "
                             f"path,label: fill it in or remove the row")
        split = (row.get("split") or "").strip() or None
        if "split" in columns and split not in SPLITS:
            raise InputError(f"manifest {manifest} line {line}: split {split!r} is not one of {', '.join(SPLITS)}")
        extra = {"box": _box(row, f"manifest {manifest} line {line}")} if has_box else {}
        items.append((root / path, path, label, split, extra))
    return _Found(root, items, [])


def _box(row: dict, where: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(row[c]) for c in BOX_COLUMNS)
    except (TypeError, ValueError):
        raise InputError(f"{where}: the box {','.join(BOX_COLUMNS)} must be four numbers (pixels)") from None
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise InputError(f"{where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) needs 0 <= x_min < x_max and 0 <= y_min < y_max")
    return x0, y0, x1, y1


def _from_severstal(csv_path: Path) -> _Found:
    """Every image in train_images/ is an item; its rows in the CSV are its masks, one per defect class.
    The label says whether it has any ('defect' or 'clean'): the split is stratified by it."""
    folder = csv_path.parent / SEVERSTAL_IMAGES
    if not folder.is_dir():
        raise InputError(f"{csv_path} has Severstal's columns but no {SEVERSTAL_IMAGES}/ folder beside it: put the images there")
    masks: dict[str, dict[str, str]] = {}
    for _, row in _read_csv(csv_path):
        rle = (row["EncodedPixels"] or "").strip()
        if rle:  # older copies list empty rows for the classes an image lacks
            masks.setdefault(row["ImageId"], {})[row["ClassId"].strip()] = rle
    names = {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    items = []
    for name in sorted(names):
        found = tuple(sorted(masks.get(name, {}).items()))
        relpath = f"{SEVERSTAL_IMAGES}/{name}"
        items.append((folder / name, relpath, "defect" if found else "clean", None, {"masks": found}))
    missing = [(f"{SEVERSTAL_IMAGES}/{name}", "missing file (listed in the CSV)") for name in sorted(masks.keys() - names)]
    return _Found(csv_path.parent, items, missing)


@dataclass(frozen=True)
class Split:
    """Which items are train, valid and test; indices into a Discovery's items."""

    assignment: tuple[str, ...]  # one split name per item

    def indices(self, name: str) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.assignment) == name)

    def digest(self, items: list[Item]) -> str:
        return digest_lines(f"{i.digest}\t{s}" for i, s in zip(items, self.assignment))

    def write_csv(self, items: list[Item], path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "split", "digest"])
            writer.writerows((i.relpath, i.label, s, i.digest) for i, s in zip(items, self.assignment))


def check_classes(labels: list[str], fractions: tuple[float, ...] = (1.0,)) -> None:
    """One clear error for no images, a single class, or a class too small for every split to get one."""
    counts = Counter(labels)
    if not counts:
        raise InputError("no usable images: add image files (jpg, png, ...) under the class folders")
    if len(counts) < 2:
        raise InputError(f"only one class ({next(iter(counts))!r}): a classifier needs images of at least two classes")
    needed = math.ceil(1 / min(fractions) - 1e-9)
    for label, count in sorted(counts.items(), key=lambda kv: kv[1]):
        if count < needed:
            shares = "/".join(f"{f:g}" for f in fractions)
            raise InputError(
                f"class {label!r} has {count} image{'s' * (count != 1)}; a {shares} split needs at least "
                f"{needed} per class: add images of {label!r} or remove its folder"
            )


def stratified_split(items: list[Item], fractions=SPLIT_FRACTIONS, seed: int = 0) -> Split:
    """Seeded and stratified; the same items give the same split on every machine.

    Items come sorted by content, so neither file paths nor discovery order change the result.
    A manifest's split column, where given, is used as it is.
    """
    from sklearn.model_selection import train_test_split  # slow to import; only needed here

    labels = [i.label for i in items]
    if items and all(i.split for i in items):
        check_classes(labels)
        return Split(tuple(i.split for i in items))
    train, valid, test = fractions
    if abs(train + valid + test - 1) > 1e-6:
        raise InputError(f"split fractions {fractions} must add up to 1")
    check_classes(labels, fractions)
    index = np.arange(len(items))
    rest, test_idx = train_test_split(index, test_size=test, stratify=labels, random_state=seed)
    rest_labels = [labels[i] for i in rest]
    train_idx, valid_idx = train_test_split(
        rest, test_size=valid / (train + valid), stratify=rest_labels, random_state=seed
    )
    assignment = np.empty(len(items), dtype=object)
    assignment[train_idx], assignment[valid_idx], assignment[test_idx] = "train", "valid", "test"
    return Split(tuple(assignment))
