"""Training (section 5 of the paper): the learning rule, the schedule, the loop.

    from tinyalex.train import TrainConfig, fit
    history = fit(TrainConfig(dataset="fashion-mnist", out="runs/fm"))   # the default 10-minute recipe
"""
from ..fileio import atomic_write
from .checkpoint import load_checkpoint, save_checkpoint
from .schedule import ReduceOnPlateau, StepSchedule, make_schedule
from .sgd import SGD
from .trainer import (METRIC_COLUMNS, History, NonFiniteLossError, TrainConfig, Trainer, evaluate, fit,
                      load_trained, predict_proba, read_metrics)

__all__ = [
    "SGD", "ReduceOnPlateau", "StepSchedule", "make_schedule",
    "TrainConfig", "Trainer", "History", "fit", "evaluate", "predict_proba", "load_trained", "read_metrics",
    "NonFiniteLossError", "METRIC_COLUMNS", "atomic_write", "save_checkpoint", "load_checkpoint",
]
