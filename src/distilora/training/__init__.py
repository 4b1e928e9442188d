"""Training: one Trainer, with the route (fine-tune, distil, LoRA) chosen by its objective."""

from distilora.training.losses import CrossEntropyObjective, DistillationObjective, distillation_loss
from distilora.training.trainer import ClassifierTrainer, train_model

__all__ = ["ClassifierTrainer", "CrossEntropyObjective", "DistillationObjective", "distillation_loss", "train_model"]
