"""A tiny model and a tiny synthetic run, so training tests take a second or two."""
import numpy as np
import pytest

from tinyalex.layers import Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Sequential
from tinyalex.train.trainer import TrainConfig


def make_tiny_model(seed=0, num_classes=10):
    """conv 3->6 (3x3) - ReLU - pool 3/2 - fc 16 - ReLU - dropout - fc: 28x28 RGB input."""
    rng = np.random.default_rng(seed)
    model = Sequential(
        ("conv1", Conv2D(3, 6, 3, padding=1, rng=rng)), ("relu1", ReLU()), ("pool1", MaxPool2D(3, 2)),
        ("flatten", Flatten()), ("fc1", Linear(6 * 13 * 13, 16, rng=rng)), ("relu2", ReLU()),
        ("drop", Dropout(0.5)), ("fc2", Linear(16, num_classes, rng=rng)))
    model.input_shape = (3, 28, 28)
    return model


@pytest.fixture
def tiny_model():
    return make_tiny_model


@pytest.fixture
def tiny_config(tmp_path):
    def make(**kw):
        base = dict(dataset="synthetic", epochs=2, batch_size=32, lr=0.005, limit_train=160, limit_test=64,
                    val_fraction=0.2, out=str(tmp_path / "run"), progress=False, schedule="step", step_epochs=1, plots=False)
        base.update(kw)
        return TrainConfig(**base)
    return make


@pytest.fixture
def quiet():
    return lambda *a, **k: None
