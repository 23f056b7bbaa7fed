"""tinyalex: AlexNet (Krizhevsky, Sutskever, Hinton 2012) from scratch in NumPy and CuPy.

    import tinyalex as ta
    conv = ta.layers.Conv2D(3, 96, 11, stride=4)
    ta.set_backend("numpy")           # or "cupy", or "standin" (CPU devices for tests)
"""
__version__ = "0.1.0"   # first, so that a submodule reading it (tinyalex.cli) finds it set

from . import launcher

launcher.limit_threads_per_rank()   # before NumPy loads OpenBLAS: one thread per core per MPI rank

from . import backend, gradcheck, layers
from . import models
from .backend import get_array_module, get_backend, set_backend, to_device, to_host, use_backend
from .gradcheck import assert_gradients_close, rel_error

__all__ = [
    "backend", "layers", "gradcheck", "models", "get_array_module", "get_backend", "set_backend",
    "use_backend", "to_device", "to_host", "rel_error", "assert_gradients_close",
]
