"""The two kinds of failure the command line tells apart.

* :class:`UserError` (exit code 2): the command as given cannot work: a bad
  argument, a folder that belongs to another run, data that does not fit the
  model. The message names the file or argument, says what is wrong and how
  to fix it.
* everything else (exit code 1): something failed while working: a damaged
  file, a full disk, a diverged training.

``python -m tinyalex`` prints either as one ``tinyalex: error: ...`` line;
``--debug`` (or ``TINYALEX_DEBUG=1``) shows the traceback instead.
"""


class UserError(ValueError):
    """Bad input the user can fix (exit code 2); the message says how."""
