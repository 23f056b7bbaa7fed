"""Bad input and faults end in one clear line (exit 2: fix your input; 1: a fault), never a traceback."""
import errno
import importlib.util
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from reliability_tools import TINY, one_error_line, read_only_copy, small_disk, snapshot
from tinyalex.cli import main
from tinyalex.fileio import CorruptFileError, read_npz


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run, to damage."""
    return shutil.copytree(trained, tmp_path / "run")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _image(path, size=(40, 50)):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


# -- damaged .npz files: one loader, one message -------------------------------------------
@pytest.mark.parametrize("damage", [_truncate, _flip_a_bit])
def test_read_npz_turns_a_damaged_archive_into_one_error_naming_it(tmp_path, damage):
    path = tmp_path / "w.npz"
    np.savez(path, a=np.arange(100000.0), b=np.ones(3))
    damage(path)
    with pytest.raises(CorruptFileError, match=r"w\.npz: not a readable checkpoint: the \.npz archive is "
                                               r"truncated or damaged"):
        read_npz(path, what="checkpoint")


def test_resume_from_a_truncated_checkpoint_is_one_line_and_exit_1(run, capsys):
    _truncate(run / "checkpoint.npz")
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "checkpoint.npz: not a readable tinyalex checkpoint" in line and "truncated or damaged" in line
    assert snapshot(run) == before


@pytest.mark.parametrize("damage", [_truncate, _flip_a_bit])
def test_evaluate_a_damaged_model_file_is_one_line_and_exit_1(run, capsys, damage):
    damage(run / "model.npz")
    before = snapshot(run)
    assert main(["evaluate", str(run / "model.npz")]) == 1
    assert "model.npz: not a readable weights file" in one_error_line(capsys.readouterr().err)
    assert snapshot(run) == before


def test_predict_with_a_bit_flipped_model_is_one_line_and_exit_1(run, capsys, tmp_path):
    _flip_a_bit(run / "model.npz")
    assert main(["predict", str(_image(tmp_path / "x.png")), "--model", str(run)]) == 1
    assert "model.npz: not a readable weights file" in one_error_line(capsys.readouterr().err)


def test_plot_filters_with_a_truncated_model_is_one_line_and_exit_1(run, capsys):
    _truncate(run / "model.npz")
    assert main(["plot", str(run), "--filters"]) == 1
    assert "model.npz: not a readable weights file" in one_error_line(capsys.readouterr().err)


def test_weights_files_are_read_by_the_same_loader(tmp_path):
    from tinyalex.models.io import load_npz

    path = tmp_path / "weights.npz"
    np.savez(path, **{"conv1.W": np.zeros((4, 3, 3, 3))})
    _truncate(path)
    with pytest.raises(CorruptFileError, match="weights.npz: not a readable weights file"):
        load_npz(path)


def test_debug_shows_the_traceback(run, monkeypatch):
    _truncate(run / "model.npz")
    with pytest.raises(CorruptFileError):
        main(["--debug", "evaluate", str(run)])
    with pytest.raises(CorruptFileError):
        main(["evaluate", str(run), "--debug"])
    monkeypatch.setenv("TINYALEX_DEBUG", "1")
    with pytest.raises(CorruptFileError):
        main(["evaluate", str(run)])


# -- backends, images ---------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
@pytest.mark.parametrize("flags", [["--backend", "cupy"], ["--backend", "cupy", "--devices", "0,1"]])
def test_cupy_backend_without_cupy_is_one_line_exit_2_and_leaves_no_folder(tmp_path, capsys, flags):
    out = tmp_path / "run"
    assert main(["train", *TINY, *flags, "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "CuPy" in line or "cupy" in line
    assert not out.exists()


def _png_header_only(path, width, height):
    """A PNG that claims width x height pixels (a signature, IHDR and IEND; no pixel data)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_predict_on_a_decompression_bomb_is_one_line_and_exit_1(trained, capsys, tmp_path):
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    assert main(["predict", str(bomb), "--model", str(trained)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "bomb.png" in line and "too many pixels to decode safely" in line


# -- read-only run folders: results printed, a warning for the picture ---------------------------
def test_evaluate_on_a_read_only_run_prints_results_and_warns_about_the_picture(trained, tmp_path, capsys):
    with read_only_copy(trained, tmp_path / "ro") as ro:
        before = snapshot(ro)
        assert main(["evaluate", str(ro)]) == 0
        captured = capsys.readouterr()
        assert "top-1 accuracy" in captured.out
        assert "tinyalex: warning: the confusion matrix could not be written" in captured.err
        assert "Traceback" not in captured.err
        assert snapshot(ro) == before


def test_plot_on_a_read_only_run_is_one_line_and_exit_2_naming_out(trained, tmp_path, capsys):
    with read_only_copy(trained, tmp_path / "ro") as ro:
        assert main(["plot", str(ro)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "curves.png" in line and "--out" in line
        assert main(["plot", str(ro), "--out", str(tmp_path / "curves.png")]) == 0
        assert (tmp_path / "curves.png").is_file()


# -- disk full while writing a checkpoint -----------------------------------------------------------
def _fill(folder):
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_disk_full_at_a_checkpoint_says_the_previous_one_survived(tmp_path, tiny_config, tiny_model, capsys):
    from tinyalex.fileio import WriteError
    from tinyalex.train import fit, load_checkpoint

    saved = {}

    def fill_the_disk_in_epoch_two(trainer):
        if trainer.step == 5 and not saved:
            saved.update(snapshot(trainer.run_dir))
            _fill(trainer.run_dir)

    with small_disk(tmp_path / "disk", "2m") as disk:
        cfg = tiny_config(epochs=2, out=str(disk / "run"))
        with pytest.raises(WriteError) as info:
            fit(cfg, model=tiny_model(), on_step=fill_the_disk_in_epoch_two, log=lambda *a: None)
        assert info.value.errno == errno.ENOSPC
        message = str(info.value)
        assert "No space left on device" in message and "the previous checkpoint survived intact" in message
        assert f"--resume {disk / 'run'}" in message
        (disk / "run" / "filler").unlink()
        assert {k: v for k, v in snapshot(disk / "run").items() if k != ".lock"} == \
            {k: v for k, v in saved.items() if k != ".lock"}
        assert load_checkpoint(disk / "run" / "checkpoint.npz").meta["epoch"] == 1


def test_disk_full_on_the_command_line_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    from tinyalex.train import checkpoint

    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    before = snapshot(out)

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.numpy, "savez", no_space)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "checkpoint.npz: No space left on device" in line and "previous checkpoint survived intact" in line
    after = snapshot(out)
    for name in ("checkpoint.npz", "model.npz", "best.npz"):
        assert after[name] == before[name]


# -- evaluate: the model's classes against the data's ------------------------------------------------
def _folder(root, classes, n=12, size=32, seed=0):
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = np.clip(rng.normal(40 + 60 * k, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("pets")
    data = _folder(base / "train-data", ["cat", "dog", "ship"])
    out = base / "run"
    assert main(["train", "--dataset", "imagefolder", "--data-dir", str(data), "--model", "alexnet-small",
                 "--width", "0.125", "--epochs", "1", "--batch-size", "8", "--no-progress", "--val-fraction", "0.2",
                 "--out", str(out)]) == 0
    return out


def test_evaluate_on_data_with_other_classes_is_refused_with_both_lists(pets_run, tmp_path, capsys):
    other = _folder(tmp_path / "other", ["cat", "dog", "horse"], n=3)
    before = snapshot(pets_run)
    assert main(["evaluate", str(pets_run), "--data-dir", str(other), "--split", "train"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "[cat, dog, horse]" in line and "[cat, dog, ship]" in line and "--classes" in line
    assert snapshot(pets_run) == before


def test_evaluate_scores_a_shared_subset_when_asked_with_classes(pets_run, tmp_path, capsys):
    other = _folder(tmp_path / "other", ["cat", "dog", "horse"], n=3)
    assert main(["evaluate", str(pets_run), "--data-dir", str(other), "--split", "train", "--classes", "dog,cat",
                 "--out", str(tmp_path / "cm.png")]) == 0
    out = capsys.readouterr().out
    assert "imagefolder train, classes dog,cat only," in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert lines["cat"].rstrip().endswith("%") and lines["dog"].rstrip().endswith("%")
    assert "n/a (no images)" in lines["ship"]


def test_evaluate_classes_must_be_the_models(pets_run, tmp_path, capsys):
    other = _folder(tmp_path / "other", ["cat", "horse"], n=2)
    assert main(["evaluate", str(pets_run), "--data-dir", str(other), "--classes", "cat,horse"]) == 2
    assert "horse not among the model's classes (cat, dog, ship)" in one_error_line(capsys.readouterr().err)


def test_unexpected_errors_are_named_as_bugs_without_traceback(run, capsys, monkeypatch):
    from tinyalex.train import cli as train_cli

    monkeypatch.setattr(train_cli, "load_trained", lambda path: {}["boom"])
    assert main(["evaluate", str(run)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "internal error KeyError" in line and "--debug" in line


def test_test_json_is_strict_json(trained):
    json.loads((trained / "test.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in test.json"))


def test_predict_on_a_folder_reads_its_images_and_those_of_its_class_folders(pets_run, tmp_path, capsys):
    data = _folder(tmp_path / "pets", ["cat", "dog"], n=2)
    _image(data / "loose.png")
    assert main(["predict", str(data), "--model", str(pets_run), "--json"]) == 0
    images = [r["image"] for r in json.loads(capsys.readouterr().out)]
    assert images == [str(data / "loose.png")] + [str(data / c / f"{i}.png") for c in ("cat", "dog") for i in (0, 1)]


def test_predict_on_a_folder_with_other_class_folders_is_refused_with_both_lists(pets_run, tmp_path, capsys):
    data = _folder(tmp_path / "pets", ["cat", "horse"], n=1)
    assert main(["predict", str(data), "--model", str(pets_run)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "[cat, horse]" in line and "[cat, dog, ship]" in line


def test_evaluate_compares_the_classes_before_decoding_any_image(pets_run, tmp_path, capsys):
    other = tmp_path / "other"
    for name in ("cat", "dog", "horse"):
        (other / name).mkdir(parents=True)
        (other / name / "0.png").write_bytes(b"not decoded: the class names already differ")
    assert main(["evaluate", str(pets_run), "--data-dir", str(other), "--split", "train"]) == 2
    assert "[cat, dog, horse]" in one_error_line(capsys.readouterr().err)
