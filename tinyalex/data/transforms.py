"""Preprocessing and data augmentation of AlexNet (paper sections 2 and 4.1).

Batches are NumPy arrays in NCHW layout: x[n, c, h, w]. Every random step
takes a ``numpy.random.Generator`` so that training is reproducible.

Pixel scale used by tinyalex (documented choice)
------------------------------------------------
uint8 pixels are mapped to float32 by ``x / 255`` (range 0..1); the mean
image, the per-channel std and the PCA eigenvalues are all computed on that
0..1 scale, so they are consistent with each other. The paper works on raw
0..255 values; dividing by 255 only rescales the input (see docs/data.md).

Order of the steps in ``Pipeline.train_transform``::

    x / 255  ->  - mean image (sec. 2)  ->  zero pad (optional)
      ->  random crop (sec. 4.1)  ->  random horizontal flip (sec. 4.1)
      ->  + PCA colour noise (sec. 4.1)  ->  / per-channel std (optional, not in paper)

``eval_transform`` does the same with the centre crop and no randomness;
``eval_views`` gives the paper's 10 test views (4 corners + centre, and
their mirror images).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

PIXEL_SCALE = 1.0 / 255.0  # uint8 -> float32 in [0, 1]


# ---------------------------------------------------------------------------
# Single images (image-folder path): rescale + centre crop, section 2
# ---------------------------------------------------------------------------
def _pair(size) -> tuple[int, int]:
    """``size`` as (height, width); an int means a square."""
    h, w = (size, size) if np.isscalar(size) else size
    return int(h), int(w)


def _hw(img) -> tuple[int, int]:
    """(height, width) of a PIL image or an HWC / HW array."""
    return (img.shape[0], img.shape[1]) if isinstance(img, np.ndarray) else img.size[::-1]


def resize_image(img, size):
    """Resize one image to exactly ``size`` = (h, w) (or h = w), bilinear.

    Accepts a PIL image (returns one) or a uint8 HWC / HW array (returns an
    array of the same layout). Pillow's bilinear filter antialiases when
    shrinking.
    """
    h, w = _pair(size)
    if _hw(img) == (h, w):
        return img
    if not isinstance(img, np.ndarray):
        return img.resize((w, h), Image.BILINEAR)
    gray_hwc = img.ndim == 3 and img.shape[-1] == 1
    out = np.asarray(Image.fromarray(img[..., 0] if gray_hwc else img).resize((w, h), Image.BILINEAR))
    return out[..., None] if gray_hwc else out


def rescale_shorter_side(img, size: int):
    """Resize so that the shorter side is ``size``, keeping the aspect ratio (section 2).

    An image of H x W with H <= W becomes size x round(W * size / H)
    (and symmetrically for W < H). PIL image or HWC / HW array in and out.
    """
    height, width = _hw(img)
    scale = size / min(height, width)
    return resize_image(img, (max(size, round(height * scale)), max(size, round(width * scale))))


def center_crop(img, size):
    """The central ``size`` x ``size`` patch (or (h, w) patch) of one image (section 2).

    For an image of H x W the patch starts at top = (H - h) // 2,
    left = (W - w) // 2. PIL image or HWC / HW array in and out.
    """
    h, w = _pair(size)
    height, width = _hw(img)
    if h > height or w > width:
        raise ValueError(f"crop {h}x{w} is larger than the image {height}x{width}")
    top, left = (height - h) // 2, (width - w) // 2
    if isinstance(img, np.ndarray):
        return img[top:top + h, left:left + w]
    return img.crop((left, top, left + w, top + h))


def resize_and_center_crop(img, size=256):
    """The paper's ImageNet preprocessing (section 2) for one image.

    Rescale so the shorter side is ``size``, then take the central
    size x size patch. For a non-square (h, w) target the image is scaled by
    s = max(h / H, w / W), the smallest factor that covers h x w, then
    centre-cropped.
    """
    h, w = _pair(size)
    height, width = _hw(img)
    s = max(h / height, w / width)
    scaled = resize_image(img, (max(h, round(height * s)), max(w, round(width * s))))
    return center_crop(scaled, (h, w))


# ---------------------------------------------------------------------------
# Statistics of the training set (streaming, bounded memory)
# ---------------------------------------------------------------------------
def _batches(dataset, batch_size=None, max_elements: int = 1 << 24):
    """Yield uint8 batches covering ``dataset`` in order.

    Default batch size: as many images as fit in ~max_elements values (16M
    bytes of uint8), so memory stays bounded whatever the image size.
    """
    if batch_size is None:
        batch_size = max(1, max_elements // int(np.prod(dataset.image_shape)))
    for start in range(0, len(dataset), batch_size):
        x, _ = dataset.get_batch(np.arange(start, min(start + batch_size, len(dataset))))
        yield x


def image_statistics(dataset, scale: float = PIXEL_SCALE, batch_size=None) -> dict:
    """One streaming pass over ``dataset``: every statistic the Pipeline needs.

    With x the pixel values times ``scale``, N images, P = H*W pixels each:

    * ``mean_image``  (C, H, W): m[c,h,w] = (1/N) sum_n x[n,c,h,w]
    * ``pixel_mean``  (C,):      mu[c] = mean of x[:, c] over all images and pixels
    * ``pixel_cov``   (C, C):    Sigma = (1/NP) sum_{n,h,w} x x^T - mu mu^T
      (the covariance of the RGB pixel values, section 4.1)
    * ``std_about_mean_image`` (C,): sqrt of (1/NP) sum (x[n,c,h,w] - m[c,h,w])^2
    * ``std_about_pixel_mean`` (C,): sqrt(diag(Sigma))

    Sums are accumulated in float64 over raw 0..255 values and scaled at the end.
    """
    if len(dataset) == 0:
        raise ValueError("cannot compute statistics of an empty dataset")
    c, h, w = dataset.image_shape
    s1 = np.zeros((c, h, w))          # sum_n x
    s2 = np.zeros((c, h, w))          # sum_n x^2
    outer = np.zeros((c, c))          # sum_{n,h,w} x x^T
    for xb in _batches(dataset, batch_size):
        xb = xb.astype(np.float64)
        s1 += xb.sum(axis=0)
        s2 += np.einsum("nchw,nchw->chw", xb, xb)                    # sum_n x^2, no temporary
        flat = xb.transpose(1, 0, 2, 3).reshape(c, -1)                 # (C, n*H*W)
        outer += flat @ flat.T
    n, p = len(dataset), h * w
    mean_image = s1 / n
    mu = mean_image.mean(axis=(1, 2))
    cov = outer / (n * p) - np.outer(mu, mu)
    var_about_image = (s2 / n - mean_image ** 2).mean(axis=(1, 2))
    return {
        "mean_image": (mean_image * scale).astype(np.float32),
        "pixel_mean": mu * scale,
        "pixel_cov": cov * scale ** 2,
        "std_about_mean_image": np.sqrt(np.maximum(var_about_image, 0)) * scale,
        "std_about_pixel_mean": np.sqrt(np.maximum(np.diag(cov), 0)) * scale,
    }


def compute_mean_image(dataset, scale: float = PIXEL_SCALE, batch_size=None) -> np.ndarray:
    """The mean image of the training set, (C, H, W) float32 (section 2).

    m[c,h,w] = (1/N) sum_n scale * x[n,c,h,w]. Streams over batches, so it
    works for datasets larger than memory.
    """
    return image_statistics(dataset, scale, batch_size)["mean_image"]


def subtract_mean(x, mean_image) -> np.ndarray:
    """x - m for every image of the batch: (N, C, H, W) - (C, H, W), float32."""
    return np.asarray(x, dtype=np.float32) - np.asarray(mean_image, dtype=np.float32)


def pca_from_covariance(cov) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition Sigma = P diag(l) P^T of a symmetric C x C covariance.

    Returns (eigvecs (C, C) with eigenvector p_i in column i, eigvals (C,)),
    eigenvalues in decreasing order. Each eigenvector's sign is fixed so that
    its largest-magnitude entry is positive (makes results reproducible).
    """
    eigvals, eigvecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = np.maximum(eigvals[order], 0.0), eigvecs[:, order]
    signs = np.sign(eigvecs[np.abs(eigvecs).argmax(axis=0), np.arange(eigvecs.shape[1])])
    return eigvecs * signs, eigvals


def fit_pca_color(dataset, scale: float = PIXEL_SCALE, batch_size=None):
    """PCA of all training RGB pixel values (section 4.1), streaming.

    Returns (eigvecs (C, C), columns p_i; eigvals (C,) decreasing) of the
    C x C covariance of the pixel values x * ``scale`` (default 0..1 scale,
    so the eigenvalues are in units of (pixel/255)^2).
    """
    return pca_from_covariance(image_statistics(dataset, scale, batch_size)["pixel_cov"])


# ---------------------------------------------------------------------------
# Crops and flips (section 4.1), vectorized over the batch
# ---------------------------------------------------------------------------
def crop_batch(x, size, top, left) -> np.ndarray:
    """Crop image n of the batch at (top[n], left[n]) to ``size``.

    x: (N, C, H, W); top, left: ints or (N,) int arrays; returns (N, C, h, w)
    with out[n] = x[n, :, top[n]:top[n]+h, left[n]:left[n]+w]. Vectorized:
    a strided view of all h x w windows is indexed once, no Python loop.
    """
    x = np.asarray(x)
    h, w = _pair(size)
    n, _, height, width = x.shape
    if h > height or w > width:
        raise ValueError(f"crop {h}x{w} is larger than the images {height}x{width}")
    top = np.broadcast_to(np.asarray(top, dtype=np.intp), (n,))
    left = np.broadcast_to(np.asarray(left, dtype=np.intp), (n,))
    if np.any(top < 0) or np.any(top > height - h) or np.any(left < 0) or np.any(left > width - w):
        raise ValueError("crop offsets out of range")
    windows = sliding_window_view(x, (h, w), axis=(2, 3))      # (N, C, H-h+1, W-w+1, h, w)
    return windows[np.arange(n), :, top, left]                  # (N, C, h, w), a copy


def random_crop(x, size, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random ``size`` crop of each image (section 4.1).

    Offsets top ~ U{0..H-h}, then left ~ U{0..W-w}, one per image, drawn
    from ``rng`` in that order.
    """
    h, w = _pair(size)
    n, _, height, width = np.shape(x)
    top = rng.integers(0, height - h + 1, size=n)
    left = rng.integers(0, width - w + 1, size=n)
    return crop_batch(x, (h, w), top, left)


def center_crop_batch(x, size) -> np.ndarray:
    """The central crop of every image: offsets ((H-h)//2, (W-w)//2)."""
    h, w = _pair(size)
    _, _, height, width = np.shape(x)
    return crop_batch(x, (h, w), (height - h) // 2, (width - w) // 2)


def hflip(x) -> np.ndarray:
    """Horizontal reflection of every image: out[..., j] = x[..., W-1-j] (a view)."""
    return np.asarray(x)[..., ::-1]


def random_flip(x, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Reflect each image horizontally with probability ``p`` (section 4.1).

    One uniform draw per image from ``rng``; image n is flipped if u[n] < p.
    """
    x = np.asarray(x)
    flip = rng.random(len(x)) < p
    return np.where(flip[:, None, None, None], x[..., ::-1], x)


def random_erase(x, rng: np.random.Generator, p: float = 0.5, area=(0.02, 0.4), ratio=(0.3, 3.3)) -> np.ndarray:
    """Random erasing (Zhong et al. 2017; not in the paper): blank one rectangle in some images.

    Each image is erased with probability ``p``. Its rectangle covers a
    fraction s ~ U(area) of the H x W image with aspect ratio r = h/w drawn
    log-uniformly from ``ratio``: h = round(sqrt(s H W r)), w = round(sqrt(s H W / r)),
    clipped to the image, at a uniformly random position where it fits. It is
    set to 0, which after mean subtraction is the training mean (torchvision's
    ``RandomErasing`` default; the paper of Zhong et al. fills with noise).
    A net that must classify a shirt with a sleeve missing learns to use the
    whole garment. Draws from ``rng`` in this order, one of each per image:
    erase decisions, areas, log ratios, tops, lefts. x: (N, C, H, W) float;
    returns a new array (all channels of the rectangle are erased).
    """
    x = np.asarray(x)
    n, _, height, width = x.shape
    erase = rng.random(n) < p
    s = rng.uniform(area[0], area[1], n) * height * width
    r = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), n))
    h = np.clip(np.rint(np.sqrt(s * r)), 1, height).astype(np.int64)            # (N,)
    w = np.clip(np.rint(np.sqrt(s / r)), 1, width).astype(np.int64)
    top = (rng.random(n) * (height - h + 1)).astype(np.int64)                   # 0 .. H - h
    left = (rng.random(n) * (width - w + 1)).astype(np.int64)
    rows, cols = np.arange(height), np.arange(width)
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])              # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])            # (N, W)
    mask = erase[:, None, None] & in_rows[:, :, None] & in_cols[:, None, :]     # (N, H, W)
    return np.where(mask[:, None], x.dtype.type(0), x)


def pad_batch(x, pad: int) -> np.ndarray:
    """Zero-pad every image by ``pad`` pixels on each side: (N, C, H+2p, W+2p)."""
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


# ---------------------------------------------------------------------------
# PCA colour augmentation (section 4.1)
# ---------------------------------------------------------------------------
def pca_color_augment(x, eigvecs, eigvals, rng: np.random.Generator, std: float = 0.1):
    """Add PCA colour noise to each image (section 4.1).

    For image n draw alpha_n ~ N(0, std^2) (C values, once per image each
    time the image is used) and add to every pixel

        delta_n = [p_1 ... p_C] [alpha_n1 l_1, ..., alpha_nC l_C]^T = P (alpha_n * l)

    where P = ``eigvecs`` (columns p_i) and l = ``eigvals`` of the pixel
    covariance, computed on the same pixel scale as ``x``. x: (N, C, H, W)
    float; returns a new float32 array.
    """
    x = np.asarray(x, dtype=np.float32)
    alpha = rng.normal(0.0, std, size=(len(x), x.shape[1]))             # (N, C)
    delta = (alpha * np.asarray(eigvals)) @ np.asarray(eigvecs).T       # (N, C)
    return x + delta.astype(np.float32)[:, :, None, None]


# ---------------------------------------------------------------------------
# Test-time 10 views (section 4.1)
# ---------------------------------------------------------------------------
TEN_CROP_ORDER = ("top-left", "top-right", "bottom-left", "bottom-right", "center")


def five_crop(x, size) -> np.ndarray:
    """The 5 crops of each image, without mirrors: shape (5, N, C, h, w).

    views[0:5] are the crops at the top-left, top-right, bottom-left,
    bottom-right corners and the centre (TEN_CROP_ORDER). For nets trained
    without flips, whose test images are never mirrored (Fashion-MNIST's
    shoes all point left): the paper's 10 views less the mirror images.
    """
    x = np.asarray(x)
    h, w = _pair(size)
    _, _, height, width = x.shape
    offsets = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
               ((height - h) // 2, (width - w) // 2)]
    return np.stack([crop_batch(x, (h, w), t, l) for t, l in offsets])


def ten_crop(x, size) -> np.ndarray:
    """The paper's 10 test views of each image: shape (10, N, C, h, w).

    views[0:5] are ``five_crop(x, size)``; views[5:10] are the same crops
    reflected horizontally (views[5 + k] = hflip(views[k])).
    ``views.reshape(10 * N, C, h, w)`` puts view v of image n at row v*N + n.
    """
    crops = five_crop(x, size)
    return np.concatenate([crops, crops[..., ::-1]])


def average_ten_crop_predictions(probs) -> np.ndarray:
    """Average softmax outputs over the 10 views: (10, N, K) -> (N, K).

    Also accepts (10*N, K) laid out view-major as produced by
    ``ten_crop(x, s).reshape(10 * N, ...)``. Average probabilities (softmax
    outputs), not logits, as the paper does.
    """
    probs = np.asarray(probs)
    if probs.ndim == 2:
        if probs.shape[0] % 10:
            raise ValueError(f"expected 10*N rows, got {probs.shape[0]}")
        probs = probs.reshape(10, -1, probs.shape[1])
    if probs.ndim != 3 or probs.shape[0] != 10:
        raise ValueError(f"expected shape (10, N, K) or (10*N, K), got {probs.shape}")
    return probs.mean(axis=0)


# ---------------------------------------------------------------------------
# The Pipeline: the trainer's single entry point
# ---------------------------------------------------------------------------
_PAPER_CROPS = {256: 227, 32: 28, 28: 24}


def default_crop_size(height: int) -> int:
    """Scaled-down analogue of the paper's 227-of-256 training crop.

    256 -> 227 (the full net), 32 -> 28 (CIFAR-10), 28 -> 24 (Fashion-MNIST),
    other sizes -> round(0.875 * height) (224/256 = 0.875).
    """
    return _PAPER_CROPS.get(int(height), int(round(0.875 * height)))


@dataclass(eq=False)
class Pipeline:
    """Data preprocessing + augmentation of AlexNet, each step switchable.

    Flags (the config, saved in checkpoints):
      mean        subtract the training mean image (section 2)
      crop        training crop size (random crop at train time, centre crop
                  at eval time), or None for no crop (section 4.1)
      flip        random horizontal flips at train time (section 4.1)
      pca         PCA colour augmentation at train time (section 4.1)
      pca_std     std of the alphas (paper: 0.1)
      ten_crop    evaluate with the 10 views (section 4.1); the trainer reads
                  ``test_views`` and calls eval_views instead of eval_transform
      five_crop   evaluate with the 5 crops without their mirrors (NOT in the
                  paper; for nets trained without flips)
      pad         zero padding before cropping (0 in the paper; e.g. pad=4,
                  crop=32 is the common CIFAR recipe)
      standardize divide by the per-channel std after mean subtraction
                  (NOT in the paper; gives inputs of unit scale, which helps
                  the scaled-down nets train)
      erase       probability of random erasing at train time (NOT in the
                  paper; Zhong et al. 2017; 0: off)

    Usage::

        pipe = Pipeline(crop=28).fit(train_set)        # mean image, std, PCA
        x = pipe.train_transform(x_uint8, rng)         # (N, C, 28, 28) float32
        x = pipe.eval_transform(x_uint8)               # centre crop
        v = pipe.eval_views(x_uint8)                   # (10, N, C, 28, 28)
        v = pipe.eval_views(x_uint8, 5)                # (5, N, C, 28, 28): no mirrors
    """

    mean: bool = True
    crop: int | None = None
    flip: bool = True
    pca: bool = True
    ten_crop: bool = False
    pad: int = 0
    standardize: bool = True
    pca_std: float = 0.1
    erase: float = 0.0
    five_crop: bool = False
    # Fitted statistics, on the 0..1 pixel scale (set by fit / load_state_dict).
    mean_image: np.ndarray | None = field(default=None, repr=False)
    channel_std: np.ndarray | None = field(default=None, repr=False)
    eigvecs: np.ndarray | None = field(default=None, repr=False)
    eigvals: np.ndarray | None = field(default=None, repr=False)

    _CONFIG = ("mean", "crop", "flip", "pca", "ten_crop", "pad", "standardize", "pca_std", "erase",
               "five_crop")
    _ARRAYS = ("mean_image", "channel_std", "eigvecs", "eigvals")

    def __post_init__(self):
        # Plain Python types, so that config() is always JSON-serialisable.
        self.crop = None if self.crop is None else int(self.crop)
        self.pad, self.pca_std, self.erase = int(self.pad), float(self.pca_std), float(self.erase)
        for name in ("mean", "flip", "pca", "ten_crop", "standardize", "five_crop"):
            setattr(self, name, bool(getattr(self, name)))
        if self.ten_crop and self.five_crop:
            raise ValueError("ten_crop and five_crop are two ways to test; choose one")
        if self.crop is not None and self.crop < 1:
            raise ValueError(f"crop must be a positive int or None, got {self.crop}")
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0, got {self.pad}")
        if self.pca_std < 0:
            raise ValueError(f"pca_std must be >= 0, got {self.pca_std}")
        if not 0.0 <= self.erase <= 1.0:
            raise ValueError(f"erase must be a probability in [0, 1], got {self.erase}")

    @classmethod
    def default_for(cls, image_shape, **overrides) -> "Pipeline":
        """Sensible defaults for images of ``image_shape`` (C, H, W).

        crop = default_crop_size(H), PCA only for 3-channel images; any flag
        can be overridden, e.g. ``Pipeline.default_for((1, 28, 28), flip=False)``.
        """
        c, h, _ = image_shape
        config = {"crop": default_crop_size(h), "pca": c == 3}
        config.update(overrides)
        return cls(**config)

    # -- fitting -----------------------------------------------------------
    @property
    def needs_fit(self) -> bool:
        return self.mean or self.standardize or self.pca

    @property
    def is_fitted(self) -> bool:
        return ((not self.mean or self.mean_image is not None)
                and (not self.standardize or self.channel_std is not None)
                and (not self.pca or self.eigvals is not None))

    def fit(self, train_dataset, batch_size=None) -> "Pipeline":
        """Compute mean image, per-channel std and PCA from the training set.

        One streaming pass (``image_statistics``); returns self.
        """
        c, h, w = train_dataset.image_shape
        if self.crop is not None and self.crop > min(h, w) + 2 * self.pad:
            raise ValueError(f"crop {self.crop} is larger than the (padded) images {h}x{w}")
        if not self.needs_fit:
            return self
        stats = image_statistics(train_dataset, batch_size=batch_size)
        self.mean_image = stats["mean_image"]
        std = stats["std_about_mean_image" if self.mean else "std_about_pixel_mean"]
        self.channel_std = np.maximum(std, 1e-8).astype(np.float32)
        self.eigvecs, self.eigvals = pca_from_covariance(stats["pixel_cov"])
        return self

    def _check_fitted(self, x):
        if not self.is_fitted:
            raise RuntimeError("Pipeline is not fitted: call fit(train_dataset) or load_state_dict()")
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"expected an NCHW batch, got shape {x.shape}")
        if self.mean and x.shape[1:] != self.mean_image.shape:
            raise ValueError(f"images {x.shape[1:]} do not match the mean image {self.mean_image.shape}")
        return x

    # -- the transforms ----------------------------------------------------
    def _prepare(self, x):
        """x / 255, minus the mean image, zero padding: (N, C, H+2p, W+2p) float32."""
        x = self._check_fitted(x).astype(np.float32) * np.float32(PIXEL_SCALE)
        if self.mean:
            x = x - self.mean_image
        return pad_batch(x, self.pad)

    def _finish(self, x):
        """Divide by the per-channel std (if standardize); float32, contiguous."""
        if self.standardize:
            x = x / self.channel_std.reshape(-1, 1, 1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def train_transform(self, x_uint8, rng: np.random.Generator) -> np.ndarray:
        """Training batch: uint8 (N, C, H, W) -> float32 (N, C, crop, crop).

        Random draws from ``rng`` in this order: crop tops, crop lefts, flip
        decisions, PCA alphas, erasing's draws (only for the enabled steps).
        """
        x = self._prepare(x_uint8)
        if self.crop is not None:
            x = random_crop(x, self.crop, rng)
        if self.flip:
            x = random_flip(x, rng)
        if self.pca:
            x = pca_color_augment(x, self.eigvecs, self.eigvals, rng, self.pca_std)
        if self.erase > 0:
            x = random_erase(x, rng, self.erase)
        return self._finish(x)

    def eval_transform(self, x_uint8, rng=None) -> np.ndarray:
        """Evaluation batch (centre crop, no randomness): float32 (N, C, crop, crop).

        ``rng`` is ignored; it exists so the DataLoader can call any transform
        as ``transform(x, rng)``.
        """
        x = self._prepare(x_uint8)
        if self.crop is not None:
            x = center_crop_batch(x, self.crop)
        return self._finish(x)

    @property
    def test_views(self) -> int:
        """How many views a test image gets: 10 (ten_crop), 5 (five_crop) or 1 (the centre)."""
        return 10 if self.ten_crop else 5 if self.five_crop else 1

    def eval_views(self, x_uint8, views=10) -> np.ndarray:
        """The test views: float32 (views, N, C, crop, crop).

        views=10: ``ten_crop`` (the paper's); 5: ``five_crop`` (no mirrors);
        1: the centre crop alone, as ``eval_transform[None]``.
        """
        if views not in (1, 5, 10):
            raise ValueError(f"views must be 1, 5 or 10, got {views!r}")
        if views == 1:
            return self.eval_transform(x_uint8)[None]
        if self.crop is None:
            raise ValueError("eval_views needs a crop size (Pipeline(crop=...))")
        crops = (ten_crop if views == 10 else five_crop)(self._prepare(x_uint8), self.crop)
        return self._finish(crops)

    def output_shape(self, image_shape) -> tuple:
        """(C, h, w) of the transformed images, the model's input shape."""
        c, h, w = image_shape
        if self.crop is not None:
            return (c, int(self.crop), int(self.crop))
        return (c, h + 2 * self.pad, w + 2 * self.pad)

    # -- checkpoints -------------------------------------------------------
    def config(self) -> dict:
        """The flags as a JSON-serialisable dict."""
        return {k: getattr(self, k) for k in self._CONFIG}

    def state_dict(self) -> dict:
        """{'config': JSON string of the flags, 'mean_image': ..., ...}.

        Every value is a NumPy array (the config is a 0-d string array), so
        the dict can go straight into ``np.savez``. Statistics that were not
        fitted are left out.
        """
        state = {"config": np.array(json.dumps(self.config()))}
        for k in self._ARRAYS:
            if getattr(self, k) is not None:
                state[k] = np.asarray(getattr(self, k))
        return state

    def load_state_dict(self, state) -> "Pipeline":
        """Restore flags and statistics saved by ``state_dict`` (also from an NpzFile)."""
        config = state["config"]
        config = json.loads(str(config[()] if isinstance(config, np.ndarray) else config)) \
            if not isinstance(config, dict) else dict(config)
        unknown = set(config) - set(self._CONFIG)
        if unknown:
            raise ValueError(f"unknown Pipeline config keys {sorted(unknown)}")
        for k, v in config.items():
            setattr(self, k, v)
        keys = set(state.keys()) if hasattr(state, "keys") else set(state)
        for k in self._ARRAYS:
            value = np.asarray(state[k]) if k in keys else None
            if value is not None and k in ("mean_image", "channel_std"):
                value = value.astype(np.float32)
            setattr(self, k, value)
        self.__post_init__()
        return self

    @classmethod
    def from_state_dict(cls, state) -> "Pipeline":
        return cls().load_state_dict(state)


def to_float(x_uint8, rng=None) -> np.ndarray:
    """uint8 -> float32 on the 0..1 scale: x / 255. (``rng`` is ignored.)

    The DataLoader's default transform when no Pipeline is given.
    """
    return np.asarray(x_uint8, dtype=np.float32) * np.float32(PIXEL_SCALE)
