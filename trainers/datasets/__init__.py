"""Data that ships with hpsearch, written once as ordinary image folders and then read like a user's."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from trainers.datasets.checkbox import render_checkbox
from trainers.datasets.digits import write_digits
from trainers.datasets.drillbit import render_drillbit
from trainers.datasets.localize import render_localize
from trainers.datasets.steel import render_steel
from trainers.digests import cache_root
from trainers.errors import InputError

# name -> (writer, version): bump the version when a writer's output changes
BUILTIN = {
    "checkbox": (render_checkbox, 2),
    "digits": (write_digits, 1),
    "drillbit": (render_drillbit, 2),
    "steel": (render_steel, 1),
    "localize": (render_localize, 1),
}


def builtin_path(name: str) -> Path:
    """The folder of built-in data set `name`, written on first use."""
    if name not in BUILTIN:
        raise InputError(f"unknown built-in data {name!r}: use one of {', '.join(BUILTIN)}")
    write, version = BUILTIN[name]
    folder = cache_root() / "datasets" / f"{name}-v{version}"
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
        try:
            write(staging)
        except BaseException:  # Ctrl-C or an error: nothing half-written stays behind
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            staging.rename(folder)  # all or nothing, even when two processes race
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return folder
