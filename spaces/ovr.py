"""One-vs-rest on the handwritten digits (seed 004): per digit a binary classifier against a sampled
share of the other digits (the share searched), 3-fold cross-validation, AdamW; the seed's attention
CNN against the baseline. Each fold is reported, and the Wilcoxon signed-rank test against the best
trial's folds stops a trial that is surely worse."""

from spaces.registry import register
from spaces.space import Space
from trainers.augment import Augment


def suggest(trial) -> dict:
    return {
        "model": trial.suggest_categorical("model", ["attention_cnn", "baseline"]),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),  # AdamW's decoupled decay
        "negatives": trial.suggest_float("negatives", 0.05, 0.5, log=True),
    }


register(
    Space(
        name="ovr",
        task="ovr",
        data="builtin:digits",
        suggest=suggest,
        summary="one-vs-rest binary classifiers, k-fold: attention CNN vs baseline CNN; share of other classes "
                "as negatives; batch size; log-scale lr and weight decay; mean fold accuracy",
        image_size=16,
        resize="stretch",
        epochs=3,  # per class and fold, as in the seed
        metric="accuracy",
        augment=Augment(brightness=0.1, translate=0.05),
        fixed={"optimizer": "adamw", "folds": 3},
        pruner="wilcoxon",  # compares a trial's folds with the best trial's same folds
        # seed 004's: its attention CNN, AdamW at lr 1e-4 with weight decay 0.01, batch 32, 10% of the others as negatives
        default={"model": "attention_cnn", "batch_size": 32, "lr": 1e-4, "weight_decay": 0.01, "negatives": 0.1},
    )
)
