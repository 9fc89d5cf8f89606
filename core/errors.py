"""Errors the engine raises on purpose.

``BadInput`` is the user's mistake (a missing file, a wrong option, a dataset
that does not fit the model). Its message is one sentence that names the file
or option and the problem; the command line prints it as is and exits with 2.
Anything else escaping the engine is an internal error (exit 1).
"""

from __future__ import annotations


class QuantBenchError(Exception):
    """Base class of the errors this package raises deliberately."""


class BadInput(QuantBenchError):
    """The user's input cannot be used; the message says which and why."""


class SchemeNotApplicable(QuantBenchError):
    """A scheme cannot be applied to this model; the message says why."""


class Cancelled(QuantBenchError):
    """The study was cancelled through its CancelToken."""
