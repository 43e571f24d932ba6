"""Models: our own small networks by name (ours.py, registered in registry.py), any timm model by its timm
name, each a backbone that ends in pooled features plus one shared head (factory.py)."""

from trainers.models import ours  # noqa: F401  (importing a definition registers it)
from trainers.models.factory import (
    Classifier, WeightsUnavailable, count_parameters, create_backbone, create_model, find_weights_file, spatial, weights_error,
)
from trainers.models.ours import AttentionCNN
from trainers.models.registry import is_ours, list_models, register_model

__all__ = ["AttentionCNN", "Classifier", "WeightsUnavailable", "count_parameters", "create_backbone", "create_model",
           "find_weights_file", "is_ours", "list_models", "register_model", "spatial", "weights_error"]
