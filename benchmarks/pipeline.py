"""Images per second of training: hpsearch's decode-once, on-device pipeline against the usual
torchvision ImageFolder + DataLoader that decodes and augments every image every epoch.

Both train the same model on the same train split for the same epochs, with the same batch size,
optimizer and augmentation kinds, and evaluate the valid split after each epoch.

    python benchmarks/pipeline.py [--model baseline] [--epochs 3] [--size 32] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from trainers.augment import Augment
from trainers.images import resize_square
from trainers.loop import Hooks, TrainConfig, build_model, pick_device, train
from trainers.prepare import prepare, resolve_source, to_device
from trainers.tasks import get_task


def ours(config: TrainConfig, data_source: str, size: int, device: torch.device) -> float:
    prepared = prepare(data_source, size, "pad-reflect")  # decoded once; not part of the timing below
    task = get_task("classify")
    data = to_device(prepared, task, device)
    start = time.perf_counter()
    train(config, data, task, "f1_weighted", Hooks(progress=False))
    _sync(device)
    return len(data.splits["train"]) * config.epochs / (time.perf_counter() - start)


def dataloader(config: TrainConfig, data_source: str, size: int, device: torch.device) -> float:
    prepared = prepare(data_source, size, "pad-reflect")
    task = get_task("classify")
    data = to_device(prepared, task, device)  # for the model and the statistics only
    folder = resolve_source(data_source)
    square = transforms.Lambda(lambda img: transforms.functional.to_pil_image(resize_square(img, size, "pad-reflect")))
    normalize = transforms.Normalize(data.mean, data.std)
    augment = config.augment
    train_tf = transforms.Compose([
        square,
        transforms.ColorJitter(brightness=augment.brightness, hue=augment.hue),
        transforms.RandomAffine(0, translate=(augment.translate, augment.translate)),
        transforms.ToTensor(),
        normalize,
    ])
    eval_tf = transforms.Compose([square, transforms.ToTensor(), normalize])
    index = {str(item.path): n for n, item in enumerate(prepared.decoded.items)}
    rows = {s: set(prepared.split.indices(s).tolist()) for s in ("train", "valid")}

    def subset(tf, split):
        full = datasets.ImageFolder(folder, transform=tf)
        return Subset(full, [i for i, (path, _) in enumerate(full.samples) if index.get(path) in rows[split]])

    workers = os.cpu_count() or 1
    loaders = {
        "train": DataLoader(subset(train_tf, "train"), config.batch_size, shuffle=True, num_workers=workers, persistent_workers=True),
        "valid": DataLoader(subset(eval_tf, "valid"), config.eval_batch_size, num_workers=workers, persistent_workers=True),
    }
    torch.manual_seed(config.seed)
    model = build_model(config, data, task)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        for x, y in loaders["train"]:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device):
                loss = task.loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), _autocast(device):
            for x, _ in loaders["valid"]:
                model(x.to(device))
    _sync(device)
    return len(loaders["train"].dataset) * config.epochs / (time.perf_counter() - start)


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", default="builtin:checkbox")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    config = TrainConfig(model=args.model, batch_size=args.batch_size, lr=1e-3, epochs=args.epochs,
                         augment=Augment(brightness=0.2, hue=0.05, translate=0.1))
    ours(config, args.data, args.size, device)  # warm-up: the cache, the allocator, the kernels
    a = ours(config, args.data, args.size, device)
    b = dataloader(config, args.data, args.size, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model} at {args.size}px, batch {args.batch_size}, {args.epochs} epochs on {name}")
    print(f"(a) hpsearch decode-once, on-device batches: {a:8.1f} images/s")
    print(f"(b) ImageFolder + DataLoader, decode every epoch: {b:8.1f} images/s")
    print(f"ratio (a)/(b): {a / b:.2f}")


if __name__ == "__main__":
    main()
