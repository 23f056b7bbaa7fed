"""Layers with hand-written forward and backward passes, one idea per file."""
from .activation import ReLU, Tanh
from .base import Layer
from .blocks import Concat, Residual, ZeroPadShortcut, infer_shape
from .conv import Conv2D, col2im, im2col
from .dropout import Dropout
from .linear import Flatten, Linear
from .loss import SoftmaxCrossEntropy, log_softmax, softmax
from .lrn import LRN
from .normalization import BatchNorm, BatchNorm1d, BatchNorm2d, WithoutBias
from .padding import Pad2D
from .pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2D
from .sequential import Sequential

__all__ = [
    "Layer", "Conv2D", "im2col", "col2im", "ReLU", "Tanh", "LRN", "MaxPool2D", "Dropout",
    "Linear", "Flatten", "SoftmaxCrossEntropy", "softmax", "log_softmax", "Sequential",
    "BatchNorm", "BatchNorm1d", "BatchNorm2d", "AvgPool2d", "GlobalAvgPool2d", "Pad2D", "WithoutBias",
    "Concat", "Residual", "ZeroPadShortcut", "infer_shape",
]
