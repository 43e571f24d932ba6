"""Decode every image once per (data fingerprint, size, resize mode) into a uint8 array on disk.

Every trial and every later run memory-maps the same file (raw uint8 rows; the shape is in meta.json);
nothing reads the images again until the data, the size or the resize mode change. Run-length masks are decoded in the same
pass, into a second array of the same geometry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from trainers.data import Discovery, Item
from trainers.digests import cache_root
from trainers.errors import InputError
from trainers.images import PER_IMAGE_BOX, BadImage, crop_box, decode, resize_square
from trainers.rle import rle_decode

FORMAT = 3  # bump when the array layout or the decoding changes


@dataclass
class Decoded:
    items: list[Item]  # the usable items, in the order of the rows of images
    images: np.ndarray  # (N, size, size, 3) uint8, memory-mapped
    skipped: list[tuple[str, str]]  # (relpath, reason) for every file left out
    decoded: int  # how many files this call decoded: 0 when the cache was used
    size: int
    mode: str
    crop: tuple[float, float, float, float] | str | None  # fractions, or PER_IMAGE_BOX
    sizes: list[tuple[int, int]]  # each item's original (width, height)
    masks: np.ndarray | None = None  # (N, size, size, C) uint8 0/1 where the items have masks
    mask_classes: list[str] = field(default_factory=list)  # the C mask channels, in order


def decode_once(found: Discovery, size: int, mode: str, root: Path | None = None, progress: bool = True,
                crop: tuple[float, float, float, float] | str | None = None) -> Decoded:
    """`crop`: a region of interest as fractions (left, top, right, bottom), or PER_IMAGE_BOX: each
    image's own box from the manifest."""
    if crop == PER_IMAGE_BOX and any(i.box is None for i in found.items):
        raise InputError("this space cuts each image to its own box: pass --data a CSV manifest with the columns "
                         "path,label,x_min,y_min,x_max,y_max (pixels)")
    key_text = f"{FORMAT}:{found.fingerprint}:{size}:{mode}" + (f":{crop}" if crop else "")
    key = hashlib.sha256(key_text.encode()).hexdigest()[:20]
    folder = (root or cache_root()) / "arrays" / key
    decoded = 0
    if not (folder / "meta.json").exists():
        decoded = _build(found.items, size, mode, crop, folder, progress)
    meta = json.loads((folder / "meta.json").read_text())
    bad = meta["bad"]
    items = [i for i in found.items if i.digest not in bad]
    skipped = list(found.skipped) + [(i.relpath, bad[i.digest]) for i in found.items if i.digest in bad]
    assert meta["count"] == len(items), f"cache {folder} does not match the data: delete it"
    images = _readable(folder / "images.u8", (len(items), size, size, 3))
    has_masks = (folder / "masks.u8").exists()
    masks = _readable(folder / "masks.u8", (len(items), size, size, len(meta["mask_classes"]))) if has_masks else None
    sizes = [tuple(meta["sizes"][i.digest]) for i in items]
    return Decoded(items, images, skipped, decoded, size, mode, crop, sizes, masks, meta["mask_classes"])


def _decode_one(job: tuple):
    path, size, mode, crop, box, masks, mask_classes = job
    try:
        image, original = decode(path, size, mode, crop, box)
        return (image, original, _masks(masks, mask_classes, original, size, mode, crop) if masks is not None else None), None
    except BadImage as err:
        return None, str(err)


def _masks(masks, classes: list[str], original: tuple[int, int], size: int, mode: str, crop) -> np.ndarray:
    """(size, size, C): each class's run-length mask, cut and resized as its image was."""
    width, height = original
    out = np.zeros((size, size, len(classes)), np.uint8)
    for name, rle in masks:
        try:
            full = rle_decode(rle, height, width)
        except ValueError as err:
            raise BadImage(f"bad mask of class {name} ({err})") from None
        region = Image.fromarray(full).crop(crop_box(width, height, crop))
        out[:, :, classes.index(name)] = resize_square(region, size, mode, resample=Image.NEAREST, fill=0)
    return out


def _build(items: list[Item], size: int, mode: str, crop, folder: Path, progress: bool) -> int:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    try:
        _decode_into(staging, items, size, mode, crop, progress)
    except BaseException:  # Ctrl-C or an error: nothing half-made stays behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        staging.rename(folder)  # atomic: a reader sees the whole entry or none
    except OSError:  # another process built the same entry first
        shutil.rmtree(staging, ignore_errors=True)
    return len(items)


def _decode_into(staging: Path, items: list[Item], size: int, mode: str, crop, progress: bool) -> None:
    """Decode straight into memory-mapped files, each image into its row as it comes: memory holds about one
    copy of the data (stacking a list of decoded images held two)."""
    mask_classes = sorted({name for i in items for name, _ in i.masks or ()})
    per_image = crop == PER_IMAGE_BOX
    jobs = [(str(i.path), size, mode, None if per_image else crop, i.box if per_image else None, i.masks, mask_classes)
            for i in items]
    images = _writable(staging / "images.u8", (len(items), size, size, 3))
    masks = _writable(staging / "masks.u8", (len(items), size, size, len(mask_classes))) if any(i.masks is not None for i in items) else None
    bad, sizes, row = {}, {}, 0
    # Threads, not processes: PIL lets go of the GIL while it decodes and resizes, and
    # threads need no start-up, no pickling and no `if __name__ == "__main__"` in the caller.
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        bar = tqdm(desc=f"decoding images at {size}px", total=len(jobs), unit="img", leave=False,
                   disable=None if jobs and progress else True)  # None: on a terminal only
        for item, (result, reason) in zip(items, pool.map(_decode_one, jobs)):
            bar.update()
            if reason:
                bad[item.digest] = reason
                continue
            image, sizes[item.digest], mask = result
            images[row] = image
            if masks is not None:
                masks[row] = mask
            row += 1
        bar.close()
    for array, path in ((images, staging / "images.u8"), (masks, staging / "masks.u8")):
        if isinstance(array, np.memmap):  # the rows of the images left out were never written: cut them off
            array.flush()
            os.truncate(path, row * int(np.prod(array.shape[1:])))
    meta = {"size": size, "mode": mode, "count": row, "bad": bad, "sizes": sizes, "mask_classes": mask_classes}
    (staging / "meta.json").write_text(json.dumps(meta))


def _writable(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    if not np.prod(shape):  # numpy cannot map an empty file
        path.touch()
        return np.zeros(shape, np.uint8)
    return np.memmap(path, np.uint8, "w+", shape=shape)


def _readable(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    return np.memmap(path, np.uint8, "r", shape=shape) if np.prod(shape) else np.zeros(shape, np.uint8)
