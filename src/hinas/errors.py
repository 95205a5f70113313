"""The one exception type users see: a clear, one-line message about their input."""


class HinasError(Exception):
    """A problem with the user's input or files, reported as one line by the CLI."""
