"""The train / evaluate / predict / plot subcommands on a tiny synthetic run."""
import json

import numpy as np
import pytest
from PIL import Image

from tinyalex.cli import main

TINY = ["--dataset", "synthetic", "--model", "alexnet-small", "--width", "0.125", "--epochs", "1",
        "--batch-size", "32", "--limit-train", "96", "--limit-test", "40", "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def test_train_writes_the_run_folder(run_dir, capsys):
    for name in ("config.json", "metrics.csv", "metrics.jsonl", "curves.png", "checkpoint.npz",
                 "best.npz", "model.npz", "test.json", "confusion.png"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train_config"]["width"] == 0.125 and config["input_shape"] == [3, 28, 28]


def test_evaluate_prints_top1_top5_per_class_and_writes_confusion_png(run_dir, capsys, tmp_path):
    out = tmp_path / "cm.png"
    assert main(["evaluate", str(run_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1 accuracy" in text and "top-5 accuracy" in text and "class9" in text
    assert out.is_file()


def test_evaluate_matches_the_test_accuracy_recorded_by_training(run_dir, capsys):
    main(["evaluate", str(run_dir)])
    recorded = json.loads((run_dir / "test.json").read_text())["top1"]
    assert f"top-1 accuracy {100 * recorded:.2f}%" in capsys.readouterr().out


def test_evaluate_with_ten_crop_averages_the_ten_views(run_dir, capsys, tmp_path):
    assert main(["evaluate", str(run_dir), "--ten-crop", "--out", str(tmp_path / "cm.png")]) == 0
    assert "(10-crop)" in capsys.readouterr().out


def test_evaluate_with_five_crop_averages_the_five_crops(run_dir, capsys, tmp_path):
    assert main(["evaluate", str(run_dir), "--five-crop", "--out", str(tmp_path / "cm.png")]) == 0
    assert "(5-crop)" in capsys.readouterr().out


def test_a_run_trained_with_five_crop_evaluates_on_five_crops_unless_told_otherwise(tmp_path, capsys):
    out = tmp_path / "five"
    assert main(["train", *TINY, "--five-crop", "--out", str(out)]) == 0
    assert json.loads((out / "test.json").read_text())["views"] == 5
    capsys.readouterr()
    assert main(["evaluate", str(out), "--out", str(tmp_path / "a.png")]) == 0
    assert "(5-crop)" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--no-five-crop", "--out", str(tmp_path / "b.png")]) == 0
    assert "crop)" not in capsys.readouterr().out


def test_evaluate_with_ten_crop_and_five_crop_is_refused_in_one_line(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--ten-crop", "--five-crop"]) != 0
    err = capsys.readouterr().err.strip()
    assert "--ten-crop and --five-crop" in err and "\n" not in err


def test_train_with_ten_crop_and_five_crop_is_refused_in_one_line(tmp_path, capsys):
    assert main(["train", *TINY, "--ten-crop", "--five-crop", "--out", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err.strip()
    assert "--ten-crop and --five-crop" in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_predict_prints_top5_class_names_with_probabilities(run_dir, capsys, tmp_path):
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(img)
    assert main(["predict", str(img), "--model", str(run_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    top = result[0]["top"]
    assert len(top) == 5 and all(t["class"].startswith("class") for t in top)
    probs = [t["probability"] for t in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9


def test_predict_unreadable_file_is_a_clear_error(run_dir, capsys, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", str(bad), "--model", str(run_dir)]) == 1
    assert "bad.png" in capsys.readouterr().err


def test_plot_redraws_curves_and_conv1_kernels(run_dir, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["plot", str(run_dir), "--out", str(out), "--filters"]) == 0
    assert out.is_file() and (run_dir / "conv1.png").is_file()


def test_resume_with_more_epochs_continues_the_run(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert main(["train", "--resume", str(copy), "--epochs", "2", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


@pytest.mark.parametrize("args, names", [
    (["--dataset", "mnist"], ["--dataset", "fashion-mnist", "cifar10", "imagefolder", "synthetic"]),
    (["--model", "vgg"], ["--model", "alexnet-small", "alexnet-cifar"]),
    (["--schedule", "linear"], ["--schedule", "plateau", "step", "cosine"]),
    (["--label-smoothing", "1"], ["--label-smoothing", "[0, 1)"]),
    (["--erase", "1.5"], ["--erase", "[0, 1]"]),
    (["--backend", "torch"], ["--backend", "numpy", "cupy", "standin"]),
    (["--devices", "0,1,2"], ["--devices", "0,1"]),
    (["--lr", "-1"], ["--lr", "> 0"]),
    (["--val-fraction", "1.5"], ["--val-fraction", "[0, 1)"]),
])
def test_bad_arguments_name_the_argument_and_the_allowed_values(args, names, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for n in names:
        assert n in err


def test_missing_dataset_lists_the_ways_to_get_it(tmp_path, capsys):
    code = main(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "nowhere"), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "CIFAR-10" in err and "--data-dir" in err


def test_train_refuses_to_overwrite_an_existing_run(run_dir, capsys):
    assert main(["train", *TINY, "--out", str(run_dir)]) == 2
    assert "holds a finished run; choose a new --out name, add --overwrite" in capsys.readouterr().err


def test_resume_of_a_folder_without_checkpoint_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "checkpoint.npz" in capsys.readouterr().err


def test_quick_fills_only_what_was_not_given():
    from tinyalex.cli import build_parser
    from tinyalex.train.cli import QUICK, config_from_args

    cfg = config_from_args(build_parser().parse_args(["train", "--quick", "--epochs", "3", "--batch-size", "32"]))
    assert (cfg.epochs, cfg.batch_size) == (3, 32)
    assert cfg.limit_train is None and cfg.time_limit == QUICK["time_limit"]
    plain = config_from_args(build_parser().parse_args(["train"]))
    assert plain.limit_train is None and plain.width is None and plain.time_limit is None
    assert (plain.epochs, plain.batch_size, plain.lr, plain.dropout, plain.schedule, plain.step_epochs) == (
        7, 128, 0.02, 0.0, "step", [5, 6])


def test_cosine_schedule_label_smoothing_and_erasing_reach_the_run_config(tmp_path):
    out = tmp_path / "cos"
    assert main(["train", *TINY, "--schedule", "cosine", "--label-smoothing", "0.1", "--erase", "0.5",
                 "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    config = saved["train_config"]
    assert (config["schedule"], config["label_smoothing"], config["erase"]) == ("cosine", 0.1, 0.5)
    assert saved["pipeline"]["erase"] == 0.5
