"""AlexNet, its small variants, the two-tower split and weight import.

    from tinyalex.models import AlexNet, build_model
    net = AlexNet()                                   # the paper's net, 3x227x227, 1000 classes
    small = build_model("alexnet-small")              # 1x28x28 (Fashion-MNIST), 10 classes
    split = build_model("alexnet", devices=(0, 1))    # two towers on two devices
    print(split.summary())
"""
from .alexnet import ARCHS, INITS, AlexNet, Arch, GroupLRN, build_model, init_parameters, model_names
from .caffe_import import load_caffe_alexnet, caffe_to_state_dict
from .io import load_model, load_npz, save_npz
from .summary import summary, transfer_bytes_per_image
from .towers import merge_state_dict, split_state_dict, tower_sizes

__all__ = [
    "AlexNet", "Arch", "ARCHS", "INITS", "GroupLRN", "build_model", "init_parameters", "model_names",
    "load_caffe_alexnet", "caffe_to_state_dict", "load_model", "load_npz", "save_npz",
    "summary", "transfer_bytes_per_image", "split_state_dict", "merge_state_dict", "tower_sizes",
]
