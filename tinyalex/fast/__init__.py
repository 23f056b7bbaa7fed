"""The fast implementations of the layers, and the one place that chooses them.

    L = implementations(fast=True)          # or fast=False: the reference classes of tinyalex/layers
    conv1 = L.Conv2D(3, 96, 11, stride=4)   # ChunkedConv2D here (3 channels); 3x3 with 256: WinogradConv2D

The namespace has Conv2D, LRN, MaxPool2D, ReLU, Linear and BatchNorm2d, each called with
the reference class's arguments. The choice is made once, when a model is
built; ``repr(layer)`` names the class that runs.

One file per layer idea, each fast class a subclass of its reference class
that owns its whole forward, backward and cache:

    conv.py            FastConv2D (im2col, reused workspaces), ChunkedConv2D (im2col a few images at a time,
                       in cache), WinogradConv2D, conv2d_class (which runs where)
    winograd.py        Winograd's transform matrices and their math
    lrn.py             FastLRN
    pooling.py         FastMaxPool2D, maxpool2d_class
    activation.py      FastReLU
    linear.py          FastLinear
    normalization.py   FastBatchNorm2d
    cpu.py             what only the CPU needs: threads, cache-sized chunks, workspaces
    replicas.py        ThreadReplicas, step_runner: a training step's batch split over threads (CPU only)
    cuda.py            the GPU classes (CuPy and the stand-in): CudaConv2D, CudaLRN, CudaMaxPool2D, CudaReLU
"""
from __future__ import annotations

from types import SimpleNamespace

from ..backend import BACKENDS
from ..layers import LRN, BatchNorm2d, Conv2D, Linear, MaxPool2D, ReLU
from .activation import FastReLU
from .conv import ChunkedConv2D, FastConv2D, WinogradConv2D, conv2d_class
from .cpu import keep_freed_memory
from .cuda import CudaConv2D, CudaLRN, CudaMaxPool2D, CudaReLU
from .linear import FastLinear
from .lrn import FastLRN
from .normalization import FastBatchNorm2d
from .pooling import FastMaxPool2D, maxpool2d_class
from .replicas import ThreadReplicas, step_runner

__all__ = ["implementations", "conv2d_class", "maxpool2d_class", "FastConv2D", "ChunkedConv2D", "WinogradConv2D", "FastLRN",
           "FastMaxPool2D", "FastReLU", "FastLinear", "FastBatchNorm2d", "CudaConv2D", "CudaLRN", "CudaMaxPool2D", "CudaReLU",
           "ThreadReplicas", "step_runner", "GPU_BACKENDS"]

GPU_BACKENDS = ("cupy", "standin")     # the stand-in follows CuPy's rules, so it gets CuPy's classes


def _conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, **kwargs):
    """Conv2D's arguments -> a WinogradConv2D, ChunkedConv2D or FastConv2D, as :func:`conv2d_class` rules."""
    cls = conv2d_class(in_channels, groups, kernel_size, stride)
    return cls(in_channels, out_channels, kernel_size, stride, padding, groups, **kwargs)


def _maxpool2d(kernel_size=3, stride=2, *args, **kwargs):
    """MaxPool2D's arguments -> a FastMaxPool2D, or a reference MaxPool2D for windows over 255 pixels."""
    try:
        cls = maxpool2d_class(kernel_size)
    except ValueError:
        cls = MaxPool2D                     # its constructor names the problem
    return cls(kernel_size, stride, *args, **kwargs)


def implementations(fast=True, backend=None):
    """The layer classes (or factories) a model is built from.

    ``fast=False``: the reference classes of tinyalex/layers themselves.
    ``fast=True``: FastLRN, FastReLU, FastLinear, FastBatchNorm2d; for Conv2D a factory that
    picks WinogradConv2D, ChunkedConv2D or FastConv2D per layer (:func:`conv2d_class`), for
    MaxPool2D one that picks FastMaxPool2D (or the reference for windows over
    255 pixels).

    ``backend``: the backend the model will run on. "numpy" or None: the
    CPU classes above. "cupy" and "standin" (the CPU stand-in, which follows
    CuPy's rules and counts its operations): the GPU classes of
    tinyalex/fast/cuda.py, each pass a few whole-array operations with no
    host read: CudaConv2D (im2col for every shape), CudaLRN, CudaMaxPool2D
    (any window), CudaReLU, and FastLinear (nothing CPU-specific in it);
    BatchNorm2d stays the reference class there (whole-array operations
    already).

    On the CPU (``backend`` "numpy" or None), ``fast=True`` also asks glibc
    to keep freed memory for reuse (:func:`cpu.keep_freed_memory`: a step's
    large fresh arrays then stop page-faulting; process-wide, once;
    ``TINYALEX_KEEP_FREED_MEMORY=0`` turns it off).
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"implementations: backend must be one of {BACKENDS} or None, got {backend!r}")
    if not fast:
        return SimpleNamespace(Conv2D=Conv2D, LRN=LRN, MaxPool2D=MaxPool2D, ReLU=ReLU, Linear=Linear,
                               BatchNorm2d=BatchNorm2d)
    if backend in GPU_BACKENDS:
        return SimpleNamespace(Conv2D=CudaConv2D, LRN=CudaLRN, MaxPool2D=CudaMaxPool2D, ReLU=CudaReLU,
                               Linear=FastLinear, BatchNorm2d=BatchNorm2d)
    keep_freed_memory()
    return SimpleNamespace(Conv2D=_conv2d, LRN=FastLRN, MaxPool2D=_maxpool2d, ReLU=FastReLU, Linear=FastLinear,
                           BatchNorm2d=FastBatchNorm2d)
