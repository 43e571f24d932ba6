"""What a configuration's model costs to use (trainers.costs), measured on it untrained (the weights change none
of it): for the trials, and for the models ruled out before any is drawn (search.study.feasible)."""

from __future__ import annotations

import hashlib

import optuna
import torch

from search import record
from trainers.costs import Costs, measure_once
from trainers.loop import TrainConfig, TrainData, build_model
from trainers.tasks import Task


class CostMeter:
    """Trials of one architecture share its figures, taken once for the study by whichever worker met it first
    (kept on the study), as its machine measured them the first time (trainers.costs.measure_once): they cost
    the same, and measured again by each worker they differed by the machine's noise, enough to put trials of
    one architecture on the front by chance. (Without a study: the machine's figures.)"""

    def __init__(self, data: TrainData, device: torch.device):
        self.data, self.device = data, device  # where the costs are measured (--cost-device)
        self.measured: dict[str, dict] = {}  # costs by architecture, as the study keeps them

    def costs(self, study: optuna.Study | None, config: TrainConfig, task: Task) -> Costs:
        model = build_model(config, self.data, task)
        size = tuple(self.data.images.shape[-2:])
        architecture = hashlib.sha256(f"{model}|{size}|{self.device}".encode()).hexdigest()[:16]
        recorded = self.measured.get(architecture) or (record.measured_costs(study, architecture) if study else None)
        costs = Costs(**recorded) if recorded else measure_once(model, size, self.device)
        if study:  # without one yet, the machine's figures: the study keeps its own when a trial meets the architecture
            if not recorded:
                record.record_measured_costs(study, architecture, costs.as_record())
            self.measured[architecture] = costs.as_record()
        return costs
