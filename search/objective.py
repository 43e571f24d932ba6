"""The seam between Optuna and the trainer: one trial = suggest, train, report, record."""

from __future__ import annotations

import dataclasses
import gc
import json
import tempfile
import time
from pathlib import Path

import optuna
import torch
from optuna.artifacts import upload_artifact
from optuna.trial import TrialState

from spaces import Space
from trainers.loop import Diverged, TrainConfig, TrainData, TrainResult, save_weights, train
from trainers.tasks import Task


class TrialFailed(Exception):
    """A trial that cannot finish (NaN loss, out of memory); the study records it and goes on."""


def make_config(space: Space, params: dict, *, epochs: int | None = None, seed: int = 0, **options) -> TrainConfig:
    """The trainer's config: the space's fixed settings, then the trial's choices, then run options."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {
        "epochs": epochs or space.epochs,
        "augment": space.augment,
        "pretrained": space.pretrained,
        "trainable_blocks": space.trainable_blocks,
        "seed": seed,
        **space.fixed,
        **params,
        **{k: v for k, v in options.items() if v is not None},
    }
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"space {space.name!r} sets unknown training options {unknown}: use fields of TrainConfig")
    return TrainConfig(**values)


def model_card(space: Space, config: TrainConfig, data: TrainData) -> dict:
    """Everything needed to rebuild the model and feed it images."""
    return {
        "space": space.name,
        "task": space.task,
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "augment"},
        "class_names": data.class_names,
        "image_size": int(data.images.shape[-1]),
        "resize": space.resize,
        "normalize": "imagenet" if config.starts_pretrained else {"mean": data.mean, "std": data.std},
    }


class Objective:
    def __init__(self, space: Space, data: TrainData, task: Task, store, *, epochs=None, progress=True, **options):
        self.space, self.data, self.task, self.store = space, data, task, store
        self.epochs, self.progress, self.options = epochs, progress, options

    def __call__(self, trial: optuna.Trial) -> float:
        config = make_config(self.space, self.space.suggest(trial), epochs=self.epochs, seed=trial.number, **self.options)
        metric = self.space.metric
        trial.set_user_attr("device", str(self.data.device))
        history, start = [], time.perf_counter()

        def report(epoch: int, metrics: dict[str, float]) -> None:
            history.append(metrics)
            trial.set_user_attr("epochs", history)
            trial.report(metrics[f"valid_{metric}"], epoch)
            if trial.should_prune():
                pruner = type(trial.study.pruner).__name__
                raise optuna.TrialPruned(f"{pruner} at epoch {epoch}, valid {metric} {metrics[f'valid_{metric}']:.4f}")

        try:
            result = train(config, self.data, self.task, metric, report, progress=self.progress)
        except KeyboardInterrupt:  # Optuna marks the trial failed; say why
            trial.set_user_attr("fail_reason", "interrupted")
            raise
        except optuna.TrialPruned as pruned:
            trial.set_user_attr("pruned_reason", str(pruned))
            raise
        except Diverged as err:
            raise self._fail(trial, str(err)) from err
        except RuntimeError as err:  # torch.OutOfMemoryError on CUDA; the CPU allocator says it in words
            if not (isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in str(err)):
                raise
            raise self._fail(trial, f"out of memory: {str(err).splitlines()[0]}") from err
        finally:  # for pruned and failed trials too
            trial.set_user_attr("epochs_run", len(history))
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        self._record(trial, config, result)
        return result.best[f"valid_{metric}"]

    def _fail(self, trial: optuna.Trial, reason: str) -> TrialFailed:
        trial.set_user_attr("fail_reason", reason)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return TrialFailed(reason)

    def _record(self, trial: optuna.Trial, config: TrainConfig, result: TrainResult) -> None:
        trial.set_user_attr("trainable_params", result.trainable_params)
        trial.set_user_attr("total_params", result.total_params)
        trial.set_user_attr("best_epoch", result.best_epoch)
        value = result.best[f"valid_{self.space.metric}"]
        others = [t.value for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if not others or value >= max(others):  # keep the weights of every trial that was best when it ended
            self._save_model(trial, config, result)

    def _save_model(self, trial: optuna.Trial, config: TrainConfig, result: TrainResult) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            weights, card = Path(tmp) / "model.safetensors", Path(tmp) / "model.json"
            save_weights(result.state_dict, weights)
            card.write_text(json.dumps(model_card(self.space, config, self.data), indent=2))
            trial.set_user_attr("weights_artifact", upload_artifact(artifact_store=self.store, file_path=str(weights), study_or_trial=trial))
            trial.set_user_attr("model_artifact", upload_artifact(artifact_store=self.store, file_path=str(card), study_or_trial=trial))
