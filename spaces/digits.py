"""scikit-learn's handwritten digits: ten classes of real 8x8 scans, a quick space for trying things."""

from spaces.registry import register
from spaces.space import Space
from trainers.augment import Augment


def suggest(trial) -> dict:
    return {
        "model": trial.suggest_categorical("model", ["baseline", "mobilenetv2_100"]),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
        "optimizer": trial.suggest_categorical("optimizer", ["adam", "adamw"]),
    }


register(
    Space(
        name="digits",
        task="classify",
        data="builtin:digits",
        suggest=suggest,
        summary="baseline CNN vs MobileNetV2; batch size; log-scale lr and weight decay; Adam or AdamW",
        image_size=16,
        resize="stretch",
        epochs=5,
        augment=Augment(brightness=0.1, translate=0.05),
        # No pruner: on this space's recorded learning curves (benchmarks/curves/digits.csv) every pruner stopped
        # the eventual best configuration in some searches, and its 5 epochs leave the patient one nothing to
        # save (the README's "How a study searches" has the figures)
        pruner="none",
    )
)
