"""How close a trial runs to the hardware: for each model of the checkbox space at its image size and each of its
batch sizes, the synthetic training throughput (images/s, the method of timm's benchmark.py: random data
already on the device, warm, timed steps; bf16 autocast and channels_last on CUDA) beside the throughput of
hpsearch's own loop in a real trial (its augmentation, its evaluation of the valid split each epoch). The
ratio is "% of the limit".

    python benchmarks/limit.py [--device cpu|cuda] [--epochs 2] [--steps 30] [--models baseline,resnet50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from search.study.training import Training, make_config  # noqa: E402
from spaces import get_space  # noqa: E402
from trainers.loop import Hooks, autocast, pick_device, train  # noqa: E402
from trainers.prepare import Splitting, prepare, to_device  # noqa: E402
from trainers.tasks import get_task  # noqa: E402

MODELS, BATCHES = ("baseline", "mobilenetv2_100", "resnet50"), (8, 32, 64)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic(name: str, batch: int, size: int, classes: int, device: torch.device, steps: int) -> float:
    """Images per second of forward, backward and Adam steps on random data on the device."""
    model = get_task("classify").create_model(name, classes).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 3, size, size, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=device)

    def step():
        with autocast(device):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(max(3, steps // 5)):  # warm: allocator, kernels chosen
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def in_trial(name: str, batch: int, data, space, epochs: int) -> float:
    """Training images per second of hpsearch's loop, evaluation included, after a first epoch to warm up."""
    config, task = make_config(space, {"model": name, "batch_size": batch, "lr": 1e-3, "weight_decay": 1e-5}, Training(epochs=1))
    train(config, data, task, space.metric, Hooks(progress=False))  # warm
    config, task = make_config(space, {"model": name, "batch_size": batch, "lr": 1e-3, "weight_decay": 1e-5}, Training(epochs=epochs))
    sync(data.device)
    start = time.perf_counter()
    train(config, data, task, space.metric, Hooks(progress=False))
    sync(data.device)
    return epochs * len(data.splits["train"]) / (time.perf_counter() - start)


def fixed_cost(device: torch.device, models: list[str], trials: int = 6) -> dict[str, float]:
    """Seconds per trial that are not training, per model: the median wall time of trials of one epoch on 30
    tiny images, stored as hpsearch stores every trial (notes, pictures, weights and card, an epoch checkpoint)."""
    import statistics
    import tempfile

    import numpy as np
    import optuna
    from PIL import Image

    from search.study.config import RunConfig
    from search.study.run import run
    from spaces import Space

    folder = Path(tempfile.mkdtemp(prefix="hpsearch-fixed-cost-"))
    rng = np.random.default_rng(0)
    for n in range(30):
        (folder / "images" / f"c{n % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "images" / f"c{n % 3}" / f"{n}.png")
    costs = {}
    for name in models:
        space = Space(name=f"fixed-{name}", task="classify", data=str(folder / "images"), summary="", image_size=32, epochs=1,
                      suggest=lambda t, name=name: {"model": name, "batch_size": 8, "lr": t.suggest_float("lr", 1e-4, 1e-3, log=True)})
        storage = f"sqlite:///{folder / 'studies.db'}"
        run(RunConfig(space=space.name, storage=storage, trials=trials, device=str(device), keep=trials, checkpoint_every=0,
                      quiet=True), space)
        done = optuna.load_study(study_name=space.name, storage=storage).trials
        costs[name] = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in done[1:])
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    device = pick_device(args.device)
    space = get_space("checkbox")
    data = to_device(prepare(space.data, space.image_size, space.resize, splitting=Splitting(space.split), progress=False), get_task("classify"), device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"checkbox at {space.image_size} px on {name}; {len(data.splits['train'])} training images")
    print(f"{'model':16s} {'batch':>5s} {'synthetic':>12s} {'in a trial':>12s} {'of the limit':>13s}")
    models = args.models.split(",")
    for model in models:
        for batch in BATCHES:
            limit = synthetic(model, batch, space.image_size, len(data.class_names), device, args.steps)
            reached = in_trial(model, batch, data, space, args.epochs)
            print(f"{model:16s} {batch:5d} {limit:9.0f}/s {reached:9.0f}/s {reached / limit:12.0%}", flush=True)
    print("\nfixed cost per trial (median wall time of 1-epoch trials on 30 images, every file stored):")
    for model, seconds in fixed_cost(device, models).items():
        print(f"{model:16s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
