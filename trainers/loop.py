"""The one training loop. It knows nothing of Optuna: progress goes out through a report callback."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from trainers.augment import Augment
from trainers.errors import InputError
from trainers.models import count_parameters, is_ours
from trainers.tasks import Task

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
SCHEDULES = ("constant", "cyclic", "exponential", "plateau")


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


def failure_reason(err: Exception) -> str:
    """Why training failed, in one line: what a failed trial records."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, Diverged):
        return text
    if isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in text:  # the CPU allocator says it in words
        return f"out of memory: {text}"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@dataclass
class TrainData:
    """A whole data set held on the training device, split by index."""

    images: torch.Tensor  # (N, 3, H, W) uint8, channels-last in memory; on the device, or pinned host memory (`on`)
    targets: torch.Tensor  # one row per image, on the training device
    splits: dict[str, torch.Tensor]  # "train" / "valid" / "test" -> row indices, on the training device
    class_names: list[str]
    mean: tuple[float, float, float]  # the training split's own statistics, in [0, 1]
    std: tuple[float, float, float]
    on: torch.device | None = None  # the training device, where the images did not fit there and stay on the host

    @property
    def device(self) -> torch.device:
        return self.on or self.images.device

    def pixels(self, rows: torch.Tensor) -> torch.Tensor:
        """The uint8 images of `rows`, on the training device: indexed there, or copied from pinned host memory
        (asynchronously: the copy of the next batch overlaps the work on this one)."""
        if self.on is None:
            return self.images[rows]
        return self.images[rows.cpu()].pin_memory().to(self.on, non_blocking=True)


@dataclass
class TrainConfig:
    model: str
    batch_size: int  # images per step
    lr: float  # peak learning rate
    weight_decay: float = 0.0
    epochs: int = 10
    optimizer: str = "adam"
    # the learning rate over training: constant, cyclic (per batch), exponential (per epoch), or plateau
    # (halved after 2 epochs without a better valid metric: ReduceLROnPlateau)
    schedule: str = "constant"
    gamma: float = 0.9  # exponential: the rate's factor per epoch
    patience: int | None = None  # stop when the valid metric has not improved for this many epochs
    pretrained: bool = False
    weights: str | None = None  # local file or folder of pretrained weights
    trainable_blocks: int | None = None  # starting trained (ImageNet's weights, or start_weights): how many of the last blocks train
    start_weights: Path | None = None  # a trained model of this architecture to start from (a .safetensors file)
    hidden: tuple[int, ...] = ()  # hidden layer widths of the head
    augment: Augment = field(default_factory=Augment)
    seed: int = 0
    eval_batch_size: int = 512

    @property
    def starts_pretrained(self) -> bool:
        """Normalised as ImageNet's images were: a timm model from ImageNet weights, or fine-tuned from such a model."""
        return self.pretrained and not is_ours(self.model)

    @property
    def starts_trained(self) -> bool:
        return self.starts_pretrained or self.start_weights is not None

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if self.batch_size < 1 or self.epochs < 1 or not self.lr > 0:
            raise InputError(f"batch_size, epochs and lr must be positive (got {self.batch_size}, {self.epochs}, {self.lr})")


@dataclass
class TrainResult:
    history: list[dict[str, float]]  # one dict per epoch: train_loss, valid_<metric>...
    best_epoch: int  # 1-based
    state_dict: dict[str, torch.Tensor]  # the best epoch's weights, on the CPU
    trainable_params: int
    total_params: int
    valid_outputs: torch.Tensor  # the best epoch's model outputs on the valid split, on the CPU
    inference_ms: float = 0.0  # milliseconds per image of the best epoch's valid evaluation (batched)

    unit = "epoch"  # what one entry of the history is

    @property
    def best(self) -> dict[str, float]:
        return self.history[self.best_epoch - 1]

    @property
    def where(self) -> str:
        return f"at epoch {self.best_epoch}"


class CrossValidated(TrainResult):
    """A result whose history holds one entry per fold (best_epoch 0): its figures are the folds' mean."""

    unit = "fold"

    @property
    def best(self) -> dict[str, float]:
        return {k: sum(h[k] for h in self.history) / len(self.history) for k in self.history[0]}

    @property
    def where(self) -> str:
        return f"mean of {len(self.history)} folds"


@dataclass
class Hooks:
    """The caller's part in training: after each epoch, `checkpoint(state)` gets everything needed to go on after
    it, then `report(epoch, metrics)` is called and may raise to stop training; with `resume=state`, training
    goes on from there as if never stopped (same weights, optimizer, random streams); `progress`: a bar of the
    epochs (on a terminal only); `stop()`, asked after each epoch's report, ends training there as early
    stopping does (a time budget spent)."""

    report: Callable[[int, dict[str, float]], None] | None = None
    checkpoint: Callable[[dict], None] | None = None
    resume: dict | None = None
    progress: bool = True
    stop: Callable[[], bool] | None = None


@dataclass
class Learner:
    """A model with what trains it: its optimizer, its learning-rate schedule (None: constant) and the
    normalization of its input images."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    normalize: Callable[[torch.Tensor], torch.Tensor]


def train(config: TrainConfig, data: TrainData, task: Task, metric: str, hooks: Hooks = Hooks()) -> TrainResult:
    """Train for config.epochs; keep the epoch with the highest valid `metric`."""
    learner = learner_for(config, data, task)
    model, optimizer = learner.model, learner.optimizer
    gen = torch.Generator(device=data.device).manual_seed(config.seed)
    valid_rows = data.splits["valid"]
    valid_targets = data.targets[valid_rows].cpu()
    history, best_epoch, best_state, best_outputs, best_ms = [], 0, None, None, 0.0
    resume, report, checkpoint, scheduler = hooks.resume, hooks.report, hooks.checkpoint, learner.scheduler
    if resume:
        _restore(resume, learner, gen)
        history, best_epoch, best_state, best_outputs = (resume[k] for k in ("history", "best_epoch", "best_state", "best_outputs"))
        best_ms = resume.get("best_ms", 0.0)
    started = resume.get("start") if resume else _start_metrics(model, config, data, task, report)
    epochs = range(len(history) + 1, config.epochs + 1)
    hidden = None if hooks.progress else True  # None: a bar on a terminal only, never in a log
    for epoch in tqdm(epochs, desc="epochs", initial=len(history), total=config.epochs, leave=False, disable=hidden):
        if config.patience and epoch - best_epoch > config.patience:
            break  # early stopping: no better epoch for `patience` epochs
        train_loss = _train_epoch(learner, config, data, task, gen)
        start = time.perf_counter()
        outputs = predict(model, config, data, valid_rows)
        ms = 1000 * (time.perf_counter() - start) / max(1, len(valid_rows))
        metrics = {"train_loss": train_loss} | {f"valid_{k}": v for k, v in task.metrics(outputs, valid_targets).items()}
        if not math.isfinite(metrics["valid_loss"]):
            raise Diverged(f"valid loss became {metrics['valid_loss']} at epoch {epoch}")
        history.append(metrics)
        if config.schedule == "plateau":
            scheduler.step(metrics[f"valid_{metric}"])
        if best_state is None or metrics[f"valid_{metric}"] > history[best_epoch - 1][f"valid_{metric}"]:
            best_epoch, best_outputs, best_ms = epoch, outputs, ms
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if checkpoint:  # before the report: an epoch reported is never trained again, however training stops
            checkpoint({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": _rng_state(gen),
                        "scheduler": scheduler.state_dict() if scheduler else None,
                        "history": history, "best_epoch": best_epoch, "best_state": best_state, "best_outputs": best_outputs,
                        "best_ms": best_ms, "start": started})
        if report:
            report(epoch, metrics)
        if hooks.stop and hooks.stop():
            break
    trainable_params, total_params = count_parameters(model)
    return TrainResult(history, best_epoch, best_state, trainable_params, total_params, best_outputs, best_ms)


def learner_for(config: TrainConfig, data: TrainData, task: Task) -> Learner:
    """The model `config` builds (seeded by it), with its optimizer over the parameters that train, its schedule and
    its input normalization."""
    torch.manual_seed(config.seed)
    model = build_model(config, data, task)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[config.optimizer](trainable, lr=config.lr, weight_decay=config.weight_decay)
    return Learner(model, optimizer, _scheduler(config, optimizer, len(batches_of(data, config))), normalizer(config, data))


def _start_metrics(model, config: TrainConfig, data: TrainData, task: Task, report) -> dict[str, float] | None:
    """A model that starts from trained weights, evaluated on the valid split before its first epoch and
    reported as step 0: its curve starts where the model it came from ended."""
    if config.start_weights is None or report is None:
        return None
    start = {f"valid_{k}": v for k, v in evaluate(model, config, data, task, "valid").items()}
    report(0, start)
    return start


def pick_device(name: str) -> torch.device:
    """cpu, cuda, cuda:N, or auto: cuda where there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is available here; use --device cpu")
    return torch.device(name)


def machine_index(local: int) -> str:
    """Visible GPU `local` as the machine numbers it: its entry in CUDA_VISIBLE_DEVICES (a scheduler's
    allocation, or a --jobs worker's pin), or `local` itself where every GPU is visible."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return visible.split(",")[local].strip() if visible else str(local)


def gpu_of(device: torch.device) -> dict[str, str]:
    """The GPU a CUDA device is: the machine's index for it, and the card's name."""
    return {"index": machine_index(device.index or 0), "name": torch.cuda.get_device_name(device)}


def _restore(resume: dict, learner: Learner, gen: torch.Generator) -> None:
    """Model, optimizer, schedule and random streams as a checkpoint left them."""
    learner.model.load_state_dict(resume["model"])
    learner.optimizer.load_state_dict(resume["optimizer"])
    if learner.scheduler:
        learner.scheduler.load_state_dict(resume["scheduler"])
    _set_rng_state(resume["rng"], gen)


def _rng_state(gen: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "generator": gen.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["generator"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_model(config: TrainConfig, data: TrainData, task: Task) -> torch.nn.Module:
    """The configured network: from ImageNet's weights, from `start_weights` (then not ImageNet's: they are
    in those), or from scratch; where it starts trained, only its last `trainable_blocks` blocks train."""
    model = task.create_model(
        config.model,
        task.num_outputs(data.class_names),
        pretrained=config.pretrained and config.start_weights is None,
        weights=config.weights,
        trainable_blocks=config.trainable_blocks if config.starts_trained else None,
        hidden=config.hidden,
    )
    if config.start_weights is not None:
        model.load_state_dict(load_weights(config.start_weights))
    model.to(data.device)
    if data.device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def autocast(device: torch.device):
    # bf16 needs no loss scaling; on the CPU autocast is slower than float32, so only on CUDA
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def normalizer(config: TrainConfig, data: TrainData) -> Callable[[torch.Tensor], torch.Tensor]:
    """Made once per epoch or evaluation, not per batch: the statistics go to the device once."""
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if config.starts_pretrained else (data.mean, data.std)
    mean = torch.tensor(mean, device=data.device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=data.device).view(1, 3, 1, 1)
    return lambda x: (x - mean) / std


def _scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    if config.schedule == "cyclic":  # up and down between a tenth of lr and lr, a cycle every 4 epochs
        return torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=config.lr / 10, max_lr=config.lr,
                                                 step_size_up=2 * steps_per_epoch, cycle_momentum=False)
    if config.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.gamma)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    return None


def batches_of(data: TrainData, config: TrainConfig, order: torch.Tensor | None = None) -> list[torch.Tensor]:
    order = data.splits["train"] if order is None else order
    # a last batch of one image breaks BatchNorm: leave it out (the next shuffle brings it back)
    return [b for b in order.split(config.batch_size) if len(b) > 1 or len(order) == 1]


def _train_epoch(learner: Learner, config: TrainConfig, data: TrainData, task: Task, gen) -> float:
    learner.model.train()
    rows = data.splits["train"]
    batches = batches_of(data, config, rows[torch.randperm(len(rows), generator=gen, device=data.device)])
    total = torch.zeros((), device=data.device)
    for batch in batches:
        total += train_step(learner, config, data, task, gen, batch) * len(batch)
    if config.schedule == "exponential":
        learner.scheduler.step()
    mean_loss = (total / sum(len(b) for b in batches)).item()  # one device sync per epoch
    if not math.isfinite(mean_loss):
        raise Diverged(f"training loss became {mean_loss}")
    return mean_loss


def train_step(learner: Learner, config: TrainConfig, data: TrainData, task: Task, gen, batch: torch.Tensor) -> torch.Tensor:
    """One optimizer step on the rows `batch`, augmented; its loss, detached, on the device (not synchronized)."""
    x = data.pixels(batch).float().div_(255)
    x, theta = config.augment(x, gen)
    y = data.targets[batch]
    if theta is not None:
        y = task.warp_targets(y, theta)
    with autocast(data.device):
        loss = task.loss(learner.model(learner.normalize(x)), y)
    learner.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    learner.optimizer.step()
    if config.schedule == "cyclic":
        learner.scheduler.step()
    return loss.detach()


@torch.no_grad()
def predict(model, config: TrainConfig, data: TrainData, rows: torch.Tensor) -> torch.Tensor:
    """Model outputs for `rows`, in float32 on the CPU."""
    model.eval()
    normalize, outputs = normalizer(config, data), []
    for batch in rows.split(config.eval_batch_size):
        x = normalize(data.pixels(batch).float().div_(255))
        with autocast(data.device):
            outputs.append(model(x).float().cpu())
    return torch.cat(outputs)


def chance_level(task: Task, data: TrainData, metric: str) -> tuple[float, float]:
    """The valid `metric` of a model that ignores its input and always gives the training split's commonest
    answer (chance), and what it scores with one valid image more answered right: a model better than
    chance reaches the second. (A bare comparison with chance marked 1 of 8 digits trials that learned
    nothing: the others scored 0.019206 against 0.0192, a difference no image makes.)"""
    rows = data.splits["valid"]
    targets = data.targets[rows].cpu()
    constant = task.constant(data.targets[data.splits["train"]].cpu(), data.class_names)
    outputs = constant.expand(len(rows), *constant.shape).clone()
    chance = task.metrics(outputs, targets)[metric]
    right = task.right_answers(targets, data.class_names)
    for i in range(len(rows)):  # the first image the constant answer gets wrong, answered right
        one = outputs.clone()
        one[i] = right[i]
        better = task.metrics(one, targets)[metric]
        if better > chance:
            return chance, better
    return chance, chance  # every valid image answered right already


def evaluate(model, config: TrainConfig, data: TrainData, task: Task, split: str) -> dict[str, float]:
    rows = data.splits[split]
    return task.metrics(predict(model, config, data, rows), data.targets[rows].cpu())


def save_weights(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))
