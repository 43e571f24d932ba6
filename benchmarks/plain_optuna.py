"""The search a user would write instead of hpsearch, the way seed 001 wrote its `hparam_search.py`: torchvision's
ImageFolder and a DataLoader per epoch (workers = cores, pinned memory), PIL transforms on every image every
epoch (reflect-pad to a square, resize, brightness, hue, translation), Adam and cross-entropy, Optuna's TPE
and MedianPruner, validation every epoch, the best epoch's weights saved. Only the networks are hpsearch's
(trainers.models.create_model), so that benchmarks/study.py compares two ways of searching the same models.

    python benchmarks/plain_optuna.py --splits splits.csv --trials 50 --seed 0 [--device cpu] [--out result.json]

`splits.csv` has path,split rows (absolute paths; the class is the image's folder), so both searches use
the same train/valid/test split.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainers.models import create_model  # noqa: E402

SIZE, EPOCHS = 32, 10


def pad_to_square(img: Image.Image) -> Image.Image:
    """Reflect the image until it fills a square (the seed's padding for wide crops)."""
    pixels = np.asarray(img)
    h, w = pixels.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return Image.fromarray(np.pad(pixels, ((top, side - h - top), (left, side - w - left), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge"))


class Images(Dataset):
    def __init__(self, rows: list[tuple[str, int]], transform):
        self.rows, self.transform = rows, transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        path, label = self.rows[i]
        return self.transform(Image.open(path).convert("RGB")), label


def read_splits(path: Path) -> tuple[dict[str, list], list[str]]:
    rows = list(csv.DictReader(open(path)))
    classes = sorted({Path(r["path"]).parent.name for r in rows})
    splits = {s: [(r["path"], classes.index(Path(r["path"]).parent.name)) for r in rows if r["split"] == s] for s in ("train", "valid", "test")}
    return splits, classes


def statistics(rows) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images, as the seed normalised its baseline."""
    prepare = transforms.Compose([transforms.Lambda(pad_to_square), transforms.Resize((SIZE, SIZE)), transforms.ToTensor()])
    stack = torch.stack([prepare(Image.open(p).convert("RGB")) for p, _ in rows])
    return stack.mean(dim=(0, 2, 3)).tolist(), stack.std(dim=(0, 2, 3)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", required=True)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out")
    args = parser.parse_args()
    start = time.perf_counter()
    device, workers = torch.device(args.device), os.cpu_count() or 1
    splits, classes = read_splits(Path(args.splits))
    mean, std = statistics(splits["train"])
    plain = [transforms.Lambda(pad_to_square), transforms.Resize((SIZE, SIZE))]
    to_tensor = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    augment = transforms.Compose(plain + [transforms.ColorJitter(brightness=0.2, hue=0.05),
                                          transforms.RandomAffine(0, translate=(0.1, 0.1))] + to_tensor)
    evaluate_as = transforms.Compose(plain + to_tensor)
    loaders = {"valid": DataLoader(Images(splits["valid"], evaluate_as), batch_size=256, num_workers=workers, pin_memory=True),
               "test": DataLoader(Images(splits["test"], evaluate_as), batch_size=256, num_workers=workers, pin_memory=True)}
    weights = Path(tempfile.mkdtemp(prefix="plain-optuna-"))
    epochs_run = []

    def predict(model, loader) -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        truth, guess = [], []
        with torch.no_grad():
            for x, y in loader:
                guess.append(model(x.to(device, non_blocking=True)).argmax(1).cpu())
                truth.append(y)
        return torch.cat(truth).numpy(), torch.cat(guess).numpy()

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("model", ["baseline", "mobilenetv2_100", "resnet50"])
        batch_size = trial.suggest_categorical("batch_size", [8, 32, 64])
        lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True)
        torch.manual_seed(trial.number)
        model = create_model(name, len(classes)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        train = DataLoader(Images(splits["train"], augment), batch_size=batch_size, shuffle=True, num_workers=workers,
                           pin_memory=True, drop_last=True)
        best = -1.0
        for epoch in range(1, args.epochs + 1):
            model.train()
            for x, y in train:
                loss = F.cross_entropy(model(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            score = f1_score(*predict(model, loaders["valid"]), average="weighted")
            if score > best:
                best = score
                torch.save(model.state_dict(), weights / f"trial{trial.number}.pt")
            trial.report(score, epoch)
            if trial.should_prune():
                epochs_run.append(epoch)
                raise optuna.TrialPruned()
        epochs_run.append(args.epochs)
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed),
                                pruner=optuna.pruners.MedianPruner())
    study.optimize(objective, n_trials=args.trials)
    best = study.best_trial
    model = create_model(best.params["model"], len(classes)).to(device)
    model.load_state_dict(torch.load(weights / f"trial{best.number}.pt"))
    test = f1_score(*predict(model, loaders["test"]), average="weighted")
    result = {"seconds": time.perf_counter() - start, "trials": len(study.trials), "epochs": sum(epochs_run),
              "valid": best.value, "test": test, "best": best.params}
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
