"""Training a trial's model: the one loop (trainers.loop.train), or, for a task trained under k-fold
cross-validation (one-vs-rest, seed 004), that loop once per class and fold.

One-vs-rest: per class, a binary classifier trained against a sampled share of the other classes'
images, in k folds of the train and valid splits. Each fold's valid score is reported as a step of its
own, so that a pruner comparing folds (Optuna's WilcoxonPruner) can stop a bad trial after a few. The
model kept is the ensemble of each class's best fold, whose outputs are each class's log-odds.
"""

from __future__ import annotations


import torch

from trainers.loop import CrossValidated, Hooks, TrainConfig, TrainData, TrainResult, build_model, predict, train
from trainers.models import count_parameters
from trainers.tasks import Task
from trainers.tasks.classify import Classify


def fit(config: TrainConfig, data: TrainData, task: Task, metric: str, hooks: Hooks = Hooks()) -> TrainResult:
    """The trained model and its history; `hooks.report` after each epoch (or fold), which may raise to stop."""
    if task.unit == "fold":
        return one_vs_rest(config, data, task, metric, hooks.report)  # no epoch checkpoints: a retried trial starts again
    return train(config, data, task, metric, hooks)


def one_vs_rest(config: TrainConfig, data: TrainData, task, metric: str, report=None) -> CrossValidated:
    """Train every (class, fold) in a seeded random order, as the pruner advises; report each as step
    class x folds + fold."""
    binary, steps = Classify(), [(c, f) for c in range(len(data.class_names)) for f in range(task.folds)]
    order = torch.randperm(len(steps), generator=torch.Generator().manual_seed(config.seed)).tolist()
    folds = {c: fold_rows(data, c, task.negatives, task.folds, config.seed) for c in range(len(data.class_names))}
    history, best = [], {}  # best: class -> (valid score, weights)
    for step in order:
        c, f = steps[step]
        train_rows, valid_rows = folds[c][f]
        one = TrainData(data.images, (data.targets == c).long(), {"train": train_rows, "valid": valid_rows},
                        ["rest", data.class_names[c]], data.mean, data.std, data.on)
        result = train(config, one, binary, metric, Hooks(progress=False))
        history.append(result.best)
        if report:
            report(step, result.best)
        if c not in best or result.best[f"valid_{metric}"] > best[c][0]:
            best[c] = (result.best[f"valid_{metric}"], result.state_dict)
    model = build_model(config, data, task)
    for c, (_, state) in best.items():
        model.members[c].load_state_dict(state)
    outputs = predict(model, config, data, data.splits["valid"])
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return CrossValidated(history, 0, state, *count_parameters(model), outputs)


def fold_rows(data: TrainData, c: int, negatives: float, k: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Class c's train/valid images and a seeded sample (`negatives`, a share) of the others', in k stratified folds."""
    from sklearn.model_selection import StratifiedKFold

    pool = torch.cat([data.splits["train"], data.splits["valid"]]).cpu()
    labels = data.targets[pool].cpu()
    others = pool[labels != c]
    keep = torch.randperm(len(others), generator=torch.Generator().manual_seed(seed * 1009 + c))
    rows = torch.cat([pool[labels == c], others[keep[: max(1, round(negatives * len(others)))]]])
    split = StratifiedKFold(k, shuffle=True, random_state=seed).split(rows, (data.targets[rows].cpu() == c).numpy())
    return [(rows[torch.from_numpy(t)].to(data.device), rows[torch.from_numpy(v)].to(data.device)) for t, v in split]
