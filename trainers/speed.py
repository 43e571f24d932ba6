"""How fast a configuration trains, known before it trains: images per second of its training step (forward,
backward and the optimizer's step, augmented, at its batch size) and of its evaluation, measured by a few steps
of the training loop itself on the run's images and device, and kept per machine as the costs are
(trainers.costs.kept_per_machine): each architecture and batch size is measured once on a machine."""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass

import torch

from trainers.costs import kept_per_machine
from trainers.loop import TrainConfig, TrainData, learner_for, predict, train_step
from trainers.tasks import Task

# The first steps allocate and pick kernels: not timed. (After 2 warm-up steps, the first models a study measured
# came out at 64% of their speed measured again later: MobileNetV2 on digits at batch 64, 305 against 478 images/s.)
WARMUP_STEPS, WARMUP_S = 2, 0.3
TIMED_S, TIMED_STEPS = 0.5, 3  # then steps for at least this long, and at least this many


@dataclass(frozen=True)
class Speed:
    train: float  # images per second of a training step
    evaluate: float  # images per second of predicting the valid split

    def seconds(self, train_images: int, valid_images: int, epochs: int) -> float:
        """A trial's expected training time: each epoch trains on the train split and predicts the valid one."""
        return epochs * (train_images / self.train + valid_images / self.evaluate)


def speed_once(config: TrainConfig, data: TrainData, task: Task) -> Speed:
    """`config`'s speed on `data`'s device, as this machine measured it the first time."""
    learner = learner_for(config, data, task)
    key = "|".join(str(part) for part in (
        learner.model, tuple(data.images.shape[-2:]), config.batch_size, config.eval_batch_size, config.augment,
        config.optimizer, sum(p.numel() for p in learner.model.parameters() if p.requires_grad), torch.get_num_threads()))
    return Speed(**kept_per_machine("speed", key, data.device, lambda: asdict(_measure(learner, config, data, task))))


def _measure(learner, config: TrainConfig, data: TrainData, task: Task) -> Speed:
    rows = data.splits["train"]
    gen = torch.Generator(device=data.device).manual_seed(0)
    order = rows.repeat(-(-2 * config.batch_size // len(rows)))  # at least two batches, where the split is short
    steps = itertools.cycle([b for b in order.split(config.batch_size) if len(b) > 1])  # as training: no batch of one
    learner.model.train()
    start, warm = time.perf_counter(), 0
    while warm < WARMUP_STEPS or time.perf_counter() - start < WARMUP_S:
        train_step(learner, config, data, task, gen, next(steps)).item()
        warm += 1
    start, images, timed = time.perf_counter(), 0, 0
    while timed < TIMED_STEPS or time.perf_counter() - start < TIMED_S:
        batch = next(steps)
        train_step(learner, config, data, task, gen, batch).item()  # .item(): the step has run, on any device
        images, timed = images + len(batch), timed + 1
    train = images / (time.perf_counter() - start)
    valid = data.splits["valid"][: 2 * config.eval_batch_size]
    predict(learner.model, config, data, valid)  # warm-up
    start = time.perf_counter()
    predict(learner.model, config, data, valid)
    return Speed(train=train, evaluate=len(valid) / max(time.perf_counter() - start, 1e-6))

