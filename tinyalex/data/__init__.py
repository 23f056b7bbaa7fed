"""tinyalex.data: datasets, AlexNet preprocessing/augmentation, batching (host NumPy).

Typical use (see docs/data.md)::

    from tinyalex.data import load_dataset, Pipeline, DataLoader, train_val_split

    train = load_dataset("fashion-mnist", split="train")
    test = load_dataset("fashion-mnist", split="test")
    pipe = Pipeline.default_for(train.image_shape).fit(train)
    loader = DataLoader(train, 128, shuffle=True, seed=0, transform=pipe.train_transform)
    for x, y in loader:        # x float32 (128, 1, 24, 24), y int64 (128,)
        ...
"""

from .containers import ArrayDataset, Relabeled, Subset, as_indices, train_val_split
from .datasets import (CIFAR10_URL, DATASET_NAMES, FASHION_MNIST_CLASSES, FASHION_MNIST_URL,
                       find_cifar10, find_fashion_mnist, load_cifar10, load_dataset,
                       load_fashion_mnist, make_synthetic)
from .errors import CorruptDatasetError, DatasetNotFoundError
from .formats import read_idx
from .imagefolder import ImageFolderDataset, decode_image, load_image_folder
from .loader import DataLoader
from .prefetch import prefetch
from .sources import ENV_VAR, user_cache_dir
from .transforms import (PIXEL_SCALE, Pipeline, average_ten_crop_predictions, center_crop,
                         center_crop_batch, compute_mean_image, crop_batch, default_crop_size,
                         five_crop, fit_pca_color, hflip, image_statistics, pca_color_augment,
                         pca_from_covariance, random_crop, random_erase, random_flip,
                         resize_and_center_crop, rescale_shorter_side, subtract_mean, ten_crop, to_float)

__all__ = [
    "ArrayDataset", "Relabeled", "Subset", "as_indices", "train_val_split",
    "CIFAR10_URL", "DATASET_NAMES", "FASHION_MNIST_CLASSES", "FASHION_MNIST_URL",
    "find_cifar10", "find_fashion_mnist", "load_cifar10", "load_dataset",
    "load_fashion_mnist", "make_synthetic",
    "CorruptDatasetError", "DatasetNotFoundError", "read_idx",
    "ImageFolderDataset", "decode_image", "load_image_folder",
    "DataLoader", "prefetch", "ENV_VAR", "user_cache_dir",
    "PIXEL_SCALE", "Pipeline", "average_ten_crop_predictions", "center_crop",
    "center_crop_batch", "compute_mean_image", "crop_batch", "default_crop_size",
    "five_crop", "fit_pca_color", "hflip", "image_statistics", "pca_color_augment", "pca_from_covariance",
    "random_crop", "random_erase", "random_flip", "resize_and_center_crop", "rescale_shorter_side",
    "subtract_mean", "ten_crop", "to_float",
]
