"""Import the reference Caffe AlexNet weights from ``bvlc_alexnet.npy``.

The file most AlexNet ports use is the Caffe Model Zoo's ``bvlc_alexnet``
converted with caffe-tensorflow, as distributed with Michael Guerzhoy's
"AlexNet implementation + weights in TensorFlow"
(http://www.cs.toronto.edu/~guerzhoy/tf_alexnet/). It is a pickled dict::

    weights = numpy.load("bvlc_alexnet.npy", allow_pickle=True, encoding="latin1").item()
    weights["conv2"] == [W, b]      # W (kh, kw, in/groups, out) = (5, 5, 48, 256), b (256,)
    weights["fc6"]   == [W, b]      # W (in, out) = (9216, 4096)

What the import converts, so that the tinyalex net computes what Caffe computes:

* conv weights (kh, kw, C/G, F) -> tinyalex's (F, C/G, kh, kw). The grouped
  convs (conv2, conv4, conv5) keep their grouping: the first F/2 kernels read
  the first C/2 channels, as in ``Conv2D(groups=2)``.
* fc weights (in, out) -> (out, in) (tinyalex's y = x W^T + b).
* fc6's input order. tinyalex flattens pool5 as (C, H, W) (index
  c*36 + h*6 + w). The TensorFlow port runs NHWC and flattens pool5 as
  (H, W, C) (index (h*6 + w)*256 + c), and caffe-tensorflow reordered fc6's
  rows to match; so with ``fc6_order="hwc"`` (default) the rows are permuted
  to (C, H, W). A file converted without that reordering (rows in Caffe's own
  C, H, W order) needs ``fc6_order="chw"``.
* LRN: Caffe's ``alpha = 1e-4`` is divided by the window size n = 5 (2e-5 per
  squared term) and Caffe's k is 1, not the paper's 2; its LRN runs across
  all 96 (256) channels, not within each tower. The imported model therefore
  uses ``lrn_convention="caffe", lrn_k=1, lrn_across_towers=True``, which is
  TensorFlow's ``local_response_normalization(depth_radius=2, alpha=2e-5,
  beta=0.75, bias=1)`` used by the port. Because LRN crosses the towers, the
  imported net runs on one device.
* Input: the Caffe net takes 227x227 BGR images in the 0..255 range minus the
  ImageNet mean. ``input_order="rgb"`` reverses conv1's input channels so the
  model takes RGB instead (the output is then identical for the same image).

Max pooling: Caffe rounds pooled sizes up, tinyalex down; for AlexNet's sizes
(55, 27, 13 with 3/2 windows) both give 27, 13, 6.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy

from .registry import build_model

__all__ = ["load_caffe_alexnet", "caffe_to_state_dict", "read_caffe_npy", "LAYERS"]

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
SOURCE = ("the Caffe Model Zoo's bvlc_alexnet converted with caffe-tensorflow, e.g. the copy at "
          "http://www.cs.toronto.edu/~guerzhoy/tf_alexnet/bvlc_alexnet.npy")


def read_caffe_npy(path):
    """Load the dict name -> [W, b] from ``bvlc_alexnet.npy`` (pickled: only open files you trust)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no file {path!r}; bvlc_alexnet.npy is {SOURCE}")
    obj = numpy.load(path, allow_pickle=True, encoding="latin1")
    try:
        weights = obj.item()
    except (AttributeError, ValueError):
        weights = None
    if not isinstance(weights, dict):
        raise ValueError(f"{path!r} is not a bvlc_alexnet.npy-style file (a pickled dict of layer name -> [W, b])")
    return weights


def _wb(weights, name):
    if name not in weights:
        raise KeyError(f"the Caffe weights have no layer {name!r} (found: {', '.join(sorted(weights))}); "
                       f"expected {', '.join(LAYERS)}")
    entry = weights[name]
    if isinstance(entry, dict):           # some converters write {"weights": W, "biases": b}
        entry = [entry.get("weights"), entry.get("biases")]
    if len(entry) != 2:
        raise ValueError(f"Caffe layer {name!r} must be [W, b], got {len(entry)} arrays")
    W, b = (numpy.asarray(a) for a in entry)
    if W.ndim != (4 if name.startswith("conv") else 2) or b.ndim != 1 or b.shape[0] != W.shape[-1]:
        raise ValueError(f"Caffe layer {name!r}: W {W.shape} and b {b.shape} are not in the layout "
                         f"conv (kh, kw, in/groups, out) / fc (in, out) with b (out,)")
    return W, b


def caffe_to_state_dict(weights, pool5_shape, fc6_order="hwc", input_order="bgr"):
    """Convert the dict name -> [W, b] to tinyalex's grouped state dict ("conv1.W", ...).

    ``pool5_shape`` is (C, H, W) of pool5 (256, 6, 6 for AlexNet), needed to
    reorder fc6's rows. See the module docstring for what is converted.
    """
    if fc6_order not in ("hwc", "chw"):
        raise ValueError(f"fc6_order must be 'hwc' (TensorFlow ports) or 'chw' (Caffe's own), got {fc6_order!r}")
    if input_order not in ("bgr", "rgb"):
        raise ValueError(f"input_order must be 'bgr' (Caffe) or 'rgb', got {input_order!r}")
    state = OrderedDict()
    for name in LAYERS:
        W, b = _wb(weights, name)
        if name.startswith("conv"):
            W = W.transpose(3, 2, 0, 1)                      # (kh, kw, C/G, F) -> (F, C/G, kh, kw)
            if name == "conv1" and input_order == "rgb":
                W = W[:, ::-1]                               # BGR -> RGB input channels
        else:
            W = W.T                                          # (in, out) -> (out, in)
            if name == "fc6" and fc6_order == "hwc":
                C, H, Wd = pool5_shape
                if W.shape[1] != C * H * Wd:
                    raise ValueError(f"layer 'fc6': W has {W.shape[1]} inputs but pool5 gives "
                                     f"{C}x{H}x{Wd} = {C * H * Wd}")
                # column (h, w, c) -> column (c, h, w)
                W = W.reshape(W.shape[0], H, Wd, C).transpose(0, 3, 1, 2).reshape(W.shape[0], -1)
        state[f"{name}.W"] = numpy.ascontiguousarray(W)
        state[f"{name}.b"] = numpy.ascontiguousarray(b)
    return state


def load_caffe_alexnet(weights, input_shape=None, arch="alexnet", fc6_order="hwc", input_order="bgr",
                       dtype=numpy.float32, device=None, backend=None, **overrides):
    """Build an AlexNet that computes what Caffe's bvlc_alexnet computes, with its weights.

    ``weights``: a path to ``bvlc_alexnet.npy`` or the dict it holds. Channel
    counts, kernel sizes, fc widths and the number of classes are read from
    the weights; strides, paddings and the input size come from the model named ``arch``
    (``input_shape`` overrides). ``device``: one device (LRN crosses the
    towers, so no split). Returns the model in eval mode.
    """
    if not isinstance(weights, dict):
        weights = read_caffe_npy(weights)
    ws = {name: _wb(weights, name) for name in LAYERS}
    channels = tuple(ws[n][0].shape[3] for n in LAYERS[:5])
    kernels = tuple(ws[n][0].shape[0] for n in LAYERS[:5])
    fc_sizes = (ws["fc6"][0].shape[1], ws["fc7"][0].shape[1])
    num_classes = ws["fc8"][0].shape[1]
    # conv2, conv4, conv5 read half of the previous layer's maps (the towers)
    prev = {"conv2": "conv1", "conv3": "conv2", "conv4": "conv3", "conv5": "conv4"}
    for name, groups in (("conv2", 2), ("conv3", 1), ("conv4", 2), ("conv5", 2)):
        want = ws[prev[name]][0].shape[3] // groups
        got = ws[name][0].shape[2]
        if got != want:
            raise ValueError(f"Caffe layer {name!r}: W {ws[name][0].shape} reads {got} channels but "
                             f"{prev[name]} has {ws[prev[name]][0].shape[3]} maps and groups={groups} "
                             f"needs {want}")
    opts = dict(lrn_convention="caffe", lrn_k=1.0, lrn_alpha=1e-4, lrn_beta=0.75, lrn_size=5,
                lrn_across_towers=True)
    opts.update(overrides)
    model = build_model(arch, num_classes, input_shape=input_shape, channels=channels, kernel_sizes=kernels,
                        fc_sizes=fc_sizes, dtype=dtype, devices=device, backend=backend, **opts)
    pool5 = model.output_shapes()["pool5"]
    state = caffe_to_state_dict(weights, pool5, fc6_order, input_order)
    model.load_state_dict(state)
    return model.eval()
