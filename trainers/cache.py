"""Decode every image once per (data fingerprint, size, resize mode) into a uint8 array on disk.

Every trial and every later run memory-maps the same file; nothing reads the images again
until the data, the size or the resize mode change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from trainers.data import Discovery, Item
from trainers.images import BadImage, decode

FORMAT = 1  # bump when the array layout or the decoding changes


def cache_root() -> Path:
    return Path(os.environ.get("HPSEARCH_CACHE") or Path.home() / ".cache" / "hpsearch")


@dataclass
class Decoded:
    items: list[Item]  # the usable items, in the order of the rows of images
    images: np.ndarray  # (N, size, size, 3) uint8, memory-mapped
    skipped: list[tuple[str, str]]  # (relpath, reason) for every file left out
    decoded: int  # how many files this call decoded: 0 when the cache was used


def decode_once(found: Discovery, size: int, mode: str, root: Path | None = None, progress: bool = True,
                crop: tuple[float, float, float, float] | None = None) -> Decoded:
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
    images = np.load(folder / "images.npy", mmap_mode="r")
    assert len(images) == len(items), f"cache {folder} does not match the data: delete it"
    return Decoded(items, images, skipped, decoded)


def _decode_one(job: tuple):
    try:
        return decode(*job), None
    except BadImage as err:
        return None, str(err)


def _build(items: list[Item], size: int, mode: str, crop, folder: Path, progress: bool) -> int:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    jobs = [(str(i.path), size, mode, crop) for i in items]
    results = []
    # Threads, not processes: PIL lets go of the GIL while it decodes and resizes, and
    # threads need no start-up, no pickling and no `if __name__ == "__main__"` in the caller.
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        bar = tqdm(desc=f"decoding images at {size}px", total=len(jobs), unit="img", leave=False, disable=not (jobs and progress))
        for result in pool.map(_decode_one, jobs):
            results.append(result)
            bar.update()
        bar.close()
    good = [array for array, _ in results if array is not None]
    bad = {item.digest: reason for item, (_, reason) in zip(items, results) if reason}
    images = np.stack(good) if good else np.zeros((0, size, size, 3), np.uint8)
    np.save(staging / "images.npy", images)
    (staging / "meta.json").write_text(json.dumps({"size": size, "mode": mode, "bad": bad}))
    try:
        staging.rename(folder)  # atomic: a reader sees the whole entry or none
    except OSError:  # another process built the same entry first
        shutil.rmtree(staging, ignore_errors=True)
    return len(jobs)
