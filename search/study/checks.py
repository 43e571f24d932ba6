"""What a run checks before any work: the space (its suggest() runs, its options are known), the pretrained
weights it may need, and the data (the study's own images, by content, before they are decoded)."""

from __future__ import annotations

import optuna
from tqdm.auto import tqdm

from search import objectives
from search.record import DataRecord
from search.review.report import skipped_summary
from search.study.config import RunConfig
from search.study.lineage import Start
from search.study.registry import PRUNERS, SAMPLERS
from search.study.training import Training, make_config
from spaces import Space
from trainers.data import discover
from trainers.errors import InputError
from trainers.loop import failure_reason
from trainers.models import is_ours
from trainers.prepare import Prepared, Splitting, prepare, resolve_source
from trainers.tasks import get_task

NEW_STUDY = "start a new study on these with --new-study NAME"


def check_space(space: Space, training: Training) -> None:
    """A space's own mistakes (a failing suggest(), options no trainer knows) stop the run before any work."""
    params = {}
    for name, suggest in (("suggest", space.suggest), ("fine_tune", space.fine_tune)):
        if suggest is None:
            continue
        try:  # fine_tune's choices beside suggest's (it never chooses the model: an earlier study's is fine-tuned)
            params |= suggest(optuna.create_study().ask())
        except Exception as err:
            raise InputError(f"space {space.name!r}: its {name}() fails ({failure_reason(err)}): fix the space") from err
        make_config(space, params, training)
    for registry, name in ((SAMPLERS, space.sampler), (PRUNERS, space.pruner)):
        try:
            registry.get(name)
        except InputError as err:
            raise InputError(f"space {space.name!r}: {err}") from None


def checked_data(config: RunConfig, space: Space, recorded: DataRecord | None, start: Start | None = None) -> Prepared:
    """Find, check and decode the data: other images than the study's are refused before decoding; a new
    study that starts from an earlier model (`start`) must have that model's images and split: its valid and
    test images would otherwise be ones it was trained on."""
    source, store = config.data or space.data, config.location.artifact_store(create=False)
    if start is None and (space.pretrained if config.pretrained is None else config.pretrained):
        check_weights(space, config.weights)
    if start and (config.seed, tuple(space.split)) != (start.data.seed, tuple(start.data.split)):
        raise InputError(f"--from {start.study}: study {start.study!r} split its images with --seed {start.data.seed} into "
                         f"{start.data.split}: run with the same seed and split, or its model's valid and test images "
                         f"would be ones it trained on")
    found = discover(resolve_source(source))
    where, remedy = f"study {config.study_name!r}", "keep the same --seed and split, or start a new study with --new-study NAME"
    if recorded:
        recorded.check(found, f"{where} was run on other images than {source} now holds",
                       f"use the study's images (at any path), or {NEW_STUDY}", store)
    elif start:
        recorded, store, where = start.data, start.store, f"--from {start.study}: study {start.study!r}"
        remedy = f"run with --seed {start.data.seed}, as it was, and the same split"
        recorded.check(found, f"{where} trained its model on other images than {source} now holds",
                       "give its images with --data (at any path)", store)
    prepared = prepare(found, space.image_size, space.resize, crop=space.crop, splitting=Splitting(space.split, config.seed),
                       progress=not config.quiet)
    for line in skipped_summary(prepared.decoded.skipped):
        tqdm.write(line)
    if recorded:
        recorded.check_split(prepared.split_digest, where, remedy)
    return prepared


def check_weights(space: Space, weights: str | None) -> None:
    """Load each pretrained model the space may pick once now, so that missing weights stop the run
    with one error before any trial, not in every trial."""
    task = get_task(space.task)
    for name in space.model_choices():
        if not is_ours(name):
            tqdm.write(f"checking pretrained weights for {name}")
            task.create_model(name, 2, pretrained=True, weights=weights)


def checked_objectives(config: RunConfig, space: Space, existing: optuna.Study | None, prepared: Prepared) -> list[str] | None:
    """The study's objectives (None: the space's metric alone): as asked with --objectives, else as the
    `existing` study has them. A resumed study refuses others: its trials' values would mean other things."""
    asked, then = None, objectives.objectives_of(existing) if existing else None
    if config.objectives:
        task = get_task(space.task)
        class_names = task.class_names(prepared.decoded)
        targets = task.encode(prepared.decoded, class_names)[:2]
        constant = task.constant(targets, class_names)
        known = list(task.metrics(constant.expand(len(targets), *constant.shape), targets))
        asked = objectives.parse(config.objectives, space.metric, known)
        if config.pruner not in (None, "none"):
            raise InputError(f"--pruner {config.pruner} with --objectives: Optuna's pruners take one objective, so a study of "
                             f"several prunes none; leave --pruner out")
    if existing and asked and asked != then:
        has = f"optimizes {','.join(then)}" if then else f"maximizes {space.metric} alone"
        raise InputError(f"study {config.study_name!r} {has}: it keeps that; to search --objectives {config.objectives}, start a "
                         f"new study with --new-study NAME")
    return asked or then
