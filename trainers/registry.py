"""The one way hpsearch registers things by name: models, tasks, spaces, samplers and pruners. As in timm's
registry, each kind has one Registry in a module of its own, a definition registers itself where it is
defined (importing that module), and `names()` and `get()` are the only doors."""

from __future__ import annotations

from typing import Generic, TypeVar
from trainers.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, hint: str = ""):
        self.kind, self.hint = kind, hint  # hint: what else `get` accepts, for its error ("or a timm model name")
        self._entries: dict[str, T] = {}

    def register(self, entry: T, name: str | None = None) -> T:
        """Register `entry` under `name`, else its own `name` attribute, else its function or class name.
        Returns it, so that it serves as a decorator."""
        self._entries[name or getattr(entry, "name", None) or entry.__name__] = entry
        return entry

    def remove(self, name: str) -> None:
        del self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise InputError(f"unknown {self.kind} {name!r}: use one of {', '.join(self.names())}{self.hint}")
        return self._entries[name]
