"""One training step (forward, loss, backward, SGD update) of a tinyalex model, timed: median of N steps.

Usage: PYTHONPATH=TREE python tools/ab_step.py MODEL BATCH STEPS  -> prints one JSON line.
Used to compare two checkouts (e.g. before and after a refactoring) in separate, alternating processes.
Uses only APIs present before and after the architecture change (build_model, SoftmaxCrossEntropy, SGD).
"""
import json
import sys
import time

import numpy as np

import tinyalex
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.models import build_model
from tinyalex.train import SGD

model, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
net = build_model(model)
if hasattr(net, "requires_input_grad"):
    net.requires_input_grad(False)
rng = np.random.default_rng(0)
x = rng.standard_normal((batch,) + tuple(net.input_shape)).astype(np.float32)
y = rng.integers(0, net.num_classes, batch)
loss, opt = SoftmaxCrossEntropy(), SGD(net, lr=1e-4)
net.train()
times = []
for i in range(steps + 2):
    t0 = time.perf_counter()
    loss.forward(net.forward(x), y)
    net.backward(loss.backward())
    opt.step()
    if i >= 2:
        times.append(time.perf_counter() - t0)
med = float(np.median(times))
print(json.dumps(dict(tree=tinyalex.__file__, model=model, batch=batch, step_s=med, images_per_s=batch / med,
                      spread=[float(min(times)), float(max(times))])))
