"""What a run opens before its first trial, checked before any work, cheapest first: the device, the storage and
the study if it exists, the model its trials start from, the space, the sampler and pruner, what the study is
given before it draws, the data (by content, before it is decoded), the objectives; then the storage of a new
database, once the data is found good (bad input leaves no database behind). The `Run` that results is carried
through the study loop (search.study.run) and into each trial (search.study.objective)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage

from search.objectives import objectives_of
from search.record import StudyRecord
from search.study.checks import check_space, checked_data, checked_objectives
from search.study.config import RunConfig
from search.study.expected import ExpectedSeconds
from search.study.known import Prior, history_from, known_configurations
from search.study.lineage import Start, starting_model
from search.study.meter import CostMeter
from search.study.resume import retry
from search.study.training import Training
from search.study.workers import spread_over
from spaces import Space, get_space
from trainers.costs import CostLimits
from trainers.errors import InputError
from trainers.loop import TrainData, pick_device
from trainers.prepare import Prepared, to_device
from trainers.tasks import get_task


@dataclass(frozen=True)
class Opened:
    """What a run found before its data: the storage (None: a database file not made yet) and the study in it."""

    storage: BaseStorage | None
    existing: optuna.Study | None
    heartbeat: int | None  # seconds; None for a journal, which keeps none


@dataclass(frozen=True)
class Run:
    """A run of a study: its configuration, and everything it opened and checked before its first trial."""

    config: RunConfig
    space: Space  # as its trials see it: with --from, the earlier model's preparation and the fine-tuning search
    gpus: list[int] | None  # the visible GPUs the --jobs workers are spread over
    storage: BaseStorage
    heartbeat: int | None
    store: FileSystemArtifactStore
    start: Start | None  # the earlier model every trial starts from (--from)
    training: Training  # what the run sets on every trial's training
    choices: dict[str, str]  # {"sampler": name, "pruner": name}
    objectives: list[str] | None  # a multi-objective study's (search.objectives); None: the space's metric alone
    prior: Prior  # what the study is given before it draws
    prepared: Prepared
    data: TrainData  # on this process's training device
    meter: CostMeter
    expected: ExpectedSeconds  # what a configuration is expected to take

    @property
    def epochs(self) -> int:
        return self.config.epochs or self.space.epochs

    @property
    def limits(self) -> CostLimits:
        return CostLimits(**self.config.limits)

    @property
    def seconds_left(self) -> float | None:
        """Of the run's --timeout; None without one."""
        return None if self.config.deadline is None else self.config.deadline - time.time()

    @property
    def out_of_time(self) -> bool:
        """Whether its --timeout is spent (never without one): no trial starts, the one in progress stops."""
        left = self.seconds_left
        return left is not None and left <= 0

    @property
    def progress(self) -> bool:
        return not self.config.quiet

    @property
    def started_from(self) -> dict | None:
        """The earlier model every trial starts from, as the study and each model card record it."""
        return self.start.lineage if self.start else None


def open_run(config: RunConfig, space: Space | None = None) -> Run:
    """`config`'s run, on the space it names (or `space`, one made in code), checked and opened."""
    space = space or get_space(config.space)
    config = config if config.study or config.new_study else dataclasses.replace(config, study=space.name)
    if config.timeout and config.deadline is None:  # the budget counts from the start; --jobs workers get its end
        config = dataclasses.replace(config, deadline=time.time() + config.timeout)
    device = pick_device(config.device)
    gpus = spread_over(device, config.gpus)
    device = torch.device("cuda", gpus[0]) if gpus else device  # this process is worker 0
    if config.cost_device == "cuda" and not torch.cuda.is_available():
        raise InputError("--cost-device cuda: no CUDA device is available here; measure on the CPU with --cost-device cpu")
    opened = _open_study(config)
    start = started(config, space, opened.existing)
    training = (dataclasses.replace(start.training, epochs=config.epochs) if start
                else Training(epochs=config.epochs, pretrained=config.pretrained, weights=config.weights))
    space = start.space(space) if start else space
    check_space(space, training)
    recorded = StudyRecord.read(opened.existing) if opened.existing else StudyRecord()
    choices = search_choices(config, space, recorded.search or {})
    prior = _prior(config, space, opened.existing, start)
    prepared = checked_data(config, space, recorded.data, start)  # before the study
    names = checked_objectives(config, space, opened.existing, prepared)
    if names:  # Optuna's pruners take one objective: a study of several runs every trial to its end
        choices = {**choices, "pruner": "none"}
    where = config.location
    store = where.artifact_store()
    storage = opened.storage or where.open(opened.heartbeat, config.storage_wait, retry)
    data = to_device(prepared, get_task(space.task), device)
    meter = CostMeter(data, torch.device(config.cost_device) if config.cost_device else data.device)
    return Run(config=config, space=space, gpus=gpus, storage=storage, heartbeat=opened.heartbeat, store=store,
               start=start, training=training, choices=choices, objectives=names, prior=prior, prepared=prepared, data=data,
               meter=meter, expected=ExpectedSeconds(space, training, data, config.epochs or space.epochs))


def _open_study(config: RunConfig) -> Opened:
    """The storage, opened once, before any work where the study may exist (for a new database file: none yet),
    and the study in it."""
    where = config.location
    where.check_folder()
    heartbeat = None if where.journal else config.heartbeat
    storage = where.open(heartbeat, config.storage_wait, retry) if where.exists() else None
    exists = storage is not None and config.study_name in optuna.get_all_study_names(storage)
    if exists and config.new_study:
        raise InputError(f"study {config.study_name!r} already exists in {where.safe}: name another with --new-study")
    return Opened(storage, optuna.load_study(study_name=config.study_name, storage=storage) if exists else None, heartbeat)


def _prior(config: RunConfig, space: Space, existing: optuna.Study | None, start: Start | None) -> Prior:
    """What the study is given before it draws: the main process gives it, before any worker starts."""
    if config.worker:
        return Prior()
    asked = [n.strip() for n in config.objectives.split(",")] if config.objectives else None
    prior = Prior(history_from(config.learn_from, config.others, space, asked or (objectives_of(existing) if existing else None)),
                  known_configurations(space, config, study_is_new=not (existing and existing.get_trials(deepcopy=False))))
    model = start.architecture["model"] if start else None
    if start and any(k.params.get("model", model) != model for k in prior.known):
        raise InputError(f"--enqueue with --from: a set names another model than {model!r}, which every trial starts "
                         f"from; leave the model out of the sets")
    return prior


def started(config: RunConfig, space: Space, existing: optuna.Study | None) -> Start | None:
    """The earlier model every trial starts from (--from), where there is one; checked before any work."""
    if config.from_model and (config.pretrained or config.weights):
        raise InputError(f"--from {config.from_model} with --pretrained or --weights: every trial starts from that study's "
                         f"model, not from ImageNet's weights; leave them out")
    recorded = StudyRecord.read(existing).started_from if existing else None
    if config.from_model and existing and not recorded and existing.get_trials(deepcopy=False):
        raise InputError(f"--from {config.from_model}: study {config.study_name!r} has trials that started from scratch; "
                         f"start a new study with --new-study NAME")
    return starting_model(config.from_model, config.others, space, config.study_name, recorded)


def search_choices(config: RunConfig, space: Space, then: dict[str, str]) -> dict[str, str]:
    """The sampler and the pruner: as asked, else as the study recorded, else the space's. A resumed study
    refuses another: its trials would mix two searches."""
    chosen = {}
    for what, asked, default in (("sampler", config.sampler, space.sampler), ("pruner", config.pruner, space.pruner)):
        if asked and then.get(what) and asked != then[what]:
            raise InputError(f"study {config.study_name!r} searches with --{what} {then[what]}: it keeps it; to try {asked}, "
                             f"start a new study with --new-study NAME")
        chosen[what] = asked or then.get(what) or default
    return chosen
