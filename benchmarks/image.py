"""The container image measured: its build with a cold and then a warm pip cache, its size, and the time from
`podman run` to the first trial's first epoch beside `hpsearch run` outside a container, on this machine.

Each build is `deploy/container/build --no-cache` (every layer built again; the base image, made once from
Debian's packages where no registry answers, is kept); the cold one first empties podman's build cache mounts,
where the image's pip keeps its cache. The first-epoch times are one run each, one after the other, each with
a new study and an empty cache folder (decoded images, costs), so that both do the same work: the digits
space, one trial of one epoch, its first epoch's report read from the study's SQLite file.

    python benchmarks/image.py [--skip-build]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).parent.parent
IMAGE = f"hpsearch:{version('hpsearch')}"  # what `make image` builds
BUILD_CACHE = Path("/var/tmp/buildah-cache")  # podman 4's RUN --mount=type=cache folders
RUN = ["run", "--space", "digits", "--trials", "1", "--epochs", "1", "--quiet"]


def podman(*args) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout.strip()


def build_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([ROOT / "deploy" / "container" / "build", "--no-cache"], check=True, capture_output=True)
    return time.perf_counter() - start


def seconds_to_first_epoch(process: subprocess.Popen, database: Path, start: float) -> float:
    """Seconds from `start` until the study in `database` has an epoch's report; then the process is stopped."""
    while True:
        if database.exists():
            try:
                with sqlite3.connect(database, timeout=1) as db:
                    if db.execute("SELECT count(*) FROM trial_intermediate_values").fetchone()[0]:
                        seconds = time.perf_counter() - start
                        break
            except sqlite3.OperationalError:  # the study's tables not made yet
                pass
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.wait()
    return seconds


def outside(folder: Path) -> float:
    hpsearch = Path(sys.executable).parent / "hpsearch"
    start = time.perf_counter()
    process = subprocess.Popen([hpsearch, *RUN, "--storage", f"sqlite:///{folder}/studies.db"], cwd=folder,
                               env=os.environ | {"HPSEARCH_CACHE": str(folder / "cache")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return seconds_to_first_epoch(process, folder / "studies.db", start)


def inside() -> float:
    study, cache = podman("volume", "create"), podman("volume", "create")
    try:
        database = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", study)) / "studies.db"
        start = time.perf_counter()
        process = subprocess.Popen(["podman", "run", "--rm", "--network=host", f"--volume={study}:/study",
                                    f"--volume={cache}:/cache", IMAGE, *RUN],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return seconds_to_first_epoch(process, database, start)
    finally:
        podman("volume", "rm", "--force", study, cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-build", action="store_true", help="measure the image already built")
    args = parser.parse_args()
    if not args.skip_build:
        shutil.rmtree(BUILD_CACHE, ignore_errors=True)
        cold = build_seconds()
        warm = build_seconds()
        print(f"build, every layer: {cold:.0f} s with a cold pip cache, {warm:.0f} s with a warm one")
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE))
    print(f"image {IMAGE}: {size / 1e9:.2f} GB")
    with tempfile.TemporaryDirectory() as folder:
        out = outside(Path(folder))
    container = inside()
    print(f"to the first trial's first epoch ({' '.join(RUN)}): {out:.1f} s outside a container, "
          f"{container:.1f} s from podman run: {container / out:.2f}x")


if __name__ == "__main__":
    main()
