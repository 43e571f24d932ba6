"""Big folders: what a folder of 10,000, 30,000 and 100,000 small images costs before the first trial. For each,
in fresh processes with an empty cache: the first run's scan (listing), hash (content digests) and decode
seconds, and the decoding's peak memory against the decoded array's size; then the second run's seconds from
the command's start until its first trial starts (`hpsearch run`, the digests and the decoded array found in
the cache).

    python benchmarks/scale.py [--sizes 10000,30000,100000] [--side 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FIRST = """
import json, resource, sys, time
t0 = time.perf_counter()
from trainers.data import _from_folder
from pathlib import Path
found = _from_folder(Path(sys.argv[1]))
t1 = time.perf_counter()
from trainers.data import discover
discovery = discover(sys.argv[1])
t2 = time.perf_counter()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from trainers.cache import decode_once
decoded = decode_once(discovery, int(sys.argv[2]), "stretch", progress=False)
t3 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"files": len(found.items), "scan": t1 - t0, "hash": t2 - t1 - (t1 - t0), "decode": t3 - t2,
                  "rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024, "array_mb": decoded.images.nbytes / 2**20}))
"""
SPACE = """
from spaces import Space, register
register(Space(name="scale", task="classify", data=".", summary="scale benchmark", image_size={side}, resize="stretch",
               epochs=1, suggest=lambda t: {{"model": "baseline", "batch_size": 64, "lr": 1e-3}}))
"""


def make_images(folder: Path, n: int, side: int) -> None:
    rng = np.random.default_rng(0)
    for c in range(10):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"class{i % 10}" / f"{i:06d}.png", compress_level=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--side", type=int, default=32, help="pixels per side of the images and of the decoded array")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; images {args.side}x{args.side} PNG, decoded at {args.side} px")
    for n in map(int, args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"hpsearch-scale-{n}-"))
        start = time.perf_counter()
        make_images(work / "images", n, args.side)
        env = {**os.environ, "HPSEARCH_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
        made = time.perf_counter() - start
        first = json.loads(subprocess.run([sys.executable, "-c", FIRST, str(work / "images"), str(args.side)], env=env,
                                          capture_output=True, text=True, check=True).stdout)
        (work / "space.py").write_text(SPACE.format(side=args.side))
        storage = f"sqlite:///{work / 'studies.db'}"
        launched = time.time()
        subprocess.run([str(Path(sys.executable).parent / "hpsearch"), "run", "--space", str(work / "space.py"), "--data",
                        str(work / "images"), "--trials", "1", "--quiet", "--storage", storage], env=env, cwd=work,
                       check=True, capture_output=True)
        import optuna

        started = optuna.load_study(study_name="scale", storage=storage).trials[0].datetime_start.timestamp()
        growth = first["rss_peak_mb"] - first["rss_before_mb"]
        print(f"{n:7d} images ({made:.0f} s to write): first run scan {first['scan']:.1f} s, hash {first['hash']:.1f} s, "
              f"decode {first['decode']:.1f} s, memory grew {growth:.0f} MB while decoding for a {first['array_mb']:.0f} MB "
              f"array ({growth / first['array_mb']:.2f}x); second run: first trial after {started - launched:.1f} s", flush=True)


if __name__ == "__main__":
    main()
