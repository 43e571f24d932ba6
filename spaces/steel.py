"""Steel surface defects (seed 002), three spaces on the same Severstal-layout data: is there a defect,
which types, and where. They share the data, image size and split (one file, so they cannot drift
apart), which keeps every test image unseen by all three models of the cascade (`hpsearch cascade`)."""

from spaces.registry import register
from spaces.space import Space
from trainers.augment import Augment
from trainers.tasks.multilabel import SEVERSTAL

SAME_DATA = dict(
    data="builtin:steel",
    image_size=64,
    resize="stretch",  # a strip squeezed to a square; masks and predictions go back the same way
    augment=Augment(flip_h=True, flip_v=True),  # defects keep their kind upside down and mirrored
    pruner="halving",
    pruner_options={"min_resource": 2},
)


def classifier(trial) -> dict:
    return {
        "model": trial.suggest_categorical("model", ["baseline", "mobilenetv2_100", "densenet121"]),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
    }


def unet(trial) -> dict:
    return {
        "model": trial.suggest_categorical("model", ["resnet18", "mobilenet_v2", "efficientnet-b0"]),  # U-Net encoders
        "decoder_width": trial.suggest_categorical("decoder_width", [4, 8, 16]),
        "batch_size": trial.suggest_categorical("batch_size", [8, 16, 32]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
    }


register(Space(name="steel-defect", task="classify", suggest=classifier, epochs=6, metric="f1",
               data_format=f"{SEVERSTAL}; an image with any mask is 'defect', one without 'clean' (or class folders)",
               summary="defect or clean: baseline CNN vs MobileNetV2 vs DenseNet121; batch size; log-scale lr and "
                       "weight decay; F1 of 'defect'", **SAME_DATA))
register(Space(name="steel-types", task="multilabel", suggest=classifier, epochs=6, metric="f1_macro",
               summary="which of the 4 defect types (multilabel, BCE): baseline CNN vs MobileNetV2 vs DenseNet121; "
                       "batch size; log-scale lr and weight decay; macro F1", **SAME_DATA))
register(Space(name="steel-masks", task="segment", suggest=unet, epochs=10, metric="dice",
               summary="where each defect type is: U-Net on a ResNet18, MobileNetV2 or EfficientNet-B0 encoder, "
                       "decoder width; batch size; log-scale lr and weight decay; Dice + BCE loss", **SAME_DATA))
