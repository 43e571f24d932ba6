"""A space small enough for tests: tiny images, the baseline CNN, one or two epochs."""

from spaces import Space, register


def suggest(trial) -> dict:
    return {
        "model": trial.suggest_categorical("model", ["baseline"]),
        "batch_size": trial.suggest_categorical("batch_size", [4, 8]),
        "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-4, log=True),
    }


register(Space(name="tiny", task="classify", data="builtin:digits", suggest=suggest, summary="tests",
               image_size=16, resize="stretch", epochs=1))
