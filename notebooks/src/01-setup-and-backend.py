# %% [markdown]
# # 1. Setup and the array backend
#
# tinyalex is AlexNet (Krizhevsky, Sutskever and Hinton, 2012) written out
# layer by layer in NumPy. The same code runs on a GPU with CuPy, because no
# layer ever calls `numpy.` on its data: it asks its input which array module
# it belongs to,
#
# ```python
# xp = get_array_module(x)     # numpy, cupy, or the CPU device stand-in
# y = xp.maximum(x, 0)
# ```
#
# This notebook shows the three backends, what a *device* is, and which
# operations tinyalex refuses (because CuPy would refuse them, or silently
# copy data between host and GPU). Everything here runs on a laptop CPU.

# %%
import os
import sys

import numpy as np

import tinyalex as ta
from tinyalex import backend as B

FAST = os.environ.get("TINYALEX_FAST") == "1"   # CI runs every notebook with TINYALEX_FAST=1
print("python", sys.version.split()[0], "| numpy", np.__version__, "| tinyalex", ta.__version__)
print("backends that work on this machine:", B.available_backends())
print("current backend:", B.get_backend())

# %% [markdown]
# ## NumPy: the default
#
# A layer takes an array `(N, C, H, W)` and returns one. Parameters are
# `float32` unless you ask for `float64` (the gradient checks do).

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
conv = ta.layers.Conv2D(3, 4, kernel_size=3, padding=1, rng=rng)
y = conv(x)
print(conv, "->", y.shape, y.dtype)
print("array module of y:", B.get_array_module(y).__name__)

# %% [markdown]
# tinyalex never casts silently: a `float64` input to a `float32` layer is an
# error that says how to fix it.

# %%
try:
    conv(x.astype(np.float64))
except TypeError as e:
    print("TypeError:", e)

# %% [markdown]
# ## CuPy: the same code on a GPU
#
# With CuPy installed (`pip install cupy-cuda12x`) and a GPU present,
# `B.set_backend("cupy")` makes new arrays live on the GPU, `layer.to(0)`
# moves a layer's parameters there, and every layer runs unchanged. This
# machine may have no GPU; the cell says so instead of failing.

# %%
if "cupy" in B.available_backends():
    with B.use_backend("cupy"):
        conv_gpu = ta.layers.Conv2D(3, 4, 3, padding=1, rng=np.random.default_rng(0)).to(0)
        y_gpu = conv_gpu(B.to_device(x, 0))
        print("on the GPU:", type(y_gpu), y_gpu.shape)
else:
    print("CuPy or a CUDA device is not available here: the GPU cells are skipped, the rest runs on NumPy.")

# %% [markdown]
# ## The stand-in: several "devices" on a CPU
#
# The paper trained on two GPUs. To test code that handles two devices on a
# machine with none, tinyalex has a stand-in backend: a `DeviceArray` is a
# NumPy array tagged with a device number, and it refuses exactly what CuPy
# refuses. Transfers are explicit: `to_device(x, d)` and `to_host(x)`.

# %%
B.set_backend("standin")
a = B.to_device(x, 0)      # on device 0
b = B.to_device(x, 1)      # on device 1
print(type(a).__name__, "device", B.device_of(a), "|", type(b).__name__, "device", B.device_of(b))
print("current device:", B.current_device())

# %% [markdown]
# Four mistakes that a CPU-only test would never notice and a two-GPU run
# would (slowly, or with a crash). Each raises here, with a message naming the
# fix:

# %%
mistakes = {
    "a + b   (two devices)": lambda: a + b,
    "a + x   (device and host)": lambda: a + x,
    "np.asarray(a)   (implicit copy to host)": lambda: np.asarray(a),
    "float(a.sum())   (implicit read-back)": lambda: float(a.sum()),
    "b * 2   (b is on device 1, current device is 0)": lambda: b * 2,
}
for what, f in mistakes.items():
    try:
        f()
        print(f"{what}: no error?!")
    except (B.DeviceMismatchError, B.ImplicitTransferError) as e:
        print(f"{what}\n    -> {type(e).__name__}: {e}\n")

# %% [markdown]
# The right ways: read a scalar with `.item()`, copy with `to_host`, and run
# work on device 1 inside `with B.device(1):` (on CuPy this is
# `cupy.cuda.Device(1)`).

# %%
print("a.sum().item() =", a.sum().item())
with B.device(1):
    c = b * 2
print("b * 2 on device 1:", B.device_of(c), "| back on the host:", B.to_host(c)[0, 0, 0, :3])

# %% [markdown]
# A layer moves with `layer.to(device, backend)`; its forward pass then runs
# on that device (inside the device context) and its output stays there.

# %%
conv1 = ta.layers.Conv2D(3, 4, 3, padding=1, rng=np.random.default_rng(0)).to(1, "standin")
with B.device(1):
    y1 = conv1(b)
print("output on device", B.device_of(y1), "| same numbers as NumPy:",
      np.allclose(B.to_host(y1), ta.layers.Conv2D(3, 4, 3, padding=1, rng=np.random.default_rng(0))(x)))
B.set_backend("numpy")

# %% [markdown]
# ## What next
#
# Notebook 2 opens the most expensive layer, the convolution. Notebook 8 runs
# the paper's two-tower net across two stand-in devices.
