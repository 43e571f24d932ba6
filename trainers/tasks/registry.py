"""The registry of tasks (trainers.tasks.*): a task class registers itself under its `name`."""

from __future__ import annotations

import dataclasses

from trainers.errors import InputError
from trainers.registry import Registry
from trainers.tasks.task import Task

TASKS: Registry[type[Task]] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    return TASKS.register(cls)


def list_tasks() -> list[str]:
    return TASKS.names()


def task_options(name: str) -> set[str]:
    """The option names a task takes."""
    return {f.name for f in dataclasses.fields(TASKS.get(name))}


def get_task(name: str, **options) -> Task:
    unknown = sorted(set(options) - task_options(name))
    if unknown:
        raise InputError(f"task {name!r} has no options {unknown}: it takes {sorted(task_options(name)) or 'none'}")
    return TASKS.get(name)(**options)
