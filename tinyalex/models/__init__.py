"""AlexNet, its small variants, the two-tower split, weights files and weight import.

    from tinyalex.models import AlexNet, build_model
    net = AlexNet()                                   # the paper's net, 3x227x227, 1000 classes
    small = build_model("alexnet-small")              # 1x28x28 (Fashion-MNIST), 10 classes
    ref = build_model("alexnet-small", fast=False)    # exactly the reference layers of tinyalex/layers
    split = build_model("alexnet", devices=(0, 1))    # two towers on two devices
    print(split.summary())

Files: alexnet.py (the network, beside Figure 2, and its variants), towers.py
(the two-GPU links of section 3.2), registry.py (MODELS, build_model,
load_model), io.py (the .npz weights file), summary.py, caffe_import.py.
"""
from .alexnet import INITS, AlexNet, GroupLRN, alexnet, alexnet_cifar, alexnet_small
from .caffe_import import caffe_to_state_dict, load_caffe_alexnet
from .io import load_npz, read_npz, save_npz
from .registry import (MODELS, build_model, default_input_shape, load_model, model_from_weights, model_names,
                       model_options)
from .summary import summary, transfer_bytes_per_image
from .towers import merge_state_dict, split_state_dict, tower_sizes

__all__ = [
    "AlexNet", "INITS", "GroupLRN", "alexnet", "alexnet_small", "alexnet_cifar",
    "MODELS", "build_model", "model_names", "default_input_shape", "load_model", "model_from_weights",
    "model_options",
    "load_caffe_alexnet", "caffe_to_state_dict", "load_npz", "read_npz", "save_npz",
    "summary", "transfer_bytes_per_image", "split_state_dict", "merge_state_dict", "tower_sizes",
]
