"""Search spaces: one small file each, registered by name.

A space says what data it trains on, how images are prepared, and which hyperparameters the
search may choose (`suggest`). It knows Optuna's trial only to call `trial.suggest_*`.
Parameter names are permanent keys in every stored study: never rename one.
"""

from __future__ import annotations

import importlib.util
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainers.augment import Augment
from trainers.images import PER_IMAGE_BOX, RESIZE_MODES


@dataclass(frozen=True)
class Space:
    name: str
    task: str  # a trainers.tasks name: classify, multilabel, segment, localize or ovr
    data: str  # default data: "builtin:NAME", a folder of class folders or a CSV manifest
    suggest: Callable[[Any], dict]  # trial -> TrainConfig fields (model, batch_size, lr, ...)
    summary: str  # one line for `hpsearch spaces`
    image_size: int = 64  # pixels per side after resizing
    resize: str = "pad-reflect"  # one of trainers.images.RESIZE_MODES
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / valid / test fractions
    epochs: int = 10
    metric: str = "f1_weighted"  # the valid metric the search maximizes
    augment: Augment = field(default_factory=Augment)
    pretrained: bool = False  # ImageNet weights for timm models (needs them offline: --weights)
    trainable_blocks: int | None = None  # with pretrained weights: last N blocks train, the rest freeze
    sampler: str = "tpe"  # a name of search.study.strategy.SAMPLERS
    pruner: str = "patient"  # a name of search.study.strategy.PRUNERS
    pruner_options: dict = field(default_factory=dict)  # its keyword arguments, beside those it derives from the epochs
    fixed: dict = field(default_factory=dict)  # TrainConfig fields the search does not vary
    # region of interest: left, top, right, bottom fractions, or "manifest": each image's own box from the manifest
    crop: tuple[float, float, float, float] | str | None = None
    data_format: str | None = None  # what --data must hold, where it differs from the task's

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"space {self.name!r}: resize {self.resize!r} is not one of {', '.join(RESIZE_MODES)}")
        if self.crop == PER_IMAGE_BOX:
            pass
        elif self.crop and not (0 <= self.crop[0] < self.crop[2] <= 1 and 0 <= self.crop[1] < self.crop[3] <= 1):
            raise ValueError(f"space {self.name!r}: crop {self.crop} must be {PER_IMAGE_BOX!r}, or left < right and "
                             f"top < bottom, fractions in [0, 1]")
        if abs(sum(self.split) - 1) > 1e-6 or min(self.split) <= 0:
            raise ValueError(f"space {self.name!r}: split {self.split} must be three positive fractions adding to 1")


_SPACES: dict[str, Space] = {}
_REGISTERED: list[Space] = []  # in order, so that loading a file can tell what it added


def register(space: Space) -> Space:
    _SPACES[space.name] = space
    _REGISTERED.append(space)
    return space


def list_spaces() -> list[Space]:
    return [_SPACES[name] for name in sorted(_SPACES)]


def get_space(name_or_path: str) -> Space:
    """A registered space by name, or the space that a user's .py file registers."""
    if name_or_path.endswith(".py"):
        return _load_file(Path(name_or_path))
    if name_or_path not in _SPACES:
        raise ValueError(f"unknown space {name_or_path!r}: use one of {', '.join(sorted(_SPACES))} or a .py file")
    return _SPACES[name_or_path]


def _load_file(path: Path) -> Space:
    if not path.is_file():
        raise ValueError(f"space file {path} does not exist")
    before = len(_REGISTERED)
    spec = importlib.util.spec_from_file_location(f"hpsearch_space_{path.stem}", path)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except SyntaxError as err:
        raise ValueError(f"space file {path} line {err.lineno}: {err.msg}: fix the file") from None
    except Exception as err:  # the file runs when it loads: whatever it raises is the user's to fix
        line = next((frame.lineno for frame in reversed(traceback.extract_tb(err.__traceback__))
                     if Path(frame.filename).resolve() == path.resolve()), "?")
        raise ValueError(f"space file {path} line {line}: {type(err).__name__}: {err}: fix the file") from None
    added = _REGISTERED[before:]
    if len(added) != 1:
        raise ValueError(f"space file {path} must register exactly one Space with spaces.register(Space(...))")
    return added[0]


from spaces import checkbox, digits, drillbit, localize, ovr, steel  # noqa: E402,F401  (importing a space registers it)
