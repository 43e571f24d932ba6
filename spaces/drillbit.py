"""Drill bits sorted by diameter and length (seed 000): MobileNetV2 or EfficientNetV2 with a searched
head, augmentation switches, learning-rate schedule, early stopping, and a region-of-interest crop."""

from spaces.registry import register
from spaces.space import Space
from trainers.augment import Augment


def suggest(trial) -> dict:
    layers = trial.suggest_int("head_layers", 0, 2)
    width = trial.suggest_categorical("head_width", [64, 256]) if layers else 0
    schedule = trial.suggest_categorical("schedule", ["constant", "cyclic", "exponential"])
    jitter = trial.suggest_categorical("color_jitter", [False, True])
    return {
        "model": trial.suggest_categorical("model", ["baseline", "mobilenetv2_100", "tf_efficientnetv2_b0"]),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
        "hidden": (width,) * layers,
        "schedule": schedule,
        "gamma": trial.suggest_float("gamma", 0.7, 0.98) if schedule == "exponential" else 0.9,
        # flips and colour changes keep a bit's size in the frame, which is what makes its class
        "augment": Augment(
            brightness=0.2 * jitter, contrast=0.2 * jitter, saturation=0.2 * jitter,
            blur=0.3 * trial.suggest_categorical("gaussian_blur", [False, True]),
            sharpen=0.3 * trial.suggest_categorical("adjust_sharpness", [False, True]),
            flip_h=trial.suggest_categorical("flip_h", [False, True]),
            flip_v=trial.suggest_categorical("flip_v", [False, True]),
        ),
    }


register(
    Space(
        name="drillbit",
        task="classify",
        data="builtin:drillbit",
        suggest=suggest,
        summary="baseline CNN vs MobileNetV2 vs EfficientNetV2; head depth; augmentation switches; lr schedule; "
                "early stopping; region-of-interest crop",
        image_size=48,
        resize="stretch",
        crop=(0.12, 0.0, 0.88, 1.0),  # the fixture holds the bit in the middle; the sides show the bench
        epochs=12,
        fixed={"patience": 4},
        pruner="halving",
        pruner_options={"min_resource": 2},
    )
)
