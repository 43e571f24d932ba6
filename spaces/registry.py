"""The registry of spaces: each built-in space file (spaces/*.py) and each user's .py file registers one."""

from __future__ import annotations

import importlib.util
import traceback
from pathlib import Path

from spaces.space import Space
from trainers.errors import InputError
from trainers.registry import Registry

SPACES: Registry[Space] = Registry("space", " or a .py file")
_REGISTERED: list[Space] = []  # in order, so that loading a file can tell what it added


def register(space: Space) -> Space:
    _REGISTERED.append(space)
    return SPACES.register(space)


def list_spaces() -> list[Space]:
    return [SPACES.get(name) for name in SPACES.names()]


def get_space(name_or_path: str) -> Space:
    """A registered space by name, or the space that a user's .py file registers."""
    if name_or_path.endswith(".py"):
        return _load_file(Path(name_or_path))
    return SPACES.get(name_or_path)


def _load_file(path: Path) -> Space:
    if not path.is_file():
        raise InputError(f"space file {path} does not exist")
    before = len(_REGISTERED)
    spec = importlib.util.spec_from_file_location(f"hpsearch_space_{path.stem}", path)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except SyntaxError as err:
        raise InputError(f"space file {path} line {err.lineno}: {err.msg}: fix the file") from None
    except Exception as err:  # the file runs when it loads: whatever it raises is the user's to fix
        line = next((frame.lineno for frame in reversed(traceback.extract_tb(err.__traceback__))
                     if Path(frame.filename).resolve() == path.resolve()), "?")
        raise InputError(f"space file {path} line {line}: {type(err).__name__}: {err}: fix the file") from None
    added = _REGISTERED[before:]
    if len(added) != 1:
        raise InputError(f"space file {path} must register exactly one Space with spaces.register(Space(...))")
    return added[0]
