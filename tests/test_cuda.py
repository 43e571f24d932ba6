"""The CUDA path: data on the GPU, channels-last weights, bf16 autocast. Runs where a GPU is; CI has none."""

import io

import pytest
import torch

from trainers.augment import Augment
from trainers.loop import Hooks, TrainConfig, build_model, predict, train
from trainers.prepare import prepare, to_device
from trainers.tasks import get_task

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_training_on_cuda_keeps_data_on_the_gpu_channels_last_in_bf16(tiny_images):
    task, device = get_task("classify"), torch.device("cuda")
    data = to_device(prepare(str(tiny_images), 16, "stretch"), task, device)
    assert data.images.is_cuda and data.targets.is_cuda and all(rows.is_cuda for rows in data.splits.values())
    assert data.images.is_contiguous(memory_format=torch.channels_last)

    config = TrainConfig(model="baseline", batch_size=8, lr=3e-3, epochs=3)
    result = train(config, data, task, "f1_weighted", Hooks(progress=False))
    assert result.best["valid_f1_weighted"] > 0.6 and all(not v.is_cuda for v in result.state_dict.values())

    model = build_model(config, data, task)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    outputs = predict(model, config, data, data.splits["valid"])
    assert seen and set(seen) == {torch.bfloat16} and outputs.dtype == torch.float32 and not outputs.is_cuda


def test_a_cuda_trial_resumed_from_its_checkpoint_ends_as_if_never_stopped(tiny_images):
    task = get_task("classify")
    data = to_device(prepare(str(tiny_images), 16, "stretch"), task, torch.device("cuda"))
    config = TrainConfig(model="baseline", batch_size=8, lr=3e-3, epochs=3, augment=Augment(0.1, 0.02, 0.05))
    saved = {}

    def keep(state):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        saved[state["epoch"]] = buffer.getvalue()

    straight = train(config, data, task, "f1_weighted", Hooks(progress=False, checkpoint=keep))
    resumed = train(config, data, task, "f1_weighted", Hooks(progress=False,
                    resume=torch.load(io.BytesIO(saved[1]), map_location="cpu", weights_only=True)))
    assert resumed.history == straight.history
    assert all(torch.equal(resumed.state_dict[k], v) for k, v in straight.state_dict.items())


def test_data_too_big_for_the_gpu_streams_from_pinned_memory_and_trains_the_same(tiny_images, monkeypatch):
    import trainers.prepare

    task, device = get_task("classify"), torch.device("cuda")
    config = TrainConfig(model="baseline", batch_size=8, lr=3e-3, epochs=2, augment=Augment(0.1, 0.02, 0.05))
    on_gpu = to_device(prepare(str(tiny_images), 16, "stretch"), task, device)
    monkeypatch.setattr(trainers.prepare, "STREAM_ABOVE", 0.0)  # as if the images did not fit
    streamed = to_device(prepare(str(tiny_images), 16, "stretch"), task, device)
    assert not streamed.images.is_cuda and streamed.images.is_pinned() and streamed.device == device
    a = train(config, on_gpu, task, "f1_weighted", Hooks(progress=False))
    b = train(config, streamed, task, "f1_weighted", Hooks(progress=False))
    assert a.history == b.history and all(torch.equal(a.state_dict[k], v) for k, v in b.state_dict.items())


def test_jobs_workers_on_the_gpus_each_trial_records_its_card(tiny_images, tmp_path):
    """`--jobs 2` on this machine's GPUs: whichever worker ran it, each trial trained on CUDA and says which card."""
    import optuna
    from conftest import TINY_SPACE
    from test_study import hpsearch

    hpsearch("run", "--space", TINY_SPACE, "--data", tiny_images, "--quiet", "--trials", 4, "--jobs", 2, "--device", "cuda",
             cwd=tmp_path)
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'studies.db'}").trials
    visible = [str(i) for i in range(torch.cuda.device_count())]
    assert all(t.user_attrs["device"].startswith("cuda") for t in trials)
    assert all(t.user_attrs["gpu"]["index"] in visible and t.user_attrs["gpu"]["name"] == torch.cuda.get_device_name(0)
               for t in trials)
