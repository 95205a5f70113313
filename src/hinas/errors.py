"""What users see when their input has a problem: one clear line, as an error or a warning."""

import sys


class HinasError(Exception):
    """A problem with the user's input or files, reported as one line by the CLI."""


class NonFiniteError(HinasError, FloatingPointError):
    """Weights or a network's output hold NaN or infinite values: a failed run, never a score."""


def check(ok: bool, message: str) -> None:
    """Raise HinasError(`message`) unless `ok`."""
    if not ok:
        raise HinasError(message)


def warn(message: str) -> None:
    """Tell the user about a problem that does not stop the run (one line on stderr)."""
    print(f"hinas: warning: {message}", file=sys.stderr, flush=True)
