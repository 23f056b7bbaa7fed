"""The pictures: PNG files written, and clear errors for wrong shapes."""
import numpy as np
import pytest

from tinyalex import viz


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    cm = viz.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [0, 1, 0]])


def test_curves_and_conv1_kernels_are_written_as_png(tmp_path):
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_top1": 0.5, "val_top1": 0.6,
             "val_top5": 0.9, "lr": 0.01 if e < 3 else 0.001} for e in (1, 2, 3)]
    viz.plot_curves(rows, tmp_path / "curves.png")
    viz.plot_conv1_filters(np.random.default_rng(0).standard_normal((8, 3, 5, 5)), towers=2,
                           path=tmp_path / "conv1.png")
    for name in ("curves.png", "conv1.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_conv1_kernels_that_do_not_split_into_towers_are_refused():
    with pytest.raises(ValueError, match="5 kernels do not split into 2 towers"):
        viz.plot_conv1_filters(np.zeros((5, 1, 3, 3)), towers=2)


def test_confusion_plot_needs_one_row_per_class():
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        viz.plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"])


def test_plot_lines_writes_a_png_and_palette_option_stores_a_palette_image(tmp_path):
    from PIL import Image

    fig = viz.plot_lines({"relu": ([1, 2, 3], [0.5, 0.3, 0.2], "C0-"), "_seed1": ([1, 2], [0.6, 0.4])},
                         "training error (%)", tmp_path / "lines.png", hline=0.25)
    assert (tmp_path / "lines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [line.get_label() for line in fig.axes[0].get_legend().get_lines()] == ["relu"]
    viz.save_figure(fig, tmp_path / "palette.png", palette=True)
    assert Image.open(tmp_path / "palette.png").mode == "P"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lines.png", "palette.png"]   # no temp files
