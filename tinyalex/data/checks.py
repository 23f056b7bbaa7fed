"""Checks that a dataset can train a classifier, run when a training run builds its data.

A dataset that loads is not always one that can train right: one class (a
1-class net scores "100%"), a class without training images (an output
that can never be learned), a test split without some classes (their
accuracy is undefined). :func:`check_training_data` refuses the first two
with a :class:`~tinyalex.errors.UserError` that names the classes and the
fix, and returns a warning for the third.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError


def class_counts(dataset) -> np.ndarray:
    """Images per class, int64 (K,) (from the labels: no image is decoded)."""
    return np.bincount(np.asarray(dataset.labels, dtype=np.int64), minlength=len(dataset.classes))


def check_training_data(train, test=None, where="the dataset") -> list[str]:
    """Raise UserError unless ``train`` has >= 2 classes, each with images; return warnings about ``test``.

    ``where`` names the data in messages (the --data-dir or the dataset name).
    """
    classes = list(train.classes)
    if len(classes) < 2:
        raise UserError(f"{where}: only {len(classes)} class ({', '.join(classes) or 'none'}); a classifier needs "
                        "at least 2: add class folders, or name more with --classes a,b")
    if len(train) == 0:
        raise UserError(f"{where}: no training images left; use a larger --limit-train or add images")
    counts = class_counts(train)
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise UserError(f"{where}: class(es) {', '.join(empty)} have no training images (an empty folder, or every "
                        "file unreadable, or all left out by --limit-train); add images, or keep only the "
                        f"classes that have some with --classes {','.join(c for c in classes if c not in empty)}")
    warnings = []
    if test is not None and len(test):
        missing = [c for c, n in zip(classes, class_counts(test)) if n == 0]
        if missing:
            warnings.append(f"{where}: the test split has no images of class(es) {', '.join(missing)}; their "
                            "test accuracy is left out (null in test.json)")
    return warnings
