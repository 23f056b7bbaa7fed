"""A training step on a device never waits for it: the loss and accuracy are read back only now and then.

Counted on the CPU stand-in (tinyalex/standin.py, which counts every read of
a device value by the host): between two reads of the running sums (every
``Trainer.read_every`` steps and at the end of an epoch) the trainer's steps
make no host synchronisation at all; each read makes two (the loss sum and
the correct count). A NaN is then found at the next read.
"""
import numpy as np
import pytest

from tinyalex import standin
from tinyalex.train.trainer import NonFiniteLossError, Trainer, fit


def _standin_model(tiny_model):
    return tiny_model().to(0, "standin")


def test_steps_between_two_reads_make_no_host_synchronisation(tiny_config, tiny_model, quiet, monkeypatch):
    monkeypatch.setattr(Trainer, "read_every", 4)
    syncs = []
    with standin.count() as c:
        fit(tiny_config(epochs=1, batch_size=16, backend="standin"), model=_standin_model(tiny_model),
            on_step=lambda t: syncs.append(c.host_syncs), test=False, log=quiet)
    per_step = np.diff(syncs)                    # syncs of steps 2..8 (8 batches of 16)
    assert len(per_step) == 7
    assert list(per_step) == [0, 0, 2, 0, 0, 0, 2]     # reads after steps 4 and 8 (the epoch's end)


def test_a_standin_run_reports_the_same_metrics_as_numpy(tiny_config, tiny_model, quiet, tmp_path):
    a = fit(tiny_config(epochs=1, out=str(tmp_path / "np")), model=tiny_model(), test=False, log=quiet)
    b = fit(tiny_config(epochs=1, out=str(tmp_path / "si"), backend="standin"), model=_standin_model(tiny_model),
            test=False, log=quiet)
    assert b.epochs[0]["train_loss"] == pytest.approx(a.epochs[0]["train_loss"], rel=1e-5)
    assert b.epochs[0]["train_top1"] == a.epochs[0]["train_top1"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_on_a_device_a_nan_is_found_at_the_next_read(tiny_config, tiny_model, quiet, monkeypatch):
    monkeypatch.setattr(Trainer, "read_every", 100)              # only the epoch's end reads
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 4 or earlier \(read every 100 steps; finite at "
                                                 r"step 0\) .*lower the learning rate"):
        fit(tiny_config(epochs=1, lr=1e9, schedule="none", backend="standin"), model=_standin_model(tiny_model),
            test=False, log=quiet)
