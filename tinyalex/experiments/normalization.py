"""Experiment 9: LRN vs BatchNorm vs neither (why batch normalization replaced LRN).

The same small CNN three ways: no normalization, the paper's LRN after the
first two ReLUs (n=5, alpha=1e-4, beta=0.75, k=2), and a BatchNorm2d after
each convolution, before its ReLU (Ioffe and Szegedy 2015, section 3.2).
Each is trained at several constant learning rates, over seeds, from the
same initial weights and data order. Measured: the test error at each rate
(and how many runs diverged), and the epochs until the training error
(quarter-epoch windows) first reaches each threshold at the base rate: the
reasons usually given for BatchNorm are faster training and tolerance of
higher learning rates; LRN was dropped by VGG (which found it did not help)
and replaced by BatchNorm in GoogLeNet v2 and ResNet.
"""
from __future__ import annotations

from .common import (Result, Settings, Table, final_test_error, fmt, histories_json, load_subsets, plot_test_error,
                     quick_settings, small_alexnet, summarize, time_to_train_error, train, train_config)

NAME = "normalization"
TITLE = "LRN vs BatchNorm vs neither: accuracy, speed, learning-rate tolerance (after AlexNet)"
PAPER = ("Ioffe and Szegedy (2015): BatchNorm let Inception reach its accuracy in 14 times fewer steps and "
         "train at 5-30 times the learning rate; Simonyan and Zisserman (2014): LRN did not improve VGG "
         "(section 4.1) and costs memory and time.")
FULL = Settings(dataset="fashion-mnist", epochs=3, seeds=2, extra={"lrs": [0.01, 0.05, 0.2],
                                                                    "thresholds": [0.3, 0.2, 0.15]})
QUICK = quick_settings(extra={"lrs": [0.01, 0.1], "thresholds": [0.5]})
VARIANTS = {"neither": {}, "LRN": {"lrn": True}, "BatchNorm": {"batchnorm": True}}


def run(s: Settings, out, log=print) -> Result:
    data = load_subsets(s)
    lrs, thresholds = s.extra["lrs"], s.extra["thresholds"]
    runs = {label: {lr: [] for lr in lrs} for label in VARIANTS}
    for label, kwargs in VARIANTS.items():
        for lr in lrs:
            for seed in range(s.seeds):
                log(f"  {label}, lr {lr}, seed {seed}")
                model = small_alexnet(data.image_shape, data.num_classes, width=s.width, fc=s.fc, seed=seed, **kwargs)
                runs[label][lr].append(train(model, data, train_config(s, seed, lr), log=log).history)

    def test_error(hs):
        done = [h for h in hs if h.status != "diverged"]
        cell = fmt(summarize([final_test_error(h) for h in done]), percent=True) if done else "-"
        diverged = len(hs) - len(done)
        return cell + (f" ({diverged} diverged)" if diverged else "")

    by_lr = Table("Test error at the end, by constant learning rate (mean ± std over seeds)",
                  ["normalization"] + [f"lr {lr}" for lr in lrs],
                  [[label] + [test_error(runs[label][lr]) for lr in lrs] for label in VARIANTS])
    base = lrs[0]
    speed = Table(f"Epochs until the training error first reaches the threshold, lr {base} "
                  "(quarter-epoch windows; mean ± std over seeds; 'nan': not reached)",
                  ["normalization"] + [f"{100 * t:.0f}%" for t in thresholds] + ["train seconds (whole run)"],
                  [[label] + [fmt(summarize([time_to_train_error(h, t)[0] for h in runs[label][base]]))
                              for t in thresholds]
                   + [fmt(summarize([h.epochs[-1]["elapsed"] if h.epochs else float("nan")
                                     for h in runs[label][base]]), digits=0)] for label in VARIANTS])
    best = max(lrs, key=lambda lr: min(len([h for h in runs[lab][lr] if h.status != "diverged"]) for lab in VARIANTS))
    plot_test_error({label: runs[label][best] for label in VARIANTS}, out / "test_error.png",
                    title=f"normalization, lr {best}, {data.label}, {s.seeds} seed(s)")
    return Result(
        tables=[by_lr, speed],
        figures=[("test_error.png", f"Test error against epochs at lr {best}, mean over seeds")],
        notes=["BatchNorm uses batch statistics in training and running averages (momentum 0.1) at test time, "
               "as PyTorch; the convolutions keep their biases (BatchNorm makes them redundant, not harmful).",
               "A constant learning rate and few epochs: this measures early training and the range of "
               "usable rates, not the best accuracy each variant could reach with a schedule.",
               "The inputs are standardized, so the paper's LRN (alpha=1e-4) barely changes the activations "
               "(see the lrn experiment): 'LRN' and 'neither' are expected to be close."],
        data={"data_label": data.label, "lrs": lrs,
              "runs": {f"{label} lr={lr}": histories_json({label: hs})[label]
                       for label in VARIANTS for lr, hs in runs[label].items()}})
