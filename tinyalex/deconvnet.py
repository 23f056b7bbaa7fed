"""ZFNet's deconvnet (Zeiler and Fergus 2013, section 2.1): an activation projected back to pixels.

    from tinyalex.deconvnet import top_activations, project, plot_projections
    found = top_activations(model, images, "conv3", channels=[0, 5], top=9)   # strongest units over a dataset
    proj = project(model, images[found[0].index][None], "conv3", found[0])   # (C, H, W): the unit in pixels

    python -m tinyalex visualize runs/NAME --layer conv3 --top 9 --out conv3.png

To see what one unit of a feature map responds to, the paper keeps that one
activation, sets every other activation of the layer to zero, and runs the
layers below *backwards*, each by its "deconvnet" counterpart:

* a max pool by **unpooling with the switches**: each value goes back to the
  position that won the window in the forward pass (the switches, ``argmax``
  of the reference :class:`~tinyalex.layers.MaxPool2D`), zeros elsewhere;
* a ReLU by a **ReLU** on the reconstruction: ``max(r, 0)`` (not the
  forward pass's mask: the deconvnet keeps only positive signal);
* a convolution by its **transposed filters**: the convolution's backward
  with respect to its input, ``dx = col2im(W^T r)``, using the layer's own
  weights (the bias is not used);
* LRN (contrast normalization) and dropout (eval) are passed through
  unchanged; a -inf padding (ZFNet's pools) is cropped off.

Only the switches come from the image: the rest is the fixed weights, so a
projection shows which pixel pattern in the image excited the unit.
Without ReLUs between the unit and the input, the projection is exactly
the activation times the gradient of the unit with respect to the input
(``tests/test_deconvnet.py`` checks this); with them, it differs where the
gradient would be gated by the forward ReLU mask.

The switches are recorded here for every model the same way: each max pool
of the chain is run as the reference ``MaxPool2D`` (kernel and stride read
off the model's pool, fast or not), whose ``forward`` keeps ``argmax``.
That works for AlexNet (whose fast pools keep no switches) and for ZFNet
(whose pools are reference pools already). The layers above the unit must
form a plain chain of convolutions, ReLUs, LRNs, max pools, paddings and
dropouts (AlexNet, ZFNet, VGG); a block with branches (ResNet, GoogLeNet)
or an average pool has no switches to project through: a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy

from .backend import to_host
from .data import Subset
from .data.transforms import center_crop_batch, pad_batch
from .errors import UserError
from .layers import LRN, Conv2D, Dropout, MaxPool2D, Pad2D, ReLU
from .layers.conv import col2im
from .train.trainer import TrainConfig, load_data, load_trained, resolve_model_file
from .viz import _tile, _to_display, figure, save_figure

__all__ = ["Unit", "deconv_chain", "top_activations", "project", "receptive_field", "plot_projections",
           "visualize", "register_cli"]


@dataclass(frozen=True)
class Unit:
    """One activation: image ``index`` in the dataset, feature map ``channel``, position (``y``, ``x``)."""

    index: int
    channel: int
    y: int
    x: int
    value: float


def _is_lrn(layer):
    """An LRN, or AlexNet's GroupLRN that wraps one (any layer holding an LRN and no parameters)."""
    return isinstance(layer, LRN) or (not layer.params and any(isinstance(v, LRN) for v in vars(layer).values()))


def deconv_chain(model, layer):
    """[(name, layer)] of ``model`` from the input up to ``layer`` (a conv: up to its ReLU, the rectified map).

    Raises ValueError naming the layers that exist, or the first layer that
    has no deconvnet counterpart (a residual block, an inception module, an
    average pool: no max-pooling switches to project through).
    """
    layers = list(model.children().items())
    names = [n for n, _ in layers]
    if layer not in names:
        spatial = [n for n, l in layers if isinstance(l, (Conv2D, MaxPool2D))]
        raise ValueError(f"layer {layer!r} is not in {getattr(model, 'name', type(model).__name__)}; "
                         f"choose one of {', '.join(spatial) or 'none: it has no convolution'}")
    end = names.index(layer) + 1
    if end < len(layers) and isinstance(layers[end - 1][1], Conv2D) and isinstance(layers[end][1], ReLU):
        end += 1                                     # conv3 -> relu3: the rectified feature map, as the paper
    chain = layers[:end]
    for name, l in chain:
        if not (isinstance(l, (Conv2D, ReLU, MaxPool2D, Pad2D, Dropout)) or _is_lrn(l)):
            raise ValueError(f"{getattr(model, 'name', 'the model')}: {name} ({type(l).__name__}) has no deconvnet "
                             "counterpart; the deconvnet projects through max-pooling switches in plain chains of "
                             "convolutions, ReLUs, LRNs and max pools: use an alexnet, zfnet or vgg model")
    if not isinstance(chain[-1][1], (Conv2D, ReLU, MaxPool2D)):
        raise ValueError(f"layer {layer!r} is a {type(chain[-1][1]).__name__}; choose a convolution or a max pool")
    return chain


def _forward(chain, x):
    """Run the chain (eval) on a host batch; returns (activations, {pool name: reference MaxPool2D with switches})."""
    switches = {}
    for name, layer in chain:
        if isinstance(layer, MaxPool2D):
            pool = MaxPool2D(layer.kernel_size, layer.stride, dtype=x.dtype)   # the reference pool keeps argmax
            x = pool.forward(x)
            switches[name] = pool
        elif not isinstance(layer, Dropout):                                  # dropout: identity in eval
            x = to_host(layer.forward(x))
    return x, switches


def transposed_conv(conv, r, x_shape):
    """The convolution's backward with respect to its input: ``col2im(W^T r)`` (the deconvnet's "filtering")."""
    G, F = conv.groups, conv.out_channels
    W = to_host(conv.params["W"])
    r_g = r.transpose(1, 0, 2, 3).reshape(G, F // G, -1)                   # (G, F/G, N*Ho*Wo)
    cols = numpy.matmul(W.reshape(G, F // G, -1).transpose(0, 2, 1), r_g)  # (G, Cg*kh*kw, N*Ho*Wo)
    return col2im(cols, x_shape, conv.kernel_size, conv.stride, conv.padding, G)


def project(model, image, layer, unit, chain=None):
    """The deconvnet projection of one activation of ``layer`` for one model input (1, C, H, W) -> (C, H, W).

    ``unit``: a :class:`Unit` (channel, y, x; its index is not used here).
    Every other activation of the layer is set to zero, then the layers
    below run backwards: unpooling with this image's switches, ReLU, the
    transposed filters (see the module's docstring). The model is on the
    host (``load_trained`` and ``load_model(..., backend="numpy")`` put it there).
    """
    chain = deconv_chain(model, layer) if chain is None else chain
    x = to_host(image)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"project takes one image as (1, C, H, W), got shape {x.shape}")
    shapes, switches = [], {}                     # each layer's input shape; each pool's switches
    for name, l in chain:
        shapes.append(x.shape)
        x, sw = _forward([(name, l)], x)
        switches.update(sw)
    r = numpy.zeros_like(x)
    r[0, unit.channel, unit.y, unit.x] = x[0, unit.channel, unit.y, unit.x]      # every other activation: 0
    for (name, l), shape in zip(reversed(chain), reversed(shapes)):
        if isinstance(l, MaxPool2D):
            r = switches[name].backward(r)                     # unpool: back to where each maximum came from
        elif isinstance(l, ReLU):
            r = numpy.maximum(r, 0)                           # the deconvnet's ReLU: rectify the reconstruction
        elif isinstance(l, Conv2D):
            r = transposed_conv(l, r, shape)                  # the transposed filters
        elif isinstance(l, Pad2D):
            r = l.backward(r)                                 # crop the padding off
        # LRN and dropout: passed through unchanged
    return r[0]


def receptive_field(chain, y, x, input_shape):
    """(top, bottom, left, right), bottom/right exclusive: the input pixels a unit at (y, x) of the chain's
    output can see, clipped to the image."""
    t, b, l, r = y, y, x, x
    for name, layer in reversed(chain):
        if isinstance(layer, (Conv2D, MaxPool2D)):
            (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
            ph, pw = layer.padding if isinstance(layer, Conv2D) else (0, 0)
            t, b, l, r = t * sh - ph, b * sh - ph + kh - 1, l * sw - pw, r * sw - pw + kw - 1
        elif isinstance(layer, Pad2D):
            ph, pw = layer.padding
            t, b, l, r = t - ph, b - ph, l - pw, r - pw
    H, W = input_shape[-2:]
    return max(t, 0), min(b, H - 1) + 1, max(l, 0), min(r, W - 1) + 1


def top_activations(model, images, layer, channels=None, top=9, batch_size=64):
    """{channel: [Unit, ...]}: the ``top`` strongest activations of each feature map over ``images``.

    ``images``: model inputs (N, C, H, W) (already through the pipeline), or a
    function of (start, stop) returning them. One unit per image (its
    strongest position), as the paper's Figure 2 shows 9 different images.
    ``channels``: the feature maps (default: the 4 whose strongest activation
    is largest).
    """
    chain = deconv_chain(model, layer)
    get = images if callable(images) else (lambda i, j: images[i:j])
    n = len(images) if not callable(images) else None
    best, start = [], 0
    while n is None or start < n:
        xb = get(start, start + batch_size if n is None else min(start + batch_size, n))
        if xb is None or len(xb) == 0:
            break
        acts, _ = _forward(chain, to_host(xb))
        N, C, H, W = acts.shape
        flat = acts.reshape(N, C, H * W)
        pos = flat.argmax(axis=-1)                                    # (N, C): each image's strongest unit per map
        best.append((start + numpy.arange(N)[:, None].repeat(C, 1), pos, numpy.take_along_axis(
            flat, pos[..., None], axis=-1)[..., 0], W))
        start += N
    if not best:
        raise ValueError("top_activations: no images")
    index = numpy.concatenate([b[0] for b in best])
    pos = numpy.concatenate([b[1] for b in best])
    value = numpy.concatenate([b[2] for b in best])
    W = best[0][3]
    C = value.shape[1]
    if channels is None:
        channels = [int(c) for c in numpy.argsort(-value.max(axis=0), kind="stable")[:min(4, C)]]
    bad = [c for c in channels if not 0 <= int(c) < C]
    if bad:
        raise ValueError(f"{layer} has feature maps 0..{C - 1}; got {bad}")
    out = {}
    for c in channels:
        order = numpy.argsort(-value[:, c], kind="stable")[:top]
        out[int(c)] = [Unit(int(index[i, c]), int(c), int(pos[i, c] // W), int(pos[i, c] % W), float(value[i, c]))
                       for i in order]
    return out


def plot_projections(rows, layer, path=None, title=None):
    """Figure 2's layout: per feature map, its projections (left) beside the image patches (right).

    ``rows``: {channel: [(projection (C, h, w), patch (C, h, w)), ...]} (crops
    of the receptive fields). Each image is scaled to its own range.
    """
    n = max(len(v) for v in rows.values())
    cols = int(numpy.ceil(numpy.sqrt(n)))
    fig = figure(6.4, 2.6 * len(rows) + 0.5)
    axes = numpy.atleast_2d(fig.subplots(len(rows), 2, squeeze=False))
    for (channel, pairs), (left, right) in zip(rows.items(), axes):
        size = max(max(p.shape[1:]) for pair in pairs for p in pair)
        for ax, which, what in ((left, 0, "projections"), (right, 1, "image patches")):
            tiles = _to_display(numpy.stack([_fit(pair[which], size) for pair in pairs]))
            grid = _tile(tiles, cols)
            ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(f"{layer} map {channel}: {what}", fontsize=8)
    fig.suptitle(title or f"{layer}: top {n} activations of {len(rows)} maps, projected to pixels", fontsize=10)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def _fit(img, size):
    """Pad a (C, h, w) crop to (C, size, size), centred (receptive fields at the border are clipped)."""
    c, h, w = img.shape
    out = numpy.full((c, size, size), img.min() if img.size else 0.0)
    t, l = (size - h) // 2, (size - w) // 2
    out[:, t:t + h, l:l + w] = img
    return out


def visualize(model, images, layer, channels=None, top=9, display=None, path=None):
    """Find the strongest activations of ``layer`` over ``images`` (model inputs) and draw their projections.

    ``display``: the images to cut the patches from (default: ``images``;
    e.g. the uint8 crops the model saw). Returns (figure, {channel: [Unit]}).
    """
    chain = deconv_chain(model, layer)
    found = top_activations(model, images, layer, channels, top)
    display = images if display is None else display
    rows = {}
    for channel, units in found.items():
        pairs = []
        for u in units:
            proj = project(model, images[u.index:u.index + 1], layer, u, chain)
            t, b, l, r = receptive_field(chain, u.y, u.x, images.shape)
            pairs.append((proj[:, t:b, l:r], numpy.asarray(display[u.index], dtype=numpy.float64)[:, t:b, l:r]))
        rows[channel] = pairs
    return plot_projections(rows, layer, path), found


# -- python -m tinyalex visualize --------------------------------------------------------------------
def register_cli(subparsers):
    p = subparsers.add_parser(
        "visualize", help="ZFNet's deconvnet: the strongest activations of a layer, projected back to pixels",
        description="Find the strongest activations of some feature maps of a trained model over its test set\n"
                    "and project each back to pixel space (unpooling with the max-pool switches, ReLU,\n"
                    "transposed filters), drawn beside the image patch as in Zeiler and Fergus' Figure 2.\n"
                    "Example: python -m tinyalex visualize runs/NAME --layer conv3 --top 9")
    p.add_argument("run", metavar="RUN", help="run folder, or a model.npz / best.npz of an alexnet or zfnet model")
    p.add_argument("--layer", default="conv3", help="a convolution (its rectified map) or a max pool, e.g. conv3")
    p.add_argument("--top", type=int, default=9, help="strongest activations per feature map")
    p.add_argument("--maps", default=None, help="feature maps, e.g. 0,5,7 (default: the 4 strongest)")
    p.add_argument("--limit", type=int, default=2000, help="search the first N test images")
    p.add_argument("--split", choices=("test", "train"), default="test", help="which images to search")
    p.add_argument("--out", default=None, help="PNG (default: RUN/deconv-LAYER.png)")
    p.set_defaults(func=_cli_main)


def _maps(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--maps {text!r}: give feature map numbers separated by commas, e.g. 0,5,7") from None


def _cli_main(args):
    if args.top < 1 or args.limit < 1:
        raise UserError(f"--top and --limit must be at least 1, got {args.top} and {args.limit}")
    path = resolve_model_file(args.run)
    model, pipeline, classes, meta = load_trained(path)
    try:
        deconv_chain(model, args.layer)                 # a bad --layer: one line, before loading any data
    except ValueError as exc:
        raise UserError(str(exc)) from None
    cfg = TrainConfig.from_dict(meta["train_config"])
    train, _, test = load_data(cfg, check=False)
    dataset = test if args.split == "test" and test is not None else train
    dataset = Subset(dataset, numpy.arange(min(args.limit, len(dataset))))
    x_uint8, _ = dataset.get_batch(numpy.arange(len(dataset)))
    images = pipeline.eval_transform(x_uint8)
    seen = pad_batch(x_uint8.astype(numpy.float32) / 255, pipeline.pad)           # what the model saw, unnormalized
    seen = center_crop_batch(seen, pipeline.crop) if pipeline.crop is not None else seen
    out = Path(args.out) if args.out else (path.parent / f"deconv-{args.layer}.png")
    try:
        _, found = visualize(model, images, args.layer, _maps(args.maps) if args.maps else None, args.top,
                             display=seen, path=out)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for channel, units in found.items():
        print(f"{args.layer} map {channel}: strongest {', '.join(f'{u.value:.2f}' for u in units[:3])}, ... "
              f"(images {', '.join(str(u.index) for u in units[:5])}{', ...' if len(units) > 5 else ''})")
    print(f"wrote {out}")
    return 0

