import io

import pytest
import torch

from trainers.augment import Augment
from trainers.errors import InputError
from trainers.loop import Diverged, Hooks, TrainConfig, train
from trainers.models import create_model
from trainers.prepare import prepare, to_device
from trainers.tasks import get_task


@pytest.fixture
def data(tiny_images):
    return to_device(prepare(str(tiny_images), 16, "stretch"), get_task("classify"), torch.device("cpu"))


def test_training_learns_and_reports_every_epoch(data):
    reports = []
    config = TrainConfig(model="baseline", batch_size=8, lr=3e-3, epochs=6, augment=Augment(0.1, 0.02, 0.05))
    result = train(config, data, get_task("classify"), "f1_weighted", Hooks(report=lambda e, m: reports.append((e, m)), progress=False))
    assert [e for e, _ in reports] == [1, 2, 3, 4, 5, 6]
    assert set(reports[0][1]) == {"train_loss", "valid_loss", "valid_accuracy", "valid_f1_weighted"}
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best["valid_f1_weighted"] == max(m["valid_f1_weighted"] for _, m in reports)
    assert result.best["valid_f1_weighted"] > 0.6  # three easy classes
    assert set(result.state_dict) == set(create_model("baseline", 3).state_dict()) and result.total_params == 238_793


def test_a_report_callback_can_stop_training(data):
    class Stop(Exception):
        pass

    def report(epoch, metrics):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(TrainConfig(model="baseline", batch_size=8, lr=1e-3, epochs=5), data, get_task("classify"), "f1_weighted", Hooks(report, progress=False))


@pytest.mark.parametrize("schedule", ["constant", "cyclic", "exponential"])
def test_training_resumed_from_a_checkpoint_ends_as_if_never_stopped(data, schedule):
    config = TrainConfig(model="baseline", batch_size=8, lr=3e-3, epochs=4, augment=Augment(0.1, 0.02, 0.05), schedule=schedule)
    task, saved = get_task("classify"), {}

    def keep(state):  # through bytes, as a checkpoint file would be
        buffer = io.BytesIO()
        torch.save(state, buffer)
        saved[state["epoch"]] = buffer.getvalue()

    straight = train(config, data, task, "f1_weighted", Hooks(progress=False, checkpoint=keep))
    assert sorted(saved) == [1, 2, 3, 4]
    resumed_at = []
    resumed = train(config, data, task, "f1_weighted", Hooks(progress=False, report=lambda e, m: resumed_at.append(e),
                    resume=torch.load(io.BytesIO(saved[2]), weights_only=False)))
    assert resumed_at == [3, 4] and resumed.history == straight.history and resumed.best_epoch == straight.best_epoch
    assert all(torch.equal(resumed.state_dict[k], v) for k, v in straight.state_dict.items())


def test_early_stopping_ends_training_after_patience_epochs_without_improvement(data):
    config = TrainConfig(model="baseline", batch_size=8, lr=1e-9, epochs=20, patience=2)  # too small a rate to improve
    result = train(config, data, get_task("classify"), "f1_weighted", Hooks(progress=False))
    assert len(result.history) == result.best_epoch + 2 < 20


def test_nan_loss_stops_training(data, broken_models):
    with pytest.raises(Diverged, match="nan"):
        train(TrainConfig(model="nan_cnn", batch_size=8, lr=1e-3, epochs=2), data, get_task("classify"), "f1_weighted", Hooks(progress=False))


def test_unknown_options_fail_loudly():
    with pytest.raises(InputError, match="unknown optimizer 'sgdd'"):
        TrainConfig(model="baseline", batch_size=8, lr=1e-3, optimizer="sgdd")
