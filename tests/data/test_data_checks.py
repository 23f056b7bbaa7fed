"""Datasets that cannot train right are refused when a run builds them; `data get` checks what it finds."""
import json

import numpy as np
import pytest

from datawriters import save_png, write_fashion_mnist
from tinyalex.cli import main
from tinyalex.data import ArrayDataset, Relabeled
from tinyalex.data.checks import check_training_data
from tinyalex.errors import UserError

SMALL = ["--model", "alexnet-small", "--width", "0.125", "--epochs", "1", "--batch-size", "4", "--no-progress",
         "--val-fraction", "0.2", "--image-size", "28", "--schedule", "step"]


def _folder(root, counts, size=28, seed=0):
    """root/<class>/<i>.png with counts[class] images each (0: an empty class folder)."""
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            save_png(root / name / f"{i}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def _error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _ds(labels, classes):
    labels = np.asarray(labels)
    return ArrayDataset(np.zeros((len(labels), 1, 4, 4), np.uint8), labels, classes)


def test_one_class_is_refused():
    with pytest.raises(UserError, match=r"only 1 class \(cat\); a classifier needs at least 2"):
        check_training_data(_ds([0, 0], ["cat"]))


def test_a_class_without_training_images_is_refused_naming_it():
    with pytest.raises(UserError, match=r"class\(es\) dog have no training images.*--classes cat,fish"):
        check_training_data(_ds([0, 2, 2], ["cat", "dog", "fish"]))


def test_a_test_split_missing_a_class_is_a_warning_naming_it():
    warnings = check_training_data(_ds([0, 1, 2], ["cat", "dog", "fish"]), _ds([0, 2], ["cat", "dog", "fish"]))
    assert len(warnings) == 1 and "no images of class(es) dog" in warnings[0] and "null in test.json" in warnings[0]


def test_relabeled_maps_a_subset_of_classes_onto_the_models():
    ds = Relabeled(_ds([0, 1, 1], ["dog", "cat"]), [1, 0], ["cat", "dog", "ship"])
    assert ds.labels.tolist() == [1, 0, 0] and ds.get_batch([0, 2])[1].tolist() == [1, 0]
    assert ds.classes == ["cat", "dog", "ship"]


def test_training_on_one_class_is_refused_and_leaves_no_folder(tmp_path, capsys):
    data = _folder(tmp_path / "pets", {"cat": 8, "dog": 8})
    out = tmp_path / "run"
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(data), "--classes", "cat", *SMALL,
                 "--out", str(out)]) == 2
    assert "only 1 class (cat)" in _error(capsys)
    assert not out.exists()


def test_an_empty_class_folder_is_refused_and_leaves_no_config(tmp_path, capsys):
    data = _folder(tmp_path / "pets", {"cat": 8, "dog": 8, "horse": 0})
    out = tmp_path / "run"
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(data), *SMALL, "--out", str(out)]) == 2
    assert "class(es) horse have no training images" in _error(capsys)
    assert not out.exists()


def test_a_class_whose_every_file_is_unreadable_is_refused(tmp_path, capsys):
    data = _folder(tmp_path / "pets", {"cat": 8, "dog": 8, "ship": 0})
    for i in range(3):
        (data / "ship" / f"{i}.png").write_bytes(b"not a png")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(data), *SMALL, "--out", str(out)]) == 2
    err = _error(capsys)
    assert "class(es) ship have no training images" in err and "every file unreadable" in err
    assert not out.exists()


def test_a_test_split_missing_a_class_warns_and_test_json_is_strict(tmp_path, capsys):
    data = tmp_path / "pets"
    _folder(data / "train", {"cat": 8, "dog": 8, "fish": 8})
    _folder(data / "test", {"cat": 2, "dog": 0, "fish": 2}, seed=1)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(data), *SMALL, "--out", str(out)]) == 0
    assert "tinyalex: warning: " + str(data) + ": the test split has no images of class(es) dog" in _error(capsys)
    result = json.loads((out / "test.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in test.json"))
    assert result["per_class"][1] is None and result["classes"][1] == "dog"


def test_the_missing_test_class_warning_names_it(tmp_path, recwarn):
    from tinyalex.train.trainer import TrainConfig, load_data

    data = tmp_path / "pets"
    _folder(data / "train", {"cat": 4, "dog": 4})
    _folder(data / "test", {"cat": 2, "dog": 0}, seed=1)
    load_data(TrainConfig(dataset="imagefolder", data_dir=str(data), image_size=28))
    assert any("no images of class(es) dog" in str(w.message) for w in recwarn)


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "synthetic", "--image-size", "64"], "--image-size works only with --dataset imagefolder"),
    (["--dataset", "fashion-mnist", "--image-size", "64"], "--image-size works only with --dataset imagefolder"),
    (["--dataset", "synthetic", "--limit-train", "1"], "--limit-train 1 is smaller than one batch (--batch-size 128)"),
])
def test_settings_that_cannot_apply_are_refused_before_anything_is_written(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train", *flags, "--out", str(out), "--no-progress"]) == 2
    assert message in _error(capsys)
    assert not out.exists()


def test_data_get_refuses_a_truncated_copy(tmp_path, capsys):
    directory = tmp_path / "fm"
    write_fashion_mnist(directory, gz=False)
    images = directory / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    assert main(["data", "get", "fashion-mnist", "--data-dir", str(directory)]) == 1
    err = _error(capsys)
    assert "was found in" in err and "but is damaged" in err and "truncated" in err


def test_data_get_refuses_a_wrong_magic_number(tmp_path, capsys):
    directory = tmp_path / "fm"
    write_fashion_mnist(directory, gz=False)
    labels = directory / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\0\0\x08\x03" + labels.read_bytes()[4:])
    assert main(["data", "get", "fashion-mnist", "--data-dir", str(directory)]) == 1
    assert "bad IDX magic number" in _error(capsys)


def test_data_get_reports_counts_and_warns_when_they_are_not_the_official_ones(tmp_path, capsys):
    write_fashion_mnist(tmp_path / "fm")
    assert main(["data", "get", "fashion-mnist", "--data-dir", str(tmp_path / "fm")]) == 0
    captured = capsys.readouterr()
    assert "(6 train + 4 test images, every file checked)" in captured.out
    assert "the official fashion-mnist has 60000 and 10000" in captured.err
