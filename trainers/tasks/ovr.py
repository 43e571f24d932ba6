"""One-vs-rest (seed 004): per class, a binary classifier trained against a sampled share of the other
classes' images, with k-fold cross-validation on the train and valid splits. It runs the one loop
once per (class, fold) and reports each fold's valid score as a step of its own, so that a pruner
comparing folds (Optuna's WilcoxonPruner) can stop a bad trial after a few of them. The model it
keeps is the ensemble of each class's best fold, whose outputs are each class's log-odds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainers.models import count_parameters, create_model
from trainers.tasks.classify import Classify


class OneVsRestModel(nn.Module):
    """One binary classifier per class; output c is classifier c's log-odds of 'this class'."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([_log_odds(m(x)) for m in self.members], dim=1)


def _log_odds(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, 1] - logits[:, 0]


@dataclass
class OneVsRest(Classify):
    name = "ovr"
    negatives: float = 0.1  # the share of the other classes' train/valid images each classifier sees as negatives
    folds: int = 3

    def __post_init__(self):
        if not 0 < self.negatives <= 1 or self.folds < 2:
            raise ValueError(f"ovr needs 0 < negatives <= 1 and at least 2 folds (got {self.negatives}, {self.folds})")

    def create_model(self, name: str, num_outputs: int, **options) -> OneVsRestModel:
        return OneVsRestModel([create_model(name, 2, **options) for _ in range(num_outputs)])

    def fit(self, config, data, metric: str, report: Callable[[int, dict], None] | None = None, progress: bool = True,
            checkpoint=None, resume=None):
        """Train every (class, fold) in a seeded random order, as the pruner advises; report each as step
        class x folds + fold. No epoch checkpoints: a retried trial starts again."""
        from trainers.loop import CrossValidated, TrainData, build_model, predict, train

        binary, steps = Classify(), [(c, f) for c in range(len(data.class_names)) for f in range(self.folds)]
        order = torch.randperm(len(steps), generator=torch.Generator().manual_seed(config.seed)).tolist()
        folds = {c: self.fold_rows(data, c, config.seed) for c in range(len(data.class_names))}
        history, best = [], {}  # best: class -> (valid score, weights)
        for step in order:
            c, f = steps[step]
            train_rows, valid_rows = folds[c][f]
            one = TrainData(data.images, (data.targets == c).long(), {"train": train_rows, "valid": valid_rows},
                            ["rest", data.class_names[c]], data.mean, data.std)
            result = train(config, one, binary, metric, progress=False)
            history.append(result.best)
            if report:
                report(step, result.best)
            if c not in best or result.best[f"valid_{metric}"] > best[c][0]:
                best[c] = (result.best[f"valid_{metric}"], result.state_dict)
        model = build_model(config, data, self)
        for c, (_, state) in best.items():
            model.members[c].load_state_dict(state)
        outputs = predict(model, config, data, data.splits["valid"])
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return CrossValidated(history, 0, state, *count_parameters(model), outputs)

    def fold_rows(self, data, c: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Class c's train/valid images and a seeded sample of the others', in stratified folds."""
        from sklearn.model_selection import StratifiedKFold

        pool = torch.cat([data.splits["train"], data.splits["valid"]]).cpu()
        labels = data.targets[pool].cpu()
        others = pool[labels != c]
        keep = torch.randperm(len(others), generator=torch.Generator().manual_seed(seed * 1009 + c))
        rows = torch.cat([pool[labels == c], others[keep[: max(1, round(self.negatives * len(others)))]]])
        folds = StratifiedKFold(self.folds, shuffle=True, random_state=seed).split(rows, (data.targets[rows].cpu() == c).numpy())
        return [(rows[torch.from_numpy(t)].to(data.device), rows[torch.from_numpy(v)].to(data.device)) for t, v in folds]
