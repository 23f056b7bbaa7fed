"""The printable summary and the `summary` subcommand."""
import numpy as np
import pytest

from tinyalex.cli import main
from tinyalex.models import build_model, transfer_bytes_per_image


def test_summary_lists_every_layer_with_shape_params_and_totals():
    net = build_model("alexnet-small")
    text = net.summary()
    for name in net.children():
        assert f"\n{name} " in text, name
    assert "32x28x28" in text and "64x3x3" in text
    assert f"Total parameters: {net.num_parameters():,}" in text


def test_split_summary_shows_towers_devices_and_bytes_crossing():
    net = build_model("alexnet-small", devices=(0, 1), width=0.25, dtype=np.float64)
    text = net.summary()
    assert "tower A (dev 0) | tower B (dev 1)" in text
    for point in ("input", "to_conv3", "to_fc6", "to_fc7", "to_fc8", "logits"):
        assert f"\n{point} " in text
    per_img = transfer_bytes_per_image(net)
    assert per_img["to_conv3"] == 16 * 7 * 7 * 8 and per_img["logits"] == 5 * 8
    assert f"{sum(per_img.values()):,} B forward" in text


def test_summary_command_prints_the_table(capsys):
    assert main(["summary", "--model", "alexnet-small", "--devices", "0,1"]) == 0
    out = capsys.readouterr().out
    total = build_model("alexnet-small").num_parameters()
    assert "conv3" in out and f"Total parameters: {total:,}" in out
    assert "tower A" in out


def test_summary_command_refuses_bad_devices_naming_the_argument(capsys):
    assert main(["summary", "--model", "alexnet-small", "--devices", "zero"]) == 2
    assert "--devices" in capsys.readouterr().err


def test_summary_command_refuses_an_unknown_model_listing_the_choices(capsys):
    assert main(["summary", "--model", "vgg"]) == 2
    err = capsys.readouterr().err
    assert "--model" in err and "alexnet-small" in err


def test_summary_shows_the_class_that_runs_each_layer():
    net = build_model("alexnet-small", width=0.25, fast=False)
    rows = {line.split()[0]: line.split()[1] for line in net.summary().splitlines() if len(line.split()) > 1}
    assert rows["conv1"] == type(net.conv1).__name__ == "Conv2D"
    assert rows["lrn1"] == "GroupLRN(LRN)" and rows["pool5"] == "MaxPool2D" and rows["fc8"] == "Linear"
    assert "reference implementations (fast=False)" in net.summary()


def test_split_summary_shows_the_halves_classes_and_the_links():
    text = build_model("alexnet-small", devices=(0, 1), width=0.25).summary()
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines() if line.split()}
    assert rows["input"] == "Broadcast" and rows["to_conv3"] == "Exchange" and rows["logits"] == "Gather"
    assert rows["conv3"] == "WinogradConv2D" and rows["lrn2"] == "FastLRN"  # 12 channels per tower: Winograd


def test_summary_command_reference_flag_builds_with_the_reference_classes(capsys):
    assert main(["summary", "--model", "alexnet-small", "--reference"]) == 0
    assert "reference implementations (fast=False)" in capsys.readouterr().out
