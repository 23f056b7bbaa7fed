"""Exceptions raised by the data package.

Both derive from a built-in exception, so callers that do not know about
tinyalex can still catch them (``except FileNotFoundError`` /
``except ValueError``).
"""


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a dataset could be found (or downloaded).

    The message lists every way to provide the dataset, so the user can fix
    the problem without reading the source.
    """


class CorruptDatasetError(ValueError):
    """A dataset file exists but its content is wrong.

    Raised for bad gzip streams, wrong IDX magic numbers, truncated data,
    label/image count mismatches, out-of-range labels, malformed CIFAR
    batches, ... The message names the file and what is wrong. tinyalex never
    returns partial or misread data instead of raising this.
    """
