"""A trial's training config: the space's fixed settings, then the trial's choices, then what the run sets on
every trial (`Training`); and the card that rebuilds the model it trained."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import optuna

from spaces import Space
from trainers.errors import InputError
from trainers.loop import TrainConfig, TrainData
from trainers.tasks import Task, get_task, task_options


@dataclass(frozen=True)
class Training:
    """What a run sets on every trial's training, over the space's settings and the trial's choices; None: as
    those say."""

    epochs: int | None = None  # --epochs
    pretrained: bool | None = None  # ImageNet's weights (--pretrained, --weights)
    weights: str | None = None  # where ImageNet's weights are: a file, or a folder of <model>.safetensors
    start_weights: Path | None = None  # a trained model every trial starts from (--from: search.study.lineage)
    model: str | None = None  # with start_weights, the architecture they fit: its model and its head's hidden layers
    hidden: tuple[int, ...] | None = None

    def overrides(self) -> dict:
        """The TrainConfig fields it sets."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


DRAWS = 64  # random parameter sets drawn (nothing trained) to see which architectures and batch sizes a space takes


def drawn_configs(space: Space, training: Training = Training()) -> list[tuple[TrainConfig, Task]]:
    """The configurations (and tasks) of DRAWS parameter sets of a seeded random search over the space."""
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [make_config(space, space.suggest(draws.ask()), training) for _ in range(DRAWS)]


def make_config(space: Space, params: dict, training: Training = Training(), seed: int = 0) -> tuple[TrainConfig, Task]:
    """The trainer's config and the task: the space's fixed settings, then the trial's choices, then the run's
    `training`. Each name goes to the training config or, where it is one of the task's options, to the task."""
    fields, for_task = {f.name for f in dataclasses.fields(TrainConfig)}, task_options(space.task)
    values = {
        "epochs": space.epochs,
        "augment": space.augment,
        "pretrained": space.pretrained,
        "trainable_blocks": space.trainable_blocks,
        "seed": seed,
        **space.fixed,
        **params,
        **training.overrides(),
    }
    unknown = sorted(set(values) - fields - for_task)
    if unknown:
        raise InputError(f"space {space.name!r} sets unknown training options {unknown}: use fields of TrainConfig "
                         f"or options of the task {space.task!r} ({', '.join(sorted(for_task)) or 'none'})")
    task = get_task(space.task, **{k: v for k, v in values.items() if k in for_task})
    return TrainConfig(**{k: v for k, v in values.items() if k in fields}), task


def model_card(space: Space, config: TrainConfig, task: Task, data: TrainData, started_from: dict | None = None) -> dict:
    """Everything needed to rebuild the model and feed it images, and the model it was fine-tuned from."""
    return {
        "space": space.name,
        "task": space.task,
        "task_options": dataclasses.asdict(task),
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("augment", "start_weights")},
        "class_names": data.class_names,
        "image_size": int(data.images.shape[-1]),
        "resize": space.resize,
        "crop": space.crop,  # cut before resizing: left, top, right, bottom fractions
        "normalize": "imagenet" if config.starts_pretrained else {"mean": data.mean, "std": data.std},
        **({"started_from": started_from} if started_from else {}),
    }
